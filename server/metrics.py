"""Prometheus metrics of the API: request latency, jobs by state, queue depth, workers.

Each app has its own registry (no module-level singletons). With several API processes
(``API_WORKERS``) the request histogram is kept in prometheus-client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``, set by :mod:`server.api` before the processes start) and
``/metrics``, whichever process answers, adds up every process's. The request histogram is labelled
by route *template* (``/v1/jobs/{job_id}``, never the id); the job and queue gauges are read
when Prometheus scrapes, from Redis and RabbitMQ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.deps import QueueProbe
from server.jobs.repository import JobRepository
from server.settings import MULTIPROC_ENV

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "ApiMetrics", "MetricsMiddleware"]

log = logging.getLogger(__name__)

REQUEST_DURATION = "subtone_http_request_duration_seconds"
JOBS = "subtone_jobs"
QUEUE_DEPTH = "subtone_queue_depth"
WORKERS = "subtone_workers"
UNMATCHED_ROUTE = "unmatched"
"""The route label of requests no route matched (so ids in unknown paths add no series)."""
_SERVER_ERROR = 500


class StackCollector(Collector):
    """Jobs by state (from Redis) and the queue's depth (from RabbitMQ), read on scrape."""

    def __init__(
        self,
        jobs: JobRepository,
        queue: QueueProbe,
        queue_name: str,
        workers: Callable[[], int] | None = None,
    ) -> None:
        self._jobs = jobs
        self._queue = queue
        self._queue_name = queue_name
        self._workers = workers

    def collect(self) -> Iterable[Metric]:
        try:
            counts = self._jobs.count_by_state()
        except Exception:
            log.warning("cannot count jobs for /metrics", exc_info=True)
        else:
            jobs = GaugeMetricFamily(JOBS, "Jobs by state.", labels=["state"])
            for state, count in counts.items():
                jobs.add_metric([state.value], count)
            yield jobs
        try:
            depth = self._queue.queue_depth()
        except Exception:
            log.warning("cannot read the queue depth for /metrics", exc_info=True)
        else:
            gauge = GaugeMetricFamily(QUEUE_DEPTH, "Messages waiting.", labels=["queue"])
            gauge.add_metric([self._queue_name], depth)
            yield gauge
        if self._workers is None:
            return
        try:
            count = self._workers()
        except Exception:
            log.warning("cannot count the workers for /metrics", exc_info=True)
        else:
            workers = GaugeMetricFamily(
                WORKERS, "Workers consuming the queue (a recent heartbeat).", labels=["queue"]
            )
            workers.add_metric([self._queue_name], count)
            yield workers


class ApiMetrics:
    def __init__(self, *, multiprocess: bool = False) -> None:
        """``multiprocess``: report every API process's requests (the environment has
        ``PROMETHEUS_MULTIPROC_DIR``), not only this one's."""
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        self.request_duration = Histogram(
            REQUEST_DURATION,
            "Time to answer a request, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._collector: StackCollector | None = None

    def watch(
        self,
        jobs: JobRepository,
        queue: QueueProbe,
        queue_name: str,
        workers: Callable[[], int] | None = None,
    ) -> None:
        """Report ``jobs``, ``queue`` and how many ``workers`` consume it from now on
        (replacing what was watched)."""
        self.unwatch()
        self._collector = StackCollector(jobs, queue, queue_name, workers)
        self.registry.register(self._collector)

    def unwatch(self) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            self.registry.unregister(collector)

    def render(self) -> bytes:
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        collector = self._collector
        if collector is not None:
            registry.register(collector)
        return generate_latest(registry)


class MetricsMiddleware:
    """Times every HTTP request into :attr:`ApiMetrics.request_duration`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = _SERVER_ERROR
        start = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.request_duration.labels(
                scope.get("method", ""), _route(scope), str(status)
            ).observe(time.perf_counter() - start)


def _route(scope: Scope) -> str:
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
