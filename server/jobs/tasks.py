"""The Dramatiq side of jobs: the ``run_job`` actor and what happens when it cannot finish.

The API sends ``run_job`` *by name* with the job id as its only argument
(:func:`server.integrations.broker.job_message`); :func:`register` declares the actor on a
broker the worker built, with its dependencies, so nothing connects or reads settings when this
module is imported.

Retries (Dramatiq's ``Retries`` middleware):

* only transient errors are retried (:func:`retry_when`, :func:`is_retryable`), at most
  ``JOB_MAX_RETRIES`` times, with exponential back-off between ``RETRY_MIN_BACKOFF_SECONDS`` and
  ``RETRY_MAX_BACKOFF_SECONDS``. ``retry_when`` replaces Dramatiq's own ``max_retries`` check,
  so it counts the retries itself;
* the runner settles every other error itself (the job ``failed``, the message acked);
* when the retries are spent, ``Retries`` marks the message failed and RabbitMQ dead-letters it
  into the queue's ``.XQ``; :class:`JobFailures` (placed before ``Retries`` so that its
  ``after_process_message`` runs after it) then fails the job with ``retries_exhausted`` and a
  message naming the service that was missing.

The time limit (``JOB_TIME_LIMIT_SECONDS``, below RabbitMQ's consumer timeout) fails the job with
``time_limit_exceeded``: a job that ran that long would run that long again.

When the worker shuts down mid-job, the runner stops at the next window and the actor sends the
same message again (publisher-confirmed) before its delivery is acked: the job is handed back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import dramatiq
import redis
from dramatiq import Message
from dramatiq.broker import Broker, MessageProxy
from dramatiq.errors import BrokerConnectionError
from dramatiq.middleware import CurrentMessage, Middleware, Retries, TimeLimitExceeded

from server.integrations.broker import RUN_JOB_ACTOR, TRACE_ID_OPTION
from server.integrations.storage import StorageUnavailable
from server.integrations.triton import TritonModelCrashed, TritonUnavailable
from server.jobs import runner
from server.jobs.progress import JobInterrupted
from server.jobs.runner import RunnerDeps
from server.kit import logs
from server.settings import Settings
from subtone.tracing import is_trace_id

__all__ = [
    "RETRIES_EXHAUSTED",
    "TIME_LIMIT_EXCEEDED",
    "JobFailures",
    "is_retryable",
    "register",
    "retry_when",
]

log = logging.getLogger(__name__)

RETRIES_EXHAUSTED: Final = "retries_exhausted"
TIME_LIMIT_EXCEEDED: Final = "time_limit_exceeded"
MS_PER_SECOND: Final = 1000
RETRIES_OPTION: Final = "retries"
"""The message option in which Dramatiq's ``Retries`` counts the retries so far."""

TIME_LIMIT_MESSAGE: Final = (
    "The job ran longer than the worker's time limit and was stopped. "
    "Try a shorter cover, or ask the operators to raise the limit."
)


class TransientFailure(dramatiq.Retry):
    """A transient error of the job's services, raised for Dramatiq to retry the message:
    the runner has logged it as one WARNING line, so Dramatiq logs no traceback for it."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _unwrap(error: BaseException) -> BaseException:
    return error.error if isinstance(error, TransientFailure) else error


def is_retryable(error: BaseException) -> bool:
    """A transient error of the job's services, or RabbitMQ lost while handing a job back."""
    error = _unwrap(error)
    return runner.is_transient(error) or isinstance(error, BrokerConnectionError)


def retry_when(max_retries: int) -> Callable[[int, BaseException], bool]:
    """Dramatiq's ``retry_when``: retry transient errors while fewer than ``max_retries``."""

    def should_retry(retries: int, error: BaseException) -> bool:
        return retries < max_retries and is_retryable(error)

    return should_retry


def _cause(error: BaseException) -> str:
    """What was missing, in words a person understands (no addresses, no internals)."""
    error = _unwrap(error)
    if isinstance(error, TritonModelCrashed):
        return (
            "the model crashed on this input each time (the cover may be damaged or hostile); "
            "other jobs are not affected"
        )
    if isinstance(error, TritonUnavailable):
        return "the inference server (Triton) could not be reached"
    if isinstance(error, StorageUnavailable):
        return "object storage could not be reached"
    if isinstance(error, redis.RedisError):
        return "the status store (Redis) could not be reached"
    if isinstance(error, BrokerConnectionError):
        return "the job queue (RabbitMQ) could not be reached"
    return f"an unexpected error ({type(error).__name__})"


class JobFailures(Middleware):
    """Fails the job whose message Dramatiq gives up on (the message goes to the ``.XQ``)."""

    def __init__(self, deps: RunnerDeps) -> None:
        self._deps = deps

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any | None = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed or message.actor_name != RUN_JOB_ACTOR:
            return
        job_id = str(message.args[0])
        attempts = int(message.options.get(RETRIES_OPTION, 0))
        if is_retryable(exception):
            code = RETRIES_EXHAUSTED
            text = f"The job was tried {attempts} times and could not finish: {_cause(exception)}."
        else:
            code = runner.INTERNAL_ERROR
            text = runner.INTERNAL_ERROR_MESSAGE
        with logs.bound(trace_id=_trace_id(message), job_id=job_id):
            log.error("job %s given up after %d attempts: %s", job_id, attempts, _cause(exception))
            # The code of what failed: a transient error comes wrapped in TransientFailure.
            self._deps.metrics.dead_letters.labels(runner.error_code(_unwrap(exception))).inc()
            try:
                self._deps.jobs.fail(job_id, code, text)
            except redis.RedisError:
                log.exception("could not record that job %s was given up", job_id)


def _trace_id(message: Message[Any] | MessageProxy | None) -> str | None:
    """The trace id the API put in the job's message, if any (:mod:`subtone.tracing`)."""
    value = message.options.get(TRACE_ID_OPTION) if message is not None else None
    return value if is_trace_id(value) else None


def _hand_back(broker: Broker) -> None:
    """Send the message being processed again, so another worker takes the job up."""
    message = CurrentMessage.get_current_message()
    if message is None:  # pragma: no cover - always set inside an actor
        raise RuntimeError("no current message to hand back")
    broker.enqueue(message.copy())


def register(broker: Broker, settings: Settings, deps: RunnerDeps) -> dramatiq.Actor[[str], None]:
    """Declare ``run_job`` on ``broker`` (with the middleware it relies on); returns the actor."""
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(JobFailures(deps), before=Retries)

    def run_job(job_id: str) -> None:
        with logs.bound(trace_id=_trace_id(CurrentMessage.get_current_message()), job_id=job_id):
            _run_job(job_id)

    def _run_job(job_id: str) -> None:
        if deps.stopping.is_set():  # delivered while the worker stops: not even started
            _hand_back(broker)
            return
        try:
            runner.run(job_id, deps=deps)
        except runner.TRANSIENT_ERRORS as e:
            raise TransientFailure(e) from e
        except JobInterrupted:
            _hand_back(broker)
        except TimeLimitExceeded:
            log.error("job %s exceeded the time limit", job_id)
            deps.metrics.dead_letters.labels(TIME_LIMIT_EXCEEDED).inc()
            deps.jobs.fail(job_id, TIME_LIMIT_EXCEEDED, TIME_LIMIT_MESSAGE)

    decorate = dramatiq.actor(
        actor_name=RUN_JOB_ACTOR,
        queue_name=settings.QUEUE_NAME,
        broker=broker,
        max_retries=settings.JOB_MAX_RETRIES,
        min_backoff=round(settings.RETRY_MIN_BACKOFF_SECONDS * MS_PER_SECOND),
        max_backoff=round(settings.RETRY_MAX_BACKOFF_SECONDS * MS_PER_SECOND),
        retry_when=retry_when(settings.JOB_MAX_RETRIES),
        time_limit=settings.JOB_TIME_LIMIT_SECONDS * MS_PER_SECOND,
    )
    return decorate(run_job)
