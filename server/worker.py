"""``python -m server.worker``: the Dramatiq worker that runs jobs.

Start-up builds every client once (Redis, the object store, the Triton engine, the broker),
waits until Redis, storage and Triton answer (so queued jobs do not spend their retries on a
Triton that is still loading), declares ``run_job`` and starts consuming ``QUEUE_NAME`` with
``WORKER_CONCURRENCY`` threads and a prefetch of one message per thread: a long job never
holds a second message that another worker could run.

While it consumes, a thread beats in Redis (:mod:`server.jobs.heartbeat`): the API's
``/readyz`` is not ready while no worker beats on its queue. The same thread keeps the worker's
liveness file (:func:`~server.jobs.heartbeat.default_alive_file`) fresh while Dramatiq's
consumer and worker threads all run and no job has run past :func:`stuck_after_seconds` (its
thread is stuck: :mod:`server.jobs.inflight`); start-up keeps it fresh while it waits for its
services. The container's liveness probe, ``subtone-healthcheck worker``, fails when it lapses,
and the worker is restarted.

A reaper thread sends again, every ``REAPER_INTERVAL_SECONDS``, the running jobs whose worker
vanished together with their message (:mod:`server.jobs.reaper`).

SIGTERM or SIGINT: the running job stops after the window in flight and its message is sent
again (handed back), the delivery is acked, and the process exits (alive meanwhile, for the
probe, up to :data:`STOP_TIMEOUT_SECONDS`). A job still busy after
:data:`STOP_TIMEOUT_SECONDS` is left unacked: RabbitMQ redelivers it when the connection
closes. Either way another worker takes the job up.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Final

import redis
from dramatiq import Worker
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from prometheus_client import start_http_server

from server.deps import build_redis
from server.integrations.broker import BrokerQueue, Enqueuer, build_broker
from server.integrations.consumer_timeout import VerdictLevel, check_consumer_timeout
from server.integrations.factory import build_store
from server.integrations.storage import ObjectStore
from server.integrations.triton import TritonEngine
from server.jobs.heartbeat import AliveFile, WorkerHeartbeats, default_alive_file, worker_id
from server.jobs.inflight import JobsInFlight
from server.jobs.lease import JobLeases
from server.jobs.metrics import WorkerMetrics
from server.jobs.reaper import Reaper
from server.jobs.repository import JobRepository
from server.jobs.runner import RunnerDeps
from server.jobs.tasks import register
from server.kit.logs import configure_logging
from server.settings import BrokerTimeoutCheck, Settings
from server.uploads.repository import UploadRepository
from subtone.robust.engine import RobustEngine
from subtone.stego.engine import WindowEngine

__all__ = [
    "WorkerProcess",
    "build_reaper",
    "build_runner_deps",
    "build_worker",
    "main",
    "serve_metrics",
    "stuck_after_seconds",
    "threads_running",
    "unhealthy",
]

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS: Final = 90
"""How long a stopping worker waits for its job to hand back (below Kubernetes' grace period,
packaging/k8s/base/worker.yaml)."""
MS_PER_SECOND: Final = 1000
EXIT_CONFIG: Final = 78
"""sysexits' EX_CONFIG: refused to start on a broker that would run jobs twice."""
READY_RETRY_SECONDS: Final = 2.0
WAIT_TICK_SECONDS: Final = 1.0
PROCESS: Final = "worker"
"""The ``process`` of the worker's log lines."""


def build_runner_deps(
    settings: Settings,
    client: redis.Redis,
    store: ObjectStore,
    engine: WindowEngine,
    stopping: threading.Event,
    metrics: WorkerMetrics | None = None,
    robust: RobustEngine | None = None,
) -> RunnerDeps:
    """The runner's repositories over ``client``, with the other clients handed in
    (``robust``: the robust mode's engine, usually the same Triton client as ``engine``)."""
    prefix = settings.REDIS_PREFIX
    return RunnerDeps(
        jobs=JobRepository(client, prefix=prefix, ttl_seconds=settings.JOB_TTL_SECONDS),
        leases=JobLeases(client, prefix=prefix, ttl_seconds=settings.JOB_LEASE_SECONDS),
        uploads=UploadRepository(client, prefix=prefix, ttl_seconds=settings.UPLOAD_TTL_SECONDS),
        store=store,
        engine=engine,
        robust=robust,
        settings=settings,
        stopping=stopping,
        metrics=metrics or WorkerMetrics(),
    )


def build_reaper(deps: RunnerDeps, queue: Enqueuer) -> Reaper:
    """The reaper of this worker's jobs, sending lost ones again through ``queue``."""
    return Reaper(
        deps.jobs,
        deps.leases,
        queue.enqueue,
        stale_seconds=deps.settings.JOB_STALE_SECONDS,
        max_lost_runs=deps.settings.JOB_MAX_LOST_RUNS,
    )


def threads_running(worker: Worker) -> bool:
    """Whether every consumer and worker thread of ``worker`` still runs (a dead one would
    leave its queue unconsumed, or its share of the work undone, for ever)."""
    return all(t.is_alive() for t in (*worker.consumers.values(), *worker.workers))


def stuck_after_seconds(settings: Settings) -> float:
    """How long after it started a job still running counts as stuck: Dramatiq's time limit,
    plus the longest a thread may legitimately take to see it (the limit is an exception raised
    in the thread, which a blocking Triton call delays until its deadline: robust mode's,
    ``TRITON_ROBUST_TIMEOUT_SECONDS``, is the longest) or to hand its job back on a stop
    (:data:`STOP_TIMEOUT_SECONDS`)."""
    wind_down = max(
        STOP_TIMEOUT_SECONDS,
        settings.TRITON_TIMEOUT_SECONDS,
        settings.TRITON_ROBUST_TIMEOUT_SECONDS,
    )
    return settings.JOB_TIME_LIMIT_SECONDS + wind_down


def unhealthy(worker: Worker, inflight: JobsInFlight) -> str | None:
    """Why ``worker`` should be restarted, or None: a consumer or worker thread died, or a job's
    thread is stuck (:meth:`JobsInFlight.stuck`)."""
    if not threads_running(worker):
        return "the worker's threads are not all running"
    stuck = inflight.stuck()
    return None if stuck is None else str(stuck)


def build_worker(
    broker: RabbitmqBroker,
    settings: Settings,
    deps: RunnerDeps,
    inflight: JobsInFlight | None = None,
) -> Worker:
    """A Dramatiq worker for ``run_job`` on ``QUEUE_NAME`` (not started); ``inflight``, when
    given, is told of each job it runs.

    Emits ``process_boot`` as Dramatiq's CLI does in each worker process: without it the
    ``TimeLimit`` middleware never starts its watchdog and ``time_limit`` is not enforced.
    """
    register(broker, settings, deps)
    if inflight is not None:
        broker.add_middleware(inflight)
    broker.emit_after("process_boot")
    threads = settings.WORKER_CONCURRENCY
    worker = Worker(broker, queues={settings.QUEUE_NAME}, worker_threads=threads)
    # Dramatiq prefetches twice the threads; a job can run for hours, so take one each.
    worker.queue_prefetch = threads
    return worker


@dataclass
class WorkerProcess:
    """The worker's life: wait for its services, consume, stop on a signal."""

    settings: Settings
    stopping: threading.Event = field(default_factory=threading.Event)
    alive: AliveFile = field(default_factory=lambda: AliveFile(default_alive_file()))

    def _alive_seconds(self, busy_seconds: float) -> float:
        """Alive until ``busy_seconds`` from now, plus the heartbeat's slack."""
        return busy_seconds + 2 * self.settings.WORKER_HEARTBEAT_SECONDS

    def run(self) -> int:
        self.alive.alive_for(self._alive_seconds(READY_RETRY_SECONDS))
        try:
            return self._run()
        finally:
            self.alive.remove()

    def _run(self) -> int:
        settings = self.settings
        metrics = WorkerMetrics()
        client = build_redis(settings)
        store = build_store(settings)
        engine = TritonEngine(
            settings.TRITON_URL,
            timeout_seconds=settings.TRITON_TIMEOUT_SECONDS,
            robust_timeout_seconds=settings.TRITON_ROBUST_TIMEOUT_SECONDS,
            on_request=metrics.triton_request,
        )
        broker = build_broker(settings)
        resend = BrokerQueue(broker, settings.QUEUE_NAME)
        checks: tuple[tuple[str, Callable[[], object]], ...] = (
            ("redis", client.ping),
            ("storage", store.ping),
            ("triton", engine.ready),
        )
        try:
            if not self._wait_ready(checks):
                return 0
            if not broker_timeout_allows_jobs(settings):
                return EXIT_CONFIG
            serve_metrics(settings, metrics)
            deps = build_runner_deps(
                settings, client, store, engine, self.stopping, metrics, robust=engine
            )
            inflight = JobsInFlight(stuck_after_seconds(settings))
            worker = build_worker(broker, settings, deps, inflight)
            worker.start()
            log.info("worker consuming %s", settings.QUEUE_NAME)
            heartbeats = WorkerHeartbeats(
                client,
                prefix=settings.REDIS_PREFIX,
                ttl_seconds=settings.WORKER_HEARTBEAT_SECONDS,
            )
            beating = threading.Event()
            heartbeat = heartbeats.keep_beating(
                settings.QUEUE_NAME,
                worker_id(),
                beating,
                alive=self.alive,
                unhealthy=lambda: unhealthy(worker, inflight),
            )
            build_reaper(deps, resend).run_every(settings.REAPER_INTERVAL_SECONDS, self.stopping)
            while not self.stopping.wait(WAIT_TICK_SECONDS):
                pass
            log.info("worker stopping: the running job, if any, is handed back")
            self.alive.alive_for(self._alive_seconds(STOP_TIMEOUT_SECONDS))
            beating.set()  # no longer counted as consuming
            heartbeat.join(settings.WORKER_HEARTBEAT_SECONDS)  # a stuck one must not stop this
            worker.stop(timeout=STOP_TIMEOUT_SECONDS * MS_PER_SECOND)
            return 0
        finally:
            resend.close()
            broker.close()
            engine.close()
            client.close()

    def stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        self.stopping.set()

    def _wait_ready(self, checks: tuple[tuple[str, Callable[[], object]], ...]) -> bool:
        """Wait until every check passes (Redis, storage, Triton); False if told to stop."""
        for name, check in checks:
            while not _answers(name, check):
                self.alive.alive_for(self._alive_seconds(READY_RETRY_SECONDS))
                if self.stopping.wait(READY_RETRY_SECONDS):
                    return False
        self.alive.alive_for(self._alive_seconds(READY_RETRY_SECONDS))
        return True


def serve_metrics(settings: Settings, metrics: WorkerMetrics) -> None:
    """Serve ``/metrics`` on ``WORKER_METRICS_HOST:WORKER_METRICS_PORT`` (a daemon thread);
    a port already taken is logged, not fatal: jobs matter more than their metrics."""
    port = settings.WORKER_METRICS_PORT
    if port == 0:
        return
    try:
        start_http_server(port, settings.WORKER_METRICS_HOST, registry=metrics.registry)
    except OSError as e:
        log.error("cannot serve metrics on %s:%d: %s", settings.WORKER_METRICS_HOST, port, e)
        return
    log.info("metrics on http://%s:%d/metrics", settings.WORKER_METRICS_HOST, port)


def broker_timeout_allows_jobs(settings: Settings) -> bool:
    """Check that RabbitMQ lets a job run its whole time limit (see
    :mod:`server.integrations.consumer_timeout`) and say plainly when it does not; False only
    when it does not and ``BROKER_TIMEOUT_CHECK`` is ``refuse``."""
    if settings.BROKER_TIMEOUT_CHECK is BrokerTimeoutCheck.OFF:
        return True
    verdict = check_consumer_timeout(
        settings.BROKER_URL,
        job_limit_seconds=settings.JOB_TIME_LIMIT_SECONDS,
        queue_timeout_seconds=settings.CONSUMER_TIMEOUT_SECONDS,
    )
    if verdict.level is VerdictLevel.OK:
        log.info("%s", verdict.message)
        return True
    if verdict.level is VerdictLevel.UNKNOWN:
        log.warning("%s", verdict.message)
        return True
    if settings.BROKER_TIMEOUT_CHECK is BrokerTimeoutCheck.REFUSE:
        log.error("not starting: %s (SUBTONE_BROKER_TIMEOUT_CHECK=refuse)", verdict.message)
        return False
    log.error("%s", verdict.message)
    return True


def _answers(name: str, check: Callable[[], object]) -> bool:
    try:
        check()
    except Exception as e:
        log.warning("waiting for %s: %s", name, e)
        return False
    return True


def main() -> int:
    settings = Settings()
    configure_logging(PROCESS, settings.LOG_LEVEL)
    process = WorkerProcess(settings)
    signal.signal(signal.SIGTERM, process.stop)
    signal.signal(signal.SIGINT, process.stop)
    return process.run()


if __name__ == "__main__":
    raise SystemExit(main())
