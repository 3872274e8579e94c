"""Standalone mode: the whole stack as processes on one machine, no containers.

``up`` uses the machine's Redis and RabbitMQ (starting them if they are installed but
stopped), then starts the local store, Triton (the binary in the ``nvidia-pytriton`` wheel),
a worker and the API, each a detached process logging under ``<data>/standalone/logs``. It
records what it started in a state file, so ``down`` stops exactly that and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis
from pydantic import SecretStr

from server.integrations import tritonserver
from server.settings import Settings, StorageBackend
from subtone.errors import SubtoneError

__all__ = [
    "DEFAULT_PORTS",
    "Ports",
    "ServiceStatus",
    "StandaloneError",
    "Supervisor",
    "rabbitmq_consumer_timeout_ms",
]

READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.2
RABBITMQ_START_TIMEOUT_SECONDS = 90
SECRET_FILE = "signing-secret"  # noqa: S105 - a file name
STATE_FILE = "state.json"
SYSTEM_SERVICES = ("redis", "rabbitmq")


class StandaloneError(SubtoneError):
    code = "standalone_error"
    status = 500


@dataclass(frozen=True)
class Ports:
    api: int = 8600
    triton_grpc: int = 8601
    localstore: int = 8602
    triton_http: int = 8603
    triton_metrics: int = 8604

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: int) -> Ports:
        """The ports the settings name (API, local store, Triton's gRPC), then ``overrides``."""
        triton = urlsplit(f"//{settings.TRITON_URL}").port or cls.triton_grpc
        ports = {
            "api": settings.API_PORT,
            "localstore": settings.LOCALSTORE_PORT,
            "triton_grpc": triton,
        }
        return replace(cls(**ports), **overrides)


DEFAULT_PORTS = Ports()


@dataclass
class State:
    pids: dict[str, int] = field(default_factory=dict)
    system: dict[str, int] = field(default_factory=dict)
    """System services ``up`` started itself (``redis``, ``rabbitmq``), with their pids."""
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**data)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    alive: bool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _wait(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL_SECONDS)
    tail = ""
    if log is not None and log.exists():
        tail = "\n" + log.read_text(errors="replace")[-3000:]
    raise StandaloneError(f"{what} did not become ready within {timeout:.0f} s.{tail}")


def _run_or_explain(argv: list[str], what: str, timeout: float = 120.0) -> None:
    """Run a system command; a failure is a :class:`StandaloneError` saying what it printed."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.CalledProcessError as e:
        said = (e.stderr or e.stdout or "").strip()[-1500:]
        hint = " (are you root? try `sudo systemctl start` it)" if os.geteuid() != 0 else ""
        raise StandaloneError(
            f"Could not {what}{hint}: `{' '.join(argv[:2])}` exited with {e.returncode}."
            + (f"\n{said}" if said else ""),
            code="service_start_failed",
        ) from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise StandaloneError(f"Could not {what}: {e}.", code="service_start_failed") from e


def rabbitmq_consumer_timeout_ms() -> int | None:
    """The local RabbitMQ's global ``consumer_timeout`` (ms), or None when it cannot be read
    (no rabbitmqctl, not allowed, not running) or is disabled."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return None
    try:
        out = subprocess.run(
            [ctl, "-q", "eval", "application:get_env(rabbit, consumer_timeout)."],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.fullmatch(r"\{ok,(\d+)\}", out.strip())
    return int(found.group(1)) if found else None


class Supervisor:
    """Starts, checks and stops the standalone stack described by ``settings``."""

    def __init__(
        self,
        settings: Settings,
        ports: Ports | None = None,
        *,
        model_repository: Path = tritonserver.MODEL_REPOSITORY,
    ) -> None:
        """``ports`` default to those of the stack ``up`` last started here, else to the
        settings' (:meth:`Ports.from_settings`); Triton serves ``model_repository``."""
        self.settings = settings
        self.model_repository = model_repository
        self.home = settings.DATA_DIR / "standalone"
        self.logs = self.home / "logs"
        self.state_path = self.home / STATE_FILE
        if ports is None:
            recorded = State.load(self.state_path).ports
            ports = Ports(**recorded) if recorded else Ports.from_settings(settings)
        self.ports = ports
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        """Processes this supervisor started, kept so that they are reaped when stopped."""

    # Environment shared by every process we start -------------------------------------

    def signing_secret(self) -> str:
        path = self.home / SECRET_FILE
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def child_env(self) -> dict[str, str]:
        """The environment of every process: these settings, with the ports of this stack."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUBTONE_")}
        for name, value in self.settings.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"SUBTONE_{name}"] = str(value.value if isinstance(value, Enum) else value)
        env.update(
            {
                "SUBTONE_LOCALSTORE_PORT": str(self.ports.localstore),
                "SUBTONE_LOCALSTORE_ROOT": str(self.settings.localstore_root),
                "SUBTONE_SIGNING_SECRET": self.signing_secret(),
                "SUBTONE_API_PORT": str(self.ports.api),
                "SUBTONE_TRITON_URL": f"127.0.0.1:{self.ports.triton_grpc}",
            }
        )
        if self.settings.LOCALSTORE_PUBLIC_URL is None:
            env["SUBTONE_LOCALSTORE_PUBLIC_URL"] = f"http://127.0.0.1:{self.ports.localstore}"
        return env

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.API_HOST}:{self.ports.api}"

    # System services ------------------------------------------------------------------

    def _redis_ok(self) -> bool:
        try:
            client = redis.Redis.from_url(self.settings.REDIS_URL, socket_timeout=1.0)
            return bool(client.ping())
        except redis.RedisError:
            return False

    def ensure_redis(self, state: State) -> None:
        if self._redis_ok():
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise StandaloneError(
                f"Redis is not running at {self.settings.REDIS_URL} and is not installed. "
                "Install it with `apt-get install redis-server`, or point SUBTONE_REDIS_URL "
                "at a running one.",
                code="redis_missing",
            )
        url = urlsplit(self.settings.REDIS_URL)
        data = self.home / "redis"
        data.mkdir(parents=True, exist_ok=True)
        pidfile = data / "redis.pid"
        _run_or_explain(
            [
                binary,
                "--daemonize", "yes",
                "--bind", url.hostname or "127.0.0.1",
                "--port", str(url.port or 6379),
                "--dir", str(data),
                "--appendonly", "yes",
                "--pidfile", str(pidfile),
                "--logfile", str(self.logs / "redis.log"),
            ],
            "start Redis",
        )  # fmt: skip
        _wait(self._redis_ok, 30, "Redis", self.logs / "redis.log")
        state.system["redis"] = int(pidfile.read_text())

    def _rabbit_ok(self) -> bool:
        url = urlsplit(self.settings.BROKER_URL)
        return _port_open(url.hostname or "127.0.0.1", url.port or 5672)

    def ensure_rabbitmq(self, state: State, report: Callable[[str], None] = print) -> None:
        if not self._rabbit_ok():
            self._start_rabbitmq(state)
        self._check_consumer_timeout(report, owned="rabbitmq" in state.system)

    def _start_rabbitmq(self, state: State) -> None:
        binary = shutil.which("rabbitmq-server")
        ctl = shutil.which("rabbitmqctl")
        if binary is None or ctl is None:
            raise StandaloneError(
                f"RabbitMQ is not running at {urlsplit(self.settings.BROKER_URL).netloc} and "
                "is not installed. Install it with `apt-get install rabbitmq-server`, or point "
                "SUBTONE_BROKER_URL at a running one.",
                code="rabbitmq_missing",
            )
        _run_or_explain([binary, "-detached"], "start RabbitMQ")
        _run_or_explain(
            [ctl, "-q", "await_startup", "--timeout", str(RABBITMQ_START_TIMEOUT_SECONDS)],
            "wait for RabbitMQ to start",
            timeout=RABBITMQ_START_TIMEOUT_SECONDS + 30,
        )
        _wait(self._rabbit_ok, 30, "RabbitMQ")
        pid = subprocess.run([ctl, "-q", "eval", "os:getpid()."], capture_output=True, text=True)
        state.system["rabbitmq"] = int(pid.stdout.strip().strip('"') or 0)

    def _check_consumer_timeout(self, report: Callable[[str], None], *, owned: bool) -> None:
        """RabbitMQ before 3.12 ignores our queue's ``x-consumer-timeout`` and applies its
        global ``consumer_timeout`` (30 min by default): a longer job would be redelivered
        mid-run. On a RabbitMQ ``up`` started, raise it; on the machine's own, say so."""
        wanted = self.settings.CONSUMER_TIMEOUT_SECONDS * 1000
        current = rabbitmq_consumer_timeout_ms()
        if current is None or current >= wanted:
            return
        if owned:
            _run_or_explain(
                ["rabbitmqctl", "-q", "eval",
                 f"application:set_env(rabbit, consumer_timeout, {wanted})."],
                "set RabbitMQ's consumer_timeout",
            )  # fmt: skip
            return
        report(
            f"note: RabbitMQ's consumer_timeout ({current // 60_000} min) is below the job time "
            f"limit ({self.settings.JOB_TIME_LIMIT_SECONDS // 60} min); jobs longer than that "
            f"would be delivered twice. Set consumer_timeout = {wanted} in rabbitmq.conf."
        )

    # Our processes --------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], state: State) -> int:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        self._children[process.pid] = process
        state.pids[name] = process.pid
        state.save(self.state_path)
        return process.pid

    def _triton_argv(self) -> tuple[list[str], dict[str, str]]:
        install = tritonserver.find_install()
        workdir = self.home / "triton"
        backends = tritonserver.prepare_backend_directory(workdir / "backends", install)
        ports = tritonserver.TritonPorts(
            http=self.ports.triton_http,
            grpc=self.ports.triton_grpc,
            metrics=self.ports.triton_metrics,
        )
        argv = tritonserver.build_command(
            install,
            model_repository=self.model_repository,
            backend_directory=backends,
            ports=ports,
            shm_prefix=f"subtone-standalone-{self.ports.triton_grpc}-",
            load_models=tritonserver.ALL_MODELS,  # explicit control: a crashed model reloads
        )
        return argv, tritonserver.build_environment(install, backends, self.child_env())

    def _ready(self, name: str, check: Callable[[], bool], pid: int) -> None:
        def ok() -> bool:
            if not _alive(pid):
                raise StandaloneError(
                    f"{name} exited while starting; see {self.logs / (name + '.log')}:\n"
                    + (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                )
            return check()

        _wait(ok, READY_TIMEOUT_SECONDS, name, self.logs / f"{name}.log")

    def _http_ok(self, url: str) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == httpx.codes.OK
        except httpx.HTTPError:
            return False

    def up(self, report: Callable[[str], None] = print) -> State:
        """Start everything not already running; safe to call twice."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        state = State.load(self.state_path)
        state.ports = asdict(self.ports)
        self.ensure_redis(state)
        self.ensure_rabbitmq(state, report)
        state.save(self.state_path)
        env = self.child_env()
        py = sys.executable
        localstore = [
            py, "-m", "server.localstore",
            "--root", str(self.settings.localstore_root),
            "--host", self.settings.LOCALSTORE_HOST,
            "--port", str(self.ports.localstore),
            "--secret-env", "SUBTONE_SIGNING_SECRET",
        ]  # fmt: skip
        services: list[tuple[str, Callable[[], tuple[list[str], dict[str, str]]], str]] = []
        if self.settings.STORAGE_BACKEND is StorageBackend.LOCAL:
            self.settings.localstore_root.mkdir(parents=True, exist_ok=True)
            services.append(
                (
                    "localstore",
                    lambda: (localstore, env),
                    f"http://127.0.0.1:{self.ports.localstore}/healthz",
                )
            )
        services += [
            (
                "triton",
                self._triton_argv,
                f"http://127.0.0.1:{self.ports.triton_http}/v2/health/ready",
            ),
            ("worker", lambda: ([py, "-m", "server.worker"], env), ""),
            ("api", lambda: ([py, "-m", "server.api"], env), f"{self.api_url}/healthz"),
        ]
        for name, command, health in services:
            pid = state.pids.get(name)
            if pid is not None and _alive(pid):
                report(f"{name}: already running (pid {pid})")
                continue
            if pid is not None and (dead := self._children.pop(pid, None)) is not None:
                dead.wait()  # reaped already by _alive; this tells its Popen
            argv, child_env = command()
            pid = self._spawn(name, argv, child_env, state)
            if health:
                self._ready(name, lambda h=health: self._http_ok(h), pid)  # type: ignore[misc]
            report(f"{name}: started (pid {pid})")
        self._ready("api", lambda: self._http_ok(f"{self.api_url}/readyz"), state.pids["api"])
        state.save(self.state_path)
        return state

    def status(self) -> list[ServiceStatus]:
        state = State.load(self.state_path)
        rows = [ServiceStatus(n, p, _alive(p)) for n, p in state.pids.items()]
        rows.append(ServiceStatus("redis", state.system.get("redis"), self._redis_ok()))
        rows.append(ServiceStatus("rabbitmq", state.system.get("rabbitmq"), self._rabbit_ok()))
        return rows

    def ready(self) -> bool:
        return self._http_ok(f"{self.api_url}/readyz")

    def down(self, report: Callable[[str], None] = print) -> None:
        """Stop what ``up`` started, newest first; leave everything else alone."""
        state = State.load(self.state_path)
        for name in reversed(list(state.pids)):
            self._stop(name, state.pids[name], report)
        state.pids.clear()
        if "redis" in state.system:
            self._stop("redis", state.system.pop("redis"), report)
        if "rabbitmq" in state.system:
            ctl = shutil.which("rabbitmqctl")
            pid = state.system.pop("rabbitmq")
            if ctl:
                subprocess.run([ctl, "-q", "stop"], check=False, timeout=120)
            if pid:
                self._stop("rabbitmq", pid, report)
            report("rabbitmq: stopped")
        state.save(self.state_path)

    def stop_service(self, name: str, report: Callable[[str], None] = print) -> None:
        """Stop one process ``up`` started (``api``, ``worker``, ``triton``, ``localstore``),
        leaving the others running; ``up`` starts it again."""
        state = State.load(self.state_path)
        pid = state.pids.pop(name, None)
        if pid is None:
            raise StandaloneError(
                f"{name} is not a process this stack started "
                f"(it has: {', '.join(state.pids) or 'none'}).",
                code="unknown_service",
            )
        self._stop(name, pid, report)
        state.save(self.state_path)

    def _stop(self, name: str, pid: int, report: Callable[[str], None]) -> None:
        child = self._children.pop(pid, None)
        try:
            if not _alive(pid):
                return
            try:
                if name in SYSTEM_SERVICES:
                    os.kill(pid, signal.SIGTERM)
                else:  # our processes lead their own session: stop their children too
                    os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(POLL_SECONDS)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
            report(f"{name}: stopped")
        finally:
            if child is not None:  # reap it (a process started by this supervisor)
                child.wait(timeout=STOP_TIMEOUT_SECONDS)
