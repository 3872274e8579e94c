"""Prometheus metrics of a worker: jobs by kind and outcome, run time, queue wait, retries and
dead letters by code, bytes processed, and the latency and batch size of its Triton requests.

Each worker has its own registry (:class:`WorkerMetrics`, built once at start-up and handed
in); ``python -m server.worker`` serves it on ``WORKER_METRICS_HOST:WORKER_METRICS_PORT``.
The names are the contract of ``packaging/observability`` (dashboard and alert rules).
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = [
    "BYTES_PROCESSED",
    "DEAD_LETTERS",
    "JOBS",
    "JOB_QUEUE_WAIT",
    "JOB_RETRIES",
    "JOB_RUN_DURATION",
    "TRITON_BATCH_WINDOWS",
    "TRITON_REQUEST_DURATION",
    "WorkerMetrics",
]

JOBS: Final = "subtone_worker_jobs"
JOB_RUN_DURATION: Final = "subtone_worker_job_run_seconds"
JOB_QUEUE_WAIT: Final = "subtone_worker_job_queue_wait_seconds"
JOB_RETRIES: Final = "subtone_worker_job_retries"
DEAD_LETTERS: Final = "subtone_worker_dead_letters"
BYTES_PROCESSED: Final = "subtone_worker_bytes_processed"
TRITON_REQUEST_DURATION: Final = "subtone_triton_request_duration_seconds"
TRITON_BATCH_WINDOWS: Final = "subtone_triton_batch_windows"

RUN_BUCKETS: Final = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
WAIT_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
TRITON_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256)

OK: Final = "ok"
ERROR: Final = "error"


class WorkerMetrics:
    """The worker's metrics, in a registry of its own."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.jobs = Counter(
            JOBS,
            "Job runs that ended, by kind and outcome (succeeded, failed, cancelled, retried, "
            "handed_back).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.run_duration = Histogram(
            JOB_RUN_DURATION,
            "Time from a run's start to its end, by kind and outcome.",
            ["kind", "outcome"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.queue_wait = Histogram(
            JOB_QUEUE_WAIT,
            "Time from a job's creation to the start of its first run, by kind.",
            ["kind"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            JOB_RETRIES,
            "Runs ended by a transient error and sent back to be retried, by error code.",
            ["code"],
            registry=registry,
        )
        self.dead_letters = Counter(
            DEAD_LETTERS,
            "Jobs given up after their retries (their message dead-lettered), by error code.",
            ["code"],
            registry=registry,
        )
        self.bytes_processed = Counter(
            BYTES_PROCESSED,
            "Bytes of the jobs that succeeded: read from storage (in) and written (out).",
            ["kind", "direction"],
            registry=registry,
        )
        self.triton_duration = Histogram(
            TRITON_REQUEST_DURATION,
            "Time of one inference request to Triton, by model and outcome (ok, error).",
            ["model", "outcome"],
            buckets=TRITON_BUCKETS,
            registry=registry,
        )
        self.triton_batch = Histogram(
            TRITON_BATCH_WINDOWS,
            "Windows in the Triton execute() that served a request (dynamic batching across "
            "requests and jobs), by model.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )

    def job_ended(self, kind: str, outcome: str, seconds: float) -> None:
        self.jobs.labels(kind, outcome).inc()
        self.run_duration.labels(kind, outcome).observe(seconds)

    def triton_request(self, model: str, seconds: float, batch_windows: int | None) -> None:
        """One Triton request took ``seconds``; ``batch_windows`` is ``None`` when it failed."""
        outcome = ERROR if batch_windows is None else OK
        self.triton_duration.labels(model, outcome).observe(seconds)
        if batch_windows is not None:
            self.triton_batch.labels(model).observe(batch_windows)
