"""Load benchmark: concurrent clients encoding on the standalone stack, with Triton's dynamic
batching on and off.

    .venv/bin/python bench/load.py [--clients 4] [--seconds 60] [--cover-seconds 12]
                                   [--worker-concurrency 4] [--modes on off]

For each mode it starts the whole stack with the standalone supervisor (free ports, a RabbitMQ
vhost and a Redis prefix of its own, a data folder in a temp dir), creates a token, and runs
``--clients`` threads, each encoding (upload a cover of its own, upload the sealed payload, run
``stego.embed``, follow it, download the result) again and again until ``--seconds`` have
passed; jobs still running then are waited for. Mode ``off`` serves a temp copy of
``model_repository`` with every ``dynamic_batching`` block removed. It reports jobs/min,
failed operations (must be 0), the API's p50/p99 latency (every API request but the event
stream), the worker's, Triton's (with its python-backend stubs) and the API's peak RSS
(psutil, sampled every 0.25 s on the pids in the supervisor's state), and from Triton's
metrics the embed model's requests per execution (its average batch). Stops the stack and
deletes the vhost, the prefix's keys and the temp dir at the end. Prints a Markdown table and
writes ``bench/out/load.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop.core.api import ApiClient  # noqa: E402
from desktop.core.envelope import KdfParams  # noqa: E402
from desktop.core.orchestration import encode  # noqa: E402
from desktop.core.uploader import Uploader  # noqa: E402
from server.auth.service import TokenService  # noqa: E402
from server.standalone.private import private_stack, rabbit_vhost  # noqa: E402
from server.standalone.supervisor import Supervisor  # noqa: E402
from server.standalone.tritonserver import MODEL_REPOSITORY  # noqa: E402
from subtone.stego import wav  # noqa: E402

OUT = ROOT / "bench" / "out"
FAST_KDF = KdfParams(log2_n=10, r=8, p=1)
"""The client's key stretching is not what is measured here."""
PASSPHRASE = "load benchmark passphrase"
SECRET_BYTES = 2_000
RSS_PERIOD_SECONDS = 0.25
MiB = 1 << 20
DYNAMIC_BATCHING = re.compile(r"\ndynamic_batching\s*\{[^}]*\}\n", re.S)
EXECUTIONS = re.compile(r'nv_inference_exec_count\{model="stego_embed"[^}]*\}\s+(\d+)')
REQUESTS = re.compile(r'nv_inference_request_success\{model="stego_embed"[^}]*\}\s+(\d+)')


def without_batching(target: Path) -> Path:
    """A copy of the model repository whose models have no ``dynamic_batching``."""
    shutil.copytree(MODEL_REPOSITORY, target, ignore=shutil.ignore_patterns("__pycache__"))
    for config in target.glob("*/config.pbtxt"):
        text = config.read_text()
        stripped = DYNAMIC_BATCHING.sub("\n", text)
        if stripped == text:
            raise RuntimeError(f"no dynamic_batching block found in {config}")
        config.write_text(stripped)
    return target


class TimingTransport(httpx.HTTPTransport):
    """Records the latency of every request to the API (not the event stream)."""

    def __init__(self, api_port: int, samples: list[float]) -> None:
        super().__init__()
        self._port = api_port
        self._samples = samples
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        response = super().handle_request(request)
        if request.url.port == self._port and not request.url.path.endswith("/events"):
            with self._lock:
                self._samples.append(time.perf_counter() - started)
        return response


class RssSampler(threading.Thread):
    """Peak RSS (MiB) of each named process and its children, sampled until stopped."""

    def __init__(self, pids: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self._pids = pids
        self.peaks: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(RSS_PERIOD_SECONDS):
            for name, pid in self._pids.items():
                try:
                    process = psutil.Process(pid)
                    tree = [process, *process.children(recursive=True)]
                    rss = sum(p.memory_info().rss for p in tree if p.is_running())
                except psutil.Error:
                    continue
                self.peaks[name] = max(self.peaks[name], rss / MiB)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class Result:
    mode: str
    clients: int
    worker_concurrency: int
    cover_seconds: float
    seconds: float = 0.0
    jobs: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    jobs_per_min: float = 0.0
    api_requests: int = 0
    api_p50_ms: float = 0.0
    api_p99_ms: float = 0.0
    job_p50_s: float = 0.0
    embed_requests: int = 0
    embed_executions: int = 0
    requests_per_execution: float = 0.0
    rss_mib: dict[str, float] = field(default_factory=dict)


def triton_embed_counts(port: int) -> tuple[int, int]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    requests = sum(int(m) for m in REQUESTS.findall(text))
    executions = sum(int(m) for m in EXECUTIONS.findall(text))
    return requests, executions


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_mode(mode: str, args: argparse.Namespace, scratch: Path) -> Result:
    result = Result(mode, args.clients, args.worker_concurrency, args.cover_seconds)
    repository = MODEL_REPOSITORY if mode == "on" else without_batching(scratch / "models-off")
    print(f"load: starting the stack (dynamic batching {mode})", flush=True)
    with (
        rabbit_vhost("subtone-load") as broker,
        private_stack(
            scratch / f"data-{mode}", broker, model_repository=repository, prefix="subtone-load",
            report=lambda line: print(f"  {line}", flush=True),
            WORKER_CONCURRENCY=args.worker_concurrency, RATE_LIMIT_PER_MINUTE=0,
            LOG_LEVEL="WARNING",
        ) as stack,
    ):  # fmt: skip
        supervisor = stack.supervisor
        token, _ = TokenService(stack.redis, prefix=stack.settings.REDIS_PREFIX).create("load")
        covers = make_covers(scratch, mode, args.clients, args.cover_seconds)
        load = Load(supervisor, token, covers, scratch, mode, time.monotonic() + args.seconds)
        before = triton_embed_counts(supervisor.ports.triton_metrics)
        sampler = RssSampler(dict(supervisor.pids()))
        sampler.start()
        started = time.monotonic()
        load.run(args.clients)
        result.seconds = round(time.monotonic() - started, 1)
        sampler.stop()
        after = triton_embed_counts(supervisor.ports.triton_metrics)
        load.fill(result)
        result.embed_requests = after[0] - before[0]
        result.embed_executions = after[1] - before[1]
        if result.embed_executions:
            result.requests_per_execution = round(
                result.embed_requests / result.embed_executions, 2
            )
        result.rss_mib = {k: round(v, 1) for k, v in sampler.peaks.items()}
        return result


def make_covers(scratch: Path, mode: str, count: int, seconds: float) -> list[Path]:
    covers = []
    for i in range(count):
        cover = scratch / f"cover-{mode}-{i}.wav"
        wav.generate_cover(cover, seconds, rate=44_100, channels=2, bits=16, seed=i)
        covers.append(cover)
    return covers


class Load:
    """Clients encoding in a loop until ``deadline``, each on its own cover; what they saw."""

    def __init__(self, supervisor: Supervisor, token: str, covers: list[Path], scratch: Path,
                 mode: str, deadline: float) -> None:  # fmt: skip
        self.supervisor, self.token, self.covers = supervisor, token, covers
        self.scratch, self.mode, self.deadline = scratch, mode, deadline
        self.latencies: list[float] = []
        self.job_times: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def run(self, clients: int) -> None:
        threads = [
            threading.Thread(target=self.client_loop, args=(i,), name=f"client-{i}")
            for i in range(clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def client_loop(self, index: int) -> None:
        transport = TimingTransport(self.supervisor.ports.api, self.latencies)
        secret = self.scratch / f"secret-{self.mode}-{index}.bin"
        secret.write_bytes(bytes(range(256)) * (SECRET_BYTES // 256))
        with (
            ApiClient(self.supervisor.api_url, self.token, transport=transport) as api,
            Uploader(api) as uploader,
        ):
            n = 0
            while time.monotonic() < self.deadline:
                n += 1
                self.encode_once(api, uploader, index, secret, n)

    def encode_once(self, api: ApiClient, uploader: Uploader, index: int, secret: Path,
                    n: int) -> None:  # fmt: skip
        out = self.scratch / f"stego-{self.mode}-{index}-{n}.wav"
        started = time.monotonic()
        try:
            encode(
                api, self.covers[index], secret, out, PASSPHRASE, uploader=uploader,
                compress_audio=False, position_kdf=FAST_KDF,
            )  # fmt: skip
        except Exception as e:  # every failure counts; the run goes on
            with self.lock:
                self.errors.append(f"{type(e).__name__}: {e}")
            return
        finally:
            out.unlink(missing_ok=True)
        with self.lock:
            self.job_times.append(time.monotonic() - started)

    def fill(self, result: Result) -> None:
        result.jobs = len(self.job_times)
        result.errors = len(self.errors)
        result.error_samples = self.errors[:5]
        result.jobs_per_min = round(result.jobs / result.seconds * 60, 1)
        result.api_requests = len(self.latencies)
        result.api_p50_ms = round(_percentile(self.latencies, 0.50) * 1000, 1)
        result.api_p99_ms = round(_percentile(self.latencies, 0.99) * 1000, 1)
        result.job_p50_s = round(statistics.median(self.job_times), 2) if self.job_times else 0.0


def table(results: list[Result]) -> str:
    lines = [
        "| dynamic batching | clients | worker threads | seconds | jobs | jobs/min | errors "
        "| API p50 ms | API p99 ms | encode p50 s | embed requests/exec "
        "| worker RSS MiB | Triton RSS MiB | API RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: |",
    ]
    for r in results:
        rss = r.rss_mib
        lines.append(
            f"| {r.mode} | {r.clients} | {r.worker_concurrency} | {r.seconds} | {r.jobs} "
            f"| {r.jobs_per_min} | {r.errors} | {r.api_p50_ms} | {r.api_p99_ms} | {r.job_p50_s} "
            f"| {r.requests_per_execution} ({r.embed_requests}/{r.embed_executions}) "
            f"| {rss.get('worker', 0)} | {rss.get('triton', 0)} | {rss.get('api', 0)} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cover-seconds", type=float, default=12.0)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--modes", nargs="+", choices=["on", "off"], default=["on", "off"])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="subtone-load-") as tmp:
        for mode in args.modes:
            results.append(run_mode(mode, args, Path(tmp)))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "load.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    print(table(results))
    for r in results:
        for sample in r.error_samples:
            print(f"error ({r.mode}): {sample}")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
