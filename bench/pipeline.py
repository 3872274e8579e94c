"""Pipeline benchmark on the standalone stack (API, local store, worker, Triton as processes).

    .venv/bin/python bench/pipeline.py [--cover-mb 100] [--rss-mb 50 500]
                                       [--clients 50] [--requests-per-client 20]
                                       [--load-client raw|httpx] [--jobs-only]
                                       [--rate 600 ...] [--upload-only] [--upload-runs 3]

Starts the stack with the standalone supervisor on free ports, on the machine's Redis (a key
prefix of its own) and RabbitMQ (a vhost of its own), and measures:

* upload MB/s of a ``--cover-mb`` file through the client core (create, presign, parallel
  part PUTs, complete; hashing the file first, and with its SHA-256 known as an encode knows
  its plane's) against one ``curl -T`` of the same file to the same store (a single
  pre-signed part PUT, no hashing; to a part written in place, and to a part file of its
  own), ``--upload-runs`` times each in turn, their order rotated: the best of each against
  the faster curl's best (``--upload-only``: only this);
* encode MB/s end to end (a fresh cover: seal, upload, job, download), and the job's own
  time (queued → succeeded) as the server records it;
* the worker's and Triton's peak RSS during the encode of a cover of each ``--rss-mb`` size
  (the kernel's high-water mark, reset before each encode through ``/proc/PID/clear_refs``);
* ``POST /v1/jobs`` latency p50/p99 with ``--clients`` concurrent clients (one tenant each,
  ``--requests-per-client`` requests each, one after another on a keep-alive connection), and
  the CPU each request cost the API processes, the worker (which runs the jobs meanwhile),
  supervisord (which reads their log lines), the machine's Redis and RabbitMQ (shared with
  whatever else runs) and the load generator itself, and how many cores the whole machine
  kept busy meanwhile. The default generator (``raw``: asyncio streams) costs a few tens
  of microseconds a request; ``httpx`` (what this bench used first) about 3 ms, which on 2
  shared cores made the clients a large part of what was measured. ``--jobs-only`` measures
  only this.

Everything it starts it stops. Prints a Markdown table; writes ``bench/out/pipeline.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYTHONPATH", str(ROOT))
"""The stack's processes run this tree's code (not wherever the environment's ``subtone`` is
installed from); set ``PYTHONPATH`` to measure another tree's."""

from desktop.core.api import ApiClient  # noqa: E402
from desktop.core.orchestration import encode  # noqa: E402
from desktop.core.uploader import Uploader  # noqa: E402
from server.auth.service import TokenService  # noqa: E402
from server.integrations.localstore import LocalStore  # noqa: E402
from server.standalone.private import private_stack, rabbit_vhost  # noqa: E402
from server.standalone.supervisor import Supervisor  # noqa: E402
from subtone.stego import wav  # noqa: E402

OUT = ROOT / "bench" / "out"
MB = 1_000_000
RATE, CHANNELS, BYTES_PER_FRAME = 44_100, 2, 4
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSPHRASE = "benchmarks are not secrets"
SECRET_BYTES = 20_000
WARMUP_REQUESTS = 5
"""``POST /v1/jobs`` each client sends before the measured ones."""


@contextmanager
def standalone(data_dir: Path, broker_url: str) -> Iterator[Supervisor]:
    with private_stack(
        data_dir, broker_url, prefix="subtone-bench", report=_progress, MAX_UPLOAD_BYTES=4 << 30
    ) as stack:
        yield stack.supervisor


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr)


def make_cover(path: Path, megabytes: float, seed: int) -> Path:
    wav.generate_cover(
        path, megabytes * MB / (RATE * BYTES_PER_FRAME), rate=RATE, channels=CHANNELS, bits=16,
        seed=seed,
    )  # fmt: skip
    return path


def peak_rss_reset(pid: int) -> None:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux, "5" to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Triton runs each python-backend model in a stub process)."""
    found = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            found += process_tree(int(child))
    return found


def tree_peak_mb(pid: int) -> float:
    return sum(rss_mb(p, "VmHWM") for p in process_tree(pid))


# The measurements ----------------------------------------------------------------------------


def measure_upload(
    supervisor: Supervisor, token: str, cover: Path, work: Path, repeat: int = 1
) -> dict:
    """The client core's upload of ``cover`` (hashing it, and with its SHA-256 known) and one
    ``curl -T`` of it (to a part written in place, and to a part file of its own), each
    ``repeat`` times in turn, their order rotated (the file is in the page cache for all after
    the first read): the best of each, against the faster curl's best."""
    size = cover.stat().st_size
    digest = hashlib.sha256(cover.read_bytes()).hexdigest()
    hashing: list[dict] = []
    known: list[dict] = []
    theirs: list[float] = []
    apart: list[float] = []
    store = supervisor_pid(supervisor, "localstore")
    store_cpu: dict[str, list[float]] = {"hashing": [], "known": [], "curl": [], "curl_apart": []}

    def counted(name: str, upload: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:  # the store process's CPU seconds for this one upload
            before = cpu_seconds([store])[store]
            upload()
            store_cpu[name].append(cpu_seconds([store])[store] - before)

        return run

    kinds = [
        counted("hashing", lambda: hashing.append(_client_upload(supervisor, token, cover))),
        counted("curl", lambda: theirs.append(_curl_upload(supervisor, cover, in_place=True))),
        counted("known", lambda: known.append(
            _client_upload(supervisor, token, cover, sha256=digest))),
        counted("curl_apart", lambda: apart.append(
            _curl_upload(supervisor, cover, in_place=False))),
    ]  # fmt: skip
    for round_ in range(repeat):  # each kind in each place of the order in turn
        for n in range(len(kinds)):
            kinds[(round_ + n) % len(kinds)]()
    report: dict = {"cover_mb": size / MB, "runs": repeat}
    baseline = min(min(theirs), min(apart))  # the faster of the two ways curl can send it
    for name, runs in (("hashing", hashing), ("known", known)):
        best = min(runs, key=lambda run: run["total_s"])
        report[name] = {
            "parts": best["parts"],
            "upload_s": best["total_s"],
            "upload_mb_s": size / MB / best["total_s"],
            "complete_s": best["complete_s"],
            "all_s": [run["total_s"] for run in runs],
            "of_curl": baseline / best["total_s"],
            "store_cpu_s": statistics.median(store_cpu[name]),
        }
    for name, times in (("curl", theirs), ("curl_apart", apart)):
        report[name] = {
            "upload_s": min(times),
            "upload_mb_s": size / MB / min(times),
            "of_curl": baseline / min(times),
            "all_s": times,
            "store_cpu_s": statistics.median(store_cpu[name]),
        }
    return report


def _client_upload(
    supervisor: Supervisor, token: str, cover: Path, sha256: str | None = None
) -> dict:
    """One upload through the client core (a new upload: no session store), timing the
    ``complete`` call apart. ``sha256``: the file's, known to the caller (as an encode knows
    its plane's, hashed as it was written); else the client core hashes the file."""
    with ApiClient(supervisor.api_url, token) as client, Uploader(client) as uploader:
        complete = client.complete_upload
        spent: list[float] = []

        def timed_complete(*args: object, **kwargs: object) -> object:
            begin = time.perf_counter()
            try:
                return complete(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                spent.append(time.perf_counter() - begin)

        client.complete_upload = timed_complete  # type: ignore[method-assign,assignment]
        start = time.perf_counter()
        result = uploader.upload_file(cover, sha256=sha256)
        total = time.perf_counter() - start
    assert result.parts_sent >= 1
    return {"total_s": total, "complete_s": sum(spent), "parts": result.parts_sent}


def _curl_upload(supervisor: Supervisor, cover: Path, *, in_place: bool) -> float:
    """One ``curl -T`` of the file as a single part to the same store (no hashing):
    ``in_place``, into an upload planned with a part size (written in place in its data file,
    the path the API's uploads and so the client's parts take), else into one without (each
    part a file of its own: what S3 clients that plan nothing get)."""
    settings = supervisor.settings
    store = LocalStore(settings.localstore_root, supervisor.signing_secret(),
                       public_url=f"http://127.0.0.1:{supervisor.ports.localstore}")  # fmt: skip
    key = f"bench/{uuid.uuid4().hex}/cover.wav"
    part_size = cover.stat().st_size if in_place else None
    upload_id = store.create_multipart(key, "audio/wav", part_size=part_size)
    url = store.presign_upload_part(key, upload_id, 1, 600)
    start = time.perf_counter()
    curl = subprocess.run(
        ["curl", "-sS", "-f", "-o", "/dev/null", "-T", str(cover), url],
        capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    store.abort_multipart(key, upload_id)
    if curl.returncode != 0:
        raise RuntimeError(f"curl -T failed: {curl.stderr}")
    return seconds


def measure_encode(supervisor: Supervisor, token: str, cover: Path, work: Path) -> dict:
    secret = work / "secret.bin"
    secret.write_bytes(os.urandom(SECRET_BYTES))
    out = work / f"{cover.stem}-stego.wav"
    worker, triton = (supervisor_pid(supervisor, name) for name in ("worker", "triton"))
    for pid in (*process_tree(worker), *process_tree(triton)):
        peak_rss_reset(pid)
    before = {"worker": rss_mb(worker, "VmRSS"), "triton": sum(
        rss_mb(p, "VmRSS") for p in process_tree(triton))}  # fmt: skip
    with ApiClient(supervisor.api_url, token) as client, Uploader(client) as uploader:
        start = time.perf_counter()
        summary = encode(client, cover, secret, out, PASSPHRASE, uploader=uploader)
        seconds = time.perf_counter() - start
        job = client.get_job(summary.job_id)
    size = cover.stat().st_size
    assert out.stat().st_size == size
    out.unlink()
    job_seconds = (job.updated_at - job.created_at).total_seconds()
    return {
        "cover_mb": size / MB,
        "encode_s": seconds,
        "encode_mb_s": size / MB / seconds,
        "job_s": job_seconds,
        "job_mb_s": size / MB / job_seconds,
        "worker_rss_before_mb": before["worker"],
        "worker_peak_rss_mb": tree_peak_mb(worker),
        "triton_rss_before_mb": before["triton"],
        "triton_peak_rss_mb": tree_peak_mb(triton),
    }


def supervisor_pid(supervisor: Supervisor, name: str) -> int:
    return supervisor.pids()[name]


class RawClient:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the status: a few tens of
    microseconds of CPU a request (httpx's client costs about 3 ms here), so that on 2 shared
    cores the load generator is not what is measured. Bodies over ``Content-Length`` only
    (what the API answers); no redirects, no TLS."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        fixed = {"Host": f"{self._host}:{self._port}", "Content-Type": "application/json"}
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in (fixed | headers).items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._writer is not None:
            self._writer.close()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._reader is not None and self._writer is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head = f"POST {path} HTTP/1.1\r\n{self._headers}{extra}Content-Length: {len(body)}\r\n\r\n"
        self._writer.write(head.encode() + body)
        answer = await self._reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = 0
        for line in answer.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self._reader.readexactly(length)
        return status


class HttpxClient:
    """The same calls through httpx (what the bench used before: about 3 ms of client CPU a
    request), to compare the load generators."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._client = httpx.AsyncClient(base_url=url, headers=headers, timeout=60)

    async def __aenter__(self) -> HttpxClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        response = await self._client.post(
            path, content=body, headers={"Content-Type": "application/json", **headers}
        )
        return response.status_code


LOAD_CLIENTS = {"raw": RawClient, "httpx": HttpxClient}


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds used so far by each of ``pids`` still alive."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return used


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two :func:`cpu_seconds` of the processes alive at both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


async def _post_jobs(
    url: str,
    tokens: list[str],
    stegos: list[str],
    per_client: int,
    load_client: str,
    rate: float | None = None,
) -> dict:
    """Each client's requests one after another; with ``rate`` (requests/s, all clients
    together) each client sends on a fixed schedule instead (``clients / rate`` apart, the
    clients staggered), and a request's latency counts from when it was *due*: a reply that
    comes late delays that client's next requests, and their wait is counted too (no
    coordinated omission). Each client first sends :data:`WARMUP_REQUESTS` requests that are not
    counted (its connection, the first requests' costs in each API process), and the measured
    requests start together once every client is warm."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    client_type = LOAD_CLIENTS[load_client]
    interval = len(tokens) / rate if rate else 0.0

    warm = asyncio.Barrier(len(tokens))
    began: list[float] = []

    async def post(client: RawClient | HttpxClient, stego: str) -> int:
        body = json.dumps({"kind": "stego.extract", "inputs": {"plane": stego},
                           "params": {"k_pos": os.urandom(32).hex()}}).encode()  # fmt: skip
        return await client.post("/v1/jobs", body, {"Idempotency-Key": uuid.uuid4().hex})

    async def one_client(n: int, token: str, stego: str) -> None:
        async with client_type(url, {"Authorization": f"Bearer {token}"}) as client:
            for _ in range(WARMUP_REQUESTS):
                await post(client, stego)
            if await warm.wait() == 0:
                began.append(time.perf_counter())
            await warm.wait()  # every client sees the same start
            first = began[0] + n / rate if rate else 0.0
            for i in range(per_client):
                due = first + i * interval if rate else time.perf_counter()
                if rate:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                status = await post(client, stego)
                latencies.append(time.perf_counter() - due)
                statuses[status] = statuses.get(status, 0) + 1

    clients = (one_client(n, t, s) for n, (t, s) in enumerate(zip(tokens, stegos, strict=True)))
    await asyncio.gather(*clients)
    elapsed = time.perf_counter() - began[0]
    ordered = sorted(latencies)
    return {
        "clients": len(tokens),
        "offered_per_s": rate,
        "requests": len(latencies),
        "statuses": statuses,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "requests_per_s": len(latencies) / elapsed,
        "seconds": elapsed,
    }


def measure_job_latency(
    supervisor: Supervisor,
    clients: int,
    per_client: int,
    work: Path,
    load_client: str,
    rate: float | None = None,
) -> dict:
    tokens_service = TokenService(
        redis.Redis.from_url(REDIS_URL), prefix=supervisor.settings.REDIS_PREFIX
    )
    tiny = make_cover(work / "tiny.wav", 0.2, seed=9)
    tokens, stegos = [], []
    prefix = uuid.uuid4().hex[:6]
    for n in range(clients):  # one tenant each: a job's input must be the tenant's own upload
        token, _ = tokens_service.create(f"bench-{prefix}-{n}")
        with ApiClient(supervisor.api_url, token) as client, Uploader(client) as uploader:
            stegos.append(uploader.upload_file(tiny).object.id)
        tokens.append(token)
    pids = supervisor.pids()
    groups = {
        "api": process_tree(pids["api"]),
        "worker": process_tree(pids["worker"]),
        # supervisord reads every process's log lines
        "supervisord": [pid for pid in [supervisor.supervisord.pid()] if pid],
        # the machine's, shared with whatever else runs here
        "redis_rabbitmq": pids_named("redis-server", "beam.smp"),
    }
    before = {name: cpu_seconds(group) for name, group in groups.items()}
    client_before, busy_before = time.process_time(), machine_busy_seconds()
    result = asyncio.run(
        _post_jobs(supervisor.api_url, tokens, stegos, per_client, load_client, rate)
    )
    count = result["requests"]
    used = {name: cpu_used(before[name], cpu_seconds(group)) for name, group in groups.items()}
    used["client"] = time.process_time() - client_before
    return result | {
        "load_client": load_client,
        "api_processes": len(groups["api"]),
        **{f"{name}_cpu_ms_per_request": 1000 * s / count for name, s in used.items()},
        "machine_busy_cores": (machine_busy_seconds() - busy_before) / result["seconds"],
        "load_average_1min": os.getloadavg()[0],
    }


def pids_named(*names: str) -> list[int]:
    """Processes whose command name is one of ``names``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (not idle, not waiting on I/O)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cover-mb", type=float, default=100.0)
    parser.add_argument("--rss-mb", type=float, nargs="*", default=[50.0, 500.0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests-per-client", type=int, default=20)
    parser.add_argument("--jobs-only", action="store_true", help="only the POST /v1/jobs load")
    parser.add_argument(
        "--upload-only", action="store_true", help="only the upload against curl -T"
    )  # fmt: skip
    parser.add_argument(
        "--upload-runs", type=int, default=3,
        help="uploads of each kind (client core, curl), alternated; the best of each is shown",
    )  # fmt: skip
    parser.add_argument(
        "--load-client", choices=sorted(LOAD_CLIENTS), default="raw",
        help="the POST /v1/jobs load generator: raw asyncio HTTP/1.1 (light) or httpx",
    )  # fmt: skip
    parser.add_argument(
        "--rate", type=float, nargs="*", default=[],
        help="also offer POST /v1/jobs at these rates (requests/s over all --clients, each "
        "client on a schedule; latency from when a request was due)",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed for the baseline: apt-get install curl")
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    with (
        tempfile.TemporaryDirectory(dir=OUT, prefix="pipeline-") as tmp,
        rabbit_vhost("subtone-bench") as broker,
        standalone(Path(tmp) / "data", broker) as supervisor,
    ):
        work = Path(tmp) / "work"
        work.mkdir()
        token, _ = TokenService(
            redis.Redis.from_url(REDIS_URL), prefix=supervisor.settings.REDIS_PREFIX
        ).create("bench")
        if args.upload_only:
            cover = make_cover(work / "cover.wav", args.cover_mb, seed=1)
            report["upload"] = measure_upload(supervisor, token, cover, work, args.upload_runs)
            (OUT / "pipeline.json").write_text(json.dumps(report, indent=2))
            print_upload(report["upload"])
            return
        if not args.jobs_only:
            measure_pipeline(supervisor, token, work, args, report)
        report["jobs_post"] = []
        runs = [(n, None) for n in sorted({1, args.clients})]
        for clients, rate in [*runs, *((args.clients, r) for r in args.rate)]:
            offered = f" offering {rate:g}/s" if rate else ""
            print(f"POST /v1/jobs with {clients} client(s){offered}", file=sys.stderr)
            report["jobs_post"].append(
                measure_job_latency(
                    supervisor, clients, args.requests_per_client, work, args.load_client, rate
                )
            )
    (OUT / "pipeline.json").write_text(json.dumps(report, indent=2))
    print_report(report)


def measure_pipeline(
    supervisor: Supervisor, token: str, work: Path, args: argparse.Namespace, report: dict
) -> None:
    """The upload and the encodes (everything but the ``POST /v1/jobs`` load)."""
    print(f"generating a {args.cover_mb:g} MB cover", file=sys.stderr)
    cover = make_cover(work / "cover.wav", args.cover_mb, seed=1)
    print("upload: client core vs curl -T", file=sys.stderr)
    report["upload"] = measure_upload(supervisor, token, cover, work, args.upload_runs)
    cover.unlink()
    report["encode"] = []
    for n, size in enumerate([args.cover_mb, *args.rss_mb]):
        print(f"encode of a fresh {size:g} MB cover", file=sys.stderr)
        fresh = make_cover(work / f"cover-{n}.wav", size, seed=100 + n)
        report["encode"].append(measure_encode(supervisor, token, fresh, work))
        fresh.unlink()


def print_report(report: dict) -> None:
    if "upload" in report:
        print_pipeline(report)
    print("\n### POST /v1/jobs (a tenant per client; offered: each client on a schedule, "
          "latency from when due; else one request after another)\n")  # fmt: skip
    print("| clients | offered /s | requests | p50 ms | p99 ms | requests/s | statuses "
          "| CPU ms a request: API / worker / supervisord / Redis+RabbitMQ / load client "
          "| machine busy cores | load average |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for jp in report["jobs_post"]:
        offered = f"{jp['offered_per_s']:g}" if jp["offered_per_s"] else "as fast as answered"
        print(f"| {jp['clients']} | {offered} | {jp['requests']} | {jp['p50_ms']:.1f} "
              f"| {jp['p99_ms']:.1f} | {jp['requests_per_s']:.0f} | {jp['statuses']} "
              f"| {jp['api_cpu_ms_per_request']:.2f} / {jp['worker_cpu_ms_per_request']:.2f} "
              f"/ {jp['supervisord_cpu_ms_per_request']:.2f} "
              f"/ {jp['redis_rabbitmq_cpu_ms_per_request']:.2f} "
              f"/ {jp['client_cpu_ms_per_request']:.2f} ({jp['load_client']}) "
              f"| {jp['machine_busy_cores']:.2f} | {jp['load_average_1min']:.1f} |")  # fmt: skip


def print_upload(up: dict) -> None:
    print(f"\n### Upload of a {up['cover_mb']:.0f} MB file to the local store "
          f"(best of {up['runs']}, the four in turn, their order rotated)\n")  # fmt: skip
    print("| client | seconds | MB/s | of the faster curl's speed | complete s "
          "| store CPU s (median) | all runs s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    rows = (
        ("known", "subtone client core, SHA-256 known (an encode's plane, hashed as written)"),
        ("hashing", "subtone client core, hashing the file first"),
        ("curl", "one `curl -T` (a single part written in place, as the client's; no checksum)"),
        ("curl_apart", "one `curl -T` (a single part to a file of its own; no checksum)"),
    )
    for name, label in rows:
        run = up[name]
        parts = f" ({run['parts']} parts)" if "parts" in run else ""
        complete = f"{run['complete_s']:.2f}" if "complete_s" in run else ""
        print(f"| {label}{parts} | {run['upload_s']:.2f} | {run['upload_mb_s']:.0f} "
              f"| {run['of_curl']:.0%} | {complete} | {run['store_cpu_s']:.2f} "
              f"| {', '.join(f'{s:.2f}' for s in run['all_s'])} |")  # fmt: skip


def print_pipeline(report: dict) -> None:
    print_upload(report["upload"])
    print("\n### Encode end to end (fresh cover: seal, upload, job, download)\n")
    print("| cover MB | encode s | encode MB/s | job s | job MB/s | worker RSS before → peak MB "
          "| Triton RSS before → peak MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for e in report["encode"]:
        print(f"| {e['cover_mb']:.0f} | {e['encode_s']:.1f} | {e['encode_mb_s']:.1f} "
              f"| {e['job_s']:.1f} | {e['job_mb_s']:.1f} "
              f"| {e['worker_rss_before_mb']:.0f} → {e['worker_peak_rss_mb']:.0f} "
              f"| {e['triton_rss_before_mb']:.0f} → {e['triton_peak_rss_mb']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
