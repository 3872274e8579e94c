"""Soak: mixed encodes and decodes from several clients while a chaos loop kills the stack.

    .venv/bin/python bench/soak.py [--minutes 60] [--clients 8] [--seed N]
                                   [--own-rabbitmq | --no-rabbitmq-chaos] [--no-chaos]

Starts the standalone stack with its supervisor on free ports, with its own data folder, its
own Redis (a ``redis-server`` with AOF that the supervisor runs, on a free port), its own Redis
key prefix and, by default, a vhost of its own on the machine's RabbitMQ; with
``--own-rabbitmq`` a RabbitMQ node of its own under the supervisor too (its own node name,
ports and data folder). ``--clients`` threads each run, until the time is up, encodes of short
covers (a few seconds) with small random secrets and decodes of their own results, through the
public client core (``desktop.core.orchestration.encode``/``decode``). Meanwhile a chaos loop
SIGKILLs one program's process group at a time (the worker, Triton, Redis, and RabbitMQ when
the stack runs it) at random intervals, and waits for supervisord to bring it back: the soak
restarts nothing itself.

At the end: every operation succeeded or failed with a code (none *lost*: an exception with no
code, none *stuck*: still running ``--op-timeout`` seconds after it started), every job the
server recorded is finished, every succeeded encode decodes to exactly its secret, and no
program is left down. Prints the counts; writes ``bench/out/soak.json``; exits 1 when any of
those does not hold.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from desktop.core.api import ApiClient  # noqa: E402
from desktop.core.orchestration import decode, encode  # noqa: E402
from desktop.core.uploader import Uploader  # noqa: E402
from server.auth.service import TokenService  # noqa: E402
from server.settings import Settings  # noqa: E402
from server.standalone.private import free_ports, rabbit_vhost, unique_name  # noqa: E402
from server.standalone.stack import Ports  # noqa: E402
from server.standalone.supervisor import Supervisor  # noqa: E402
from subtone.errors import SubtoneError  # noqa: E402
from subtone.stego import wav  # noqa: E402

OUT = ROOT / "bench" / "out" / "soak.json"
PASSPHRASE = "soak passphrase"
RATE, CHANNELS = 16000, 1
COVER_SECONDS = (3.0, 6.0)
SECRET_BYTES = (16, 400)
COVERS_PER_CLIENT = 3
CHAOS_INTERVAL_SECONDS = (8.0, 25.0)
BACK_WITHIN_SECONDS = 90.0
POLL_SECONDS = 0.2
FINAL_SETTLE_SECONDS = 120.0
STACK_SETTINGS: dict[str, object] = {
    # Faster takeovers and re-sends than production, so many jobs survive many kills.
    "JOB_LEASE_SECONDS": 5.0,
    "JOB_STALE_SECONDS": 30,
    "REAPER_INTERVAL_SECONDS": 5,
    "WORKER_HEARTBEAT_SECONDS": 6.0,
    "JOB_MAX_RETRIES": 8,
    "RETRY_MIN_BACKOFF_SECONDS": 0.5,
    "RETRY_MAX_BACKOFF_SECONDS": 5.0,
    "JOB_MAX_LOST_RUNS": 6,
    "JOB_TIME_LIMIT_SECONDS": 600,
    "CONSUMER_TIMEOUT_SECONDS": 900,
    "RATE_LIMIT_PER_MINUTE": 0,
}


@contextlib.contextmanager
def _own_rabbitmq(home: Path) -> Iterator[str]:
    """The environment that makes the supervisor's ``rabbitmq-server`` (and ``rabbitmqctl``)
    a node of this soak's own: its name, ports, data, no plugins. Yields its AMQP URL."""
    amqp, dist = free_ports(2)
    for folder in (home / "mnesia", home / "log"):
        folder.mkdir(parents=True, exist_ok=True)
    plugins = home / "enabled_plugins"
    plugins.write_text("[].\n")
    config = home / "rabbitmq.conf"
    config.write_text(f"listeners.tcp.default = 127.0.0.1:{amqp}\nloopback_users = none\n")
    node = f"soak{amqp}@localhost"
    env = {
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
        "RABBITMQ_LOG_BASE": str(home / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        "RABBITMQ_CONFIG_FILE": str(config.with_suffix("")),
        "RABBITMQ_PID_FILE": str(home / "rabbit.pid"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield f"amqp://guest:guest@127.0.0.1:{amqp}/%2F"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# --- the clients ------------------------------------------------------------------------------


@dataclass
class Counts:
    encodes: int = 0
    decodes: int = 0
    encoded: int = 0
    decoded_exact: int = 0
    decoded_wrong: int = 0
    failed: collections.Counter[str] = field(default_factory=collections.Counter)
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    job_ids: set[str] = field(default_factory=set)


class SoakClient(threading.Thread):
    def __init__(self, n: int, url: str, token: str, work: Path, deadline: float,
                 op_timeout: float, seed: int) -> None:  # fmt: skip
        super().__init__(name=f"soak-client-{n}", daemon=True)
        self.url, self.token, self.deadline, self.op_timeout = url, token, deadline, op_timeout
        self.work = work / f"client-{n}"
        self.work.mkdir(parents=True)
        self.random = random.Random(seed)
        self.counts = Counts()
        self.covers = [self._cover(i) for i in range(COVERS_PER_CLIENT)]
        self.pending: list[tuple[Path, bytes]] = []
        self._serial = 0

    def _cover(self, i: int) -> Path:
        path = self.work / f"cover-{i}.wav"
        seconds = self.random.uniform(*COVER_SECONDS)
        seed = self.random.randrange(1 << 30)
        wav.generate_cover(path, seconds, rate=RATE, channels=CHANNELS, bits=16, seed=seed)
        return path

    def _path(self, stem: str) -> Path:
        self._serial += 1
        return self.work / f"{stem}-{self._serial}"

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # the client itself broke: everything it had in hand is lost
            self.counts.lost.append(f"client thread: {type(e).__name__}: {e}")

    def _run(self) -> None:
        with ApiClient(self.url, self.token) as client, Uploader(client) as uploader:
            while time.monotonic() < self.deadline:
                if self.pending and self.random.random() < 0.5:
                    self._decode(client, uploader, *self.pending.pop(0))
                else:
                    self._encode(client, uploader)
            for stego, secret in self.pending:  # every result is decoded once
                self._decode(client, uploader, stego, secret)

    def _timed(self, what: str, call) -> object | None:
        """``call(cancel)``; None after a failure, which is counted here."""
        cancel = threading.Event()
        timer = threading.Timer(self.op_timeout, cancel.set)
        timer.start()
        try:
            return call(cancel)
        except SubtoneError as e:
            if cancel.is_set():
                self.counts.stuck.append(f"{what}: over {self.op_timeout:.0f} s ({e.code})")
            else:
                self.counts.failed[f"{what}:{e.code}"] += 1
        except Exception as e:  # a failure with no code: lost
            self.counts.lost.append(f"{what}: {type(e).__name__}: {e}")
        finally:
            timer.cancel()
        return None

    def _encode(self, client: ApiClient, uploader: Uploader) -> None:
        self.counts.encodes += 1
        secret = secrets.token_bytes(self.random.randint(*SECRET_BYTES))
        secret_path = self._path("secret")
        secret_path.write_bytes(secret)
        out = self._path("stego").with_suffix(".wav")
        cover = self.random.choice(self.covers)
        summary = self._timed(
            "encode",
            lambda cancel: encode(
                client, cover, secret_path, out, PASSPHRASE, uploader=uploader, cancel=cancel
            ),
        )
        secret_path.unlink()
        if summary is not None:
            self.counts.encoded += 1
            self.counts.job_ids.add(summary.job_id)  # type: ignore[attr-defined]
            self.pending.append((out, secret))

    def _decode(self, client: ApiClient, uploader: Uploader, stego: Path, secret: bytes) -> None:
        self.counts.decodes += 1
        folder = self._path("out")
        folder.mkdir()
        summary = self._timed(
            "decode",
            lambda cancel: decode(
                client, stego, folder, PASSPHRASE, uploader=uploader, cancel=cancel
            ),
        )
        if summary is not None:
            self.counts.job_ids.add(summary.job_id)  # type: ignore[attr-defined]
            got = summary.output.read_bytes()  # type: ignore[attr-defined]
            if got == secret:
                self.counts.decoded_exact += 1
            else:
                self.counts.decoded_wrong += 1
        stego.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


# --- the chaos ----------------------------------------------------------------------------------


@dataclass
class Kill:
    name: str
    at_s: float
    back_s: float | None


class Chaos(threading.Thread):
    """Kills one program's process group at a time and waits until supervisord has it back."""

    def __init__(self, supervisor: Supervisor, targets: list[str], stop: threading.Event,
                 started: float, seed: int) -> None:  # fmt: skip
        super().__init__(name="soak-chaos", daemon=True)
        self.supervisor, self.targets, self.stop, self.started = supervisor, targets, stop, started
        self.random = random.Random(seed)
        self.kills: list[Kill] = []

    def run(self) -> None:
        order: list[str] = []
        while not self.stop.wait(self.random.uniform(*CHAOS_INTERVAL_SECONDS)):
            if not order:
                order = self.random.sample(self.targets, len(self.targets))
            name = order.pop()
            pid = self.supervisor.pids().get(name)
            if pid is None:
                self.kills.append(Kill(name, time.monotonic() - self.started, None))
                continue
            at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.kills.append(Kill(name, at - self.started, self._back(name, pid, at)))

    def _back(self, name: str, old_pid: int, since: float) -> float | None:
        """Seconds until ``name`` runs again with a new pid and the API is ready."""
        while time.monotonic() - since < BACK_WITHIN_SECONDS:
            pid = self.supervisor.pids().get(name)
            if pid is not None and pid != old_pid and self.supervisor.ready():
                return time.monotonic() - since
            time.sleep(POLL_SECONDS)
        return None


# --- the run ------------------------------------------------------------------------------------


def soak(minutes: float, clients: int, *, chaos: bool = True, own_rabbitmq: bool = False,
         rabbitmq_chaos: bool = True, op_timeout: float = 300.0, seed: int | None = None,
         out: Path | None = OUT, report=print) -> dict:  # fmt: skip
    """Run the soak; returns the report (also written to ``out`` unless None)."""
    seed = secrets.randbits(32) if seed is None else seed
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="subtone-soak-"))
    prefix = unique_name("subtone-soak")
    redis_port, api, grpc, store, http, metrics = free_ports(6)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    ports = Ports(api=api, triton_grpc=grpc, localstore=store, triton_http=http,
                  triton_metrics=metrics)  # fmt: skip
    broker_cm = _own_rabbitmq(work / "rabbitmq") if own_rabbitmq else rabbit_vhost("subtone-soak")
    try:
        with broker_cm as broker_url:
            settings = Settings(DATA_DIR=work / "data", REDIS_URL=redis_url, REDIS_PREFIX=prefix,
                                BROKER_URL=broker_url, QUEUE_NAME=f"{prefix}-jobs",
                                **STACK_SETTINGS)  # type: ignore[arg-type]  # fmt: skip
            supervisor = Supervisor(settings, ports)
            try:
                return _run(supervisor, settings, minutes, clients, chaos, own_rabbitmq,
                            rabbitmq_chaos, op_timeout, seed, rng, work, out, report)  # fmt: skip
            finally:
                supervisor.down(report=lambda _: None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(supervisor: Supervisor, settings: Settings, minutes: float, clients: int, chaos: bool,
         own_rabbitmq: bool, rabbitmq_chaos: bool, op_timeout: float, seed: int,
         rng: random.Random, work: Path, out: Path | None, report) -> dict:  # fmt: skip
    t0 = time.monotonic()
    state = supervisor.up(report=lambda _: None)
    report(f"stack up in {time.monotonic() - t0:.1f} s; runs itself: {state.system}")
    issued = _tokens(settings, [f"soak{n}" for n in range(clients)])
    started = time.monotonic()
    deadline = started + minutes * 60
    threads = [
        SoakClient(n, supervisor.api_url, token, work, deadline, op_timeout, rng.randrange(1 << 30))
        for n, token in enumerate(issued.values())
    ]
    targets = ["worker", "triton"] + [s for s in ("redis", "rabbitmq") if s in state.system]
    if not rabbitmq_chaos and "rabbitmq" in targets:
        targets.remove("rabbitmq")
    chaos_thread = Chaos(supervisor, targets, threading.Event(), started, rng.randrange(1 << 30))
    hung = _drive(threads, chaos_thread if chaos else None, deadline, op_timeout)
    elapsed = time.monotonic() - started
    jobs = _server_jobs(supervisor.api_url, list(issued.values()))
    result = {
        "seed": seed,
        "minutes": minutes,
        "elapsed_s": round(elapsed, 1),
        "clients": len(threads),
        **_client_counts(threads, hung),
        **jobs,
        **_stack_health(supervisor, chaos_thread.kills),
        "chaos_targets": targets if chaos else [],
    }
    result["ok"] = not (
        result["lost"] or result["stuck"] or result["decoded_wrong"]
        or jobs["server_jobs_unfinished"] or jobs["server_jobs_failed_without_code"]
        or result["programs_down"] or not result["api_ready"] or result["kills_not_back"]
    )  # fmt: skip
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    print_report(result, report)
    return result


def _tokens(settings: Settings, names: list[str]) -> dict[str, str]:
    """A token for each client, by name."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        tokens = TokenService(client, prefix=settings.REDIS_PREFIX)
        return {name: tokens.create(name)[0] for name in names}
    finally:
        client.close()


def _drive(threads: list[SoakClient], chaos: Chaos | None, deadline: float,
           op_timeout: float) -> list[str]:  # fmt: skip
    """Run the clients (and the chaos) until ``deadline``; the clients still running after."""
    for t in threads:
        t.start()
    if chaos is not None:
        chaos.start()
    while time.monotonic() < deadline:
        time.sleep(1.0)
    if chaos is not None:
        chaos.stop.set()
        chaos.join(BACK_WITHIN_SECONDS + 5)
    for t in threads:
        t.join(op_timeout * 2 + 60)
    return [t.name for t in threads if t.is_alive()]


def _server_jobs(api_url: str, tokens: list[str]) -> dict:
    """Every job the server recorded is finished (failed ones with a code)."""
    unfinished, codeless, jobs_seen = [], [], 0
    settle = time.monotonic() + FINAL_SETTLE_SECONDS
    for token in tokens:
        with ApiClient(api_url, token) as api:
            for job in api.list_jobs().jobs:
                jobs_seen += 1
                while not job.state.finished and time.monotonic() < settle:
                    time.sleep(1.0)
                    job = api.get_job(job.id)
                if not job.state.finished:
                    unfinished.append(f"{job.id} {job.state.value} {job.progress:.2f}")
                elif job.state.value == "failed" and (job.error is None or not job.error.code):
                    codeless.append(job.id)
    return {
        "server_jobs": jobs_seen,
        "server_jobs_unfinished": unfinished,
        "server_jobs_failed_without_code": codeless,
    }


def _client_counts(threads: list[SoakClient], hung: list[str]) -> dict:
    total = Counts()
    for t in threads:
        c = t.counts
        total.encodes += c.encodes
        total.decodes += c.decodes
        total.encoded += c.encoded
        total.decoded_exact += c.decoded_exact
        total.decoded_wrong += c.decoded_wrong
        total.failed.update(c.failed)
        total.lost += c.lost
        total.stuck += c.stuck
    return {
        "encodes": total.encodes,
        "encoded": total.encoded,
        "decodes": total.decodes,
        "decoded_exact": total.decoded_exact,
        "decoded_wrong": total.decoded_wrong,
        "failed_with_code": dict(total.failed),
        "lost": total.lost,
        "stuck": total.stuck + [f"client thread {n} still running" for n in hung],
    }


def _stack_health(supervisor: Supervisor, kills: list) -> dict:
    status = supervisor.status()
    return {
        "kills": [asdict(k) for k in kills],
        "kills_by_program": dict(collections.Counter(k.name for k in kills)),
        "kills_not_back": [asdict(k) for k in kills if k.back_s is None],
        "programs": {s.name: s.state for s in status},
        "programs_down": [s.name for s in status if not s.alive],
        "api_ready": supervisor.ready(),
    }


def print_report(r: dict, report=print) -> None:
    backs = [k["back_s"] for k in r["kills"] if k["back_s"] is not None]
    report(
        f"soak: {r['elapsed_s'] / 60:.1f} min, {r['clients']} clients, seed {r['seed']}\n"
        f"  encodes {r['encodes']} (succeeded {r['encoded']}), decodes {r['decodes']} "
        f"(exact {r['decoded_exact']}, wrong {r['decoded_wrong']})\n"
        f"  failed with a code: {r['failed_with_code'] or 'none'}\n"
        f"  lost {len(r['lost'])}, stuck {len(r['stuck'])}; server jobs {r['server_jobs']} "
        f"(unfinished {len(r['server_jobs_unfinished'])}, failed without a code "
        f"{len(r['server_jobs_failed_without_code'])})\n"
        f"  kills {r['kills_by_program'] or 'none'}; back within "
        f"{max(backs) if backs else 0:.1f} s at worst; not back {len(r['kills_not_back'])}\n"
        f"  programs down at the end: {r['programs_down'] or 'none'}; API ready: {r['api_ready']}"
    )
    for line in (r["lost"] + r["stuck"] + r["server_jobs_unfinished"])[:20]:
        report(f"  ! {line}")
    report("OK" if r["ok"] else "NOT OK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--op-timeout", type=float, default=300.0,
                        help="an encode or decode still running after this is stuck")  # fmt: skip
    parser.add_argument("--no-chaos", action="store_true")
    parser.add_argument("--own-rabbitmq", action="store_true",
                        help="run a RabbitMQ node of the soak's own under the supervisor "
                        "(and kill it too)")  # fmt: skip
    parser.add_argument("--no-rabbitmq-chaos", action="store_true")
    args = parser.parse_args()
    result = soak(args.minutes, args.clients, chaos=not args.no_chaos,
                  own_rabbitmq=args.own_rabbitmq, rabbitmq_chaos=not args.no_rabbitmq_chaos,
                  op_timeout=args.op_timeout, seed=args.seed)  # fmt: skip
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
