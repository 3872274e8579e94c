"""Standalone mode: the whole stack as processes on one machine, no containers, kept up by
supervisord.

``up`` writes a supervisord configuration under ``<data>/standalone``, starts supervisord
(unless it already runs) and asks it, over its XML-RPC unix socket, to start every program
that is not running: Redis and RabbitMQ when the machine's are not running (and installed),
then the local store, Triton (the binary in the ``nvidia-pytriton`` wheel, through
``python -m server.standalone.tritonserver``), a worker and the API. supervisord restarts a
program whenever it exits (``autorestart``); one that dies again while starting is retried
with a growing back-off (1 s, 2 s, 3 s, …). ``status`` reads supervisord's view; ``down``
stops every program, then supervisord, then anything still marked as started by this stack
(a child of a supervisord killed outright), and nothing else.

Every process of the stack carries ``SUBTONE_STANDALONE_HOME=<its home>`` in its
environment: that is how ``down`` (and an ``up`` that finds supervisord gone) recognises
what this stack started.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from http.client import HTTPException
from pathlib import Path
from typing import Any, Final, TypeVar, cast
from urllib.parse import urlsplit

import httpx
import redis
from pydantic import SecretStr
from supervisor.xmlrpc import SupervisorTransport

from server.integrations.consumer_timeout import (
    VerdictLevel,
    check_consumer_timeout,
    global_consumer_timeout_ms,
)
from server.settings import Settings, StorageBackend
from server.standalone import tritonserver
from subtone.errors import SubtoneError

__all__ = [
    "DEFAULT_PORTS",
    "HOME_MARKER",
    "Ports",
    "ServiceStatus",
    "StandaloneError",
    "State",
    "Supervisor",
    "rabbitmq_consumer_timeout_ms",
]

READY_TIMEOUT_SECONDS: Final = 120.0
SUPERVISORD_START_SECONDS: Final = 30.0
SUPERVISORD_STOP_SECONDS: Final = 150.0
STRAY_STOP_SECONDS: Final = 10.0
POLL_SECONDS: Final = 0.2
RABBITMQ_START_TIMEOUT_SECONDS: Final = 90
SECRET_FILE: Final = "signing-secret"  # noqa: S105 - a file name
STATE_FILE: Final = "state.json"
CONFIG_FILE: Final = "supervisord.conf"
SOCKET_FILE: Final = "supervisor.sock"
PID_FILE: Final = "supervisord.pid"
HOME_MARKER: Final = "SUBTONE_STANDALONE_HOME"
"""In the environment of every process of the stack: the home of the stack that started it."""
START_SECONDS: Final = 1
"""A program that exits sooner than this after starting is retried with back-off."""
START_RETRIES: Final = 1000
"""Back-off retries before supervisord gives up on a program (``FATAL``): the delay grows by
a second each time, so that is days; ``up`` starts a given-up program again."""
LOG_BYTES: Final = "10MB"
LOG_BACKUPS: Final = 3

SYSTEM_SERVICES: Final = ("redis", "rabbitmq")
OUR_SERVICES: Final = ("localstore", "triton", "worker", "api")

# supervisord's process states (supervisor.states.ProcessStates)
RUNNING: Final = "RUNNING"
STARTING: Final = "STARTING"
BACKOFF: Final = "BACKOFF"
STOPPING: Final = "STOPPING"
FATAL: Final = "FATAL"
NOT_RUNNING: Final = "NOT_RUNNING"  # supervisord's fault name
BAD_NAME: Final = "BAD_NAME"


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
    worker_metrics: int = 8605

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: int) -> Ports:
        """The ports the settings name (API, local store, Triton's gRPC, the worker's
        metrics), then ``overrides``."""
        triton = urlsplit(f"//{settings.TRITON_URL}").port or cls.triton_grpc
        ports = {
            "api": settings.API_PORT,
            "localstore": settings.LOCALSTORE_PORT,
            "triton_grpc": triton,
            "worker_metrics": settings.WORKER_METRICS_PORT,
        }
        return replace(cls(**ports), **overrides)


DEFAULT_PORTS = Ports()


@dataclass
class State:
    """What ``up`` decided, for ``status`` and ``down`` (which take no options)."""

    ports: dict[str, int] = field(default_factory=dict)
    system: list[str] = field(default_factory=list)
    """System services this stack runs itself (``redis``, ``rabbitmq``): the machine's were
    not running when supervisord started."""

    @classmethod
    def load(cls, path: Path) -> State:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(ports=data.get("ports", {}), system=list(data.get("system", [])))

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    alive: bool
    state: str = ""
    """supervisord's word for it (``RUNNING``, ``BACKOFF``, …), or what else is known."""


@dataclass(frozen=True)
class Program:
    """One ``[program:NAME]`` of the configuration."""

    name: str
    argv: list[str]
    stop_seconds: int = 10
    health: Callable[[], bool] | None = None
    """Answers when the program serves; ``None``: the API's ``/readyz`` covers it."""


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


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == httpx.codes.OK
    except httpx.HTTPError:
        return False


def _tail(path: Path, size: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def _run_or_explain(
    argv: list[str], what: str, timeout: float = 120.0, env: dict[str, str] | None = None
) -> None:
    """Run a system command; a failure is a :class:`StandaloneError` saying what it printed."""
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, timeout=timeout, env=env)
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
    return global_consumer_timeout_ms()[1]


def marked_processes(home: Path) -> list[int]:
    """Pids of the processes whose environment says this stack (``home``) started them."""
    marker = f"{HOME_MARKER}={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _conf_value(text: str) -> str:
    """``text`` in a supervisord configuration value (``%`` starts an expansion there)."""
    return text.replace("%", "%%")


_F = TypeVar("_F", bound=Callable[..., Any])


def _closing_rpc(method: _F) -> _F:
    """Close the connection to supervisord when ``method`` returns (it opens its own)."""

    @functools.wraps(method)
    def wrapper(self: Supervisor, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._close_rpc()

    return cast(_F, wrapper)


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
        self.model_repository = Path(model_repository).resolve()
        self.home = settings.DATA_DIR.resolve() / "standalone"
        self.logs = self.home / "logs"
        self.state_path = self.home / STATE_FILE
        self.config_path = self.home / CONFIG_FILE
        self.socket_path = self.home / SOCKET_FILE
        self.pid_path = self.home / PID_FILE
        if ports is None:
            recorded = State.load(self.state_path).ports
            ports = Ports(**recorded) if recorded else Ports.from_settings(settings)
        self.ports = ports
        self._transport: SupervisorTransport | None = None

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
                "SUBTONE_WORKER_METRICS_PORT": str(self.ports.worker_metrics),
                HOME_MARKER: str(self.home),
            }
        )
        if self.settings.LOCALSTORE_PUBLIC_URL is None:
            env["SUBTONE_LOCALSTORE_PUBLIC_URL"] = f"http://127.0.0.1:{self.ports.localstore}"
        return env

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.API_HOST}:{self.ports.api}"

    # The programs -----------------------------------------------------------------------

    def _redis_ok(self) -> bool:
        try:
            client = redis.Redis.from_url(self.settings.REDIS_URL, socket_timeout=1.0)
            with contextlib.closing(client):
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _rabbit_ok(self) -> bool:
        url = urlsplit(self.settings.BROKER_URL)
        return _port_open(url.hostname or "127.0.0.1", url.port or 5672)

    def redis_program(self) -> Program:
        """Redis as a program of the stack (when the machine's is not running)."""
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
        argv = [
            binary,
            "--daemonize", "no",
            "--bind", url.hostname or "127.0.0.1",
            "--port", str(url.port or 6379),
            "--dir", str(data),
            "--appendonly", "yes",
        ]  # fmt: skip
        return Program("redis", argv, stop_seconds=30, health=self._redis_ok)

    def rabbitmq_program(self) -> Program:
        """RabbitMQ as a program of the stack (when the machine's is not running)."""
        binary = shutil.which("rabbitmq-server")
        if binary is None or shutil.which("rabbitmqctl") is None:
            raise StandaloneError(
                f"RabbitMQ is not running at {urlsplit(self.settings.BROKER_URL).netloc} and "
                "is not installed. Install it with `apt-get install rabbitmq-server`, or point "
                "SUBTONE_BROKER_URL at a running one.",
                code="rabbitmq_missing",
            )
        return Program("rabbitmq", [binary], stop_seconds=60, health=self._rabbit_ok)

    def programs(self, system: list[str]) -> list[Program]:
        """Every program of the stack, in start order (``system``: the system services it
        runs itself)."""
        py = sys.executable
        found: list[Program] = []
        if "redis" in system:
            found.append(self.redis_program())
        if "rabbitmq" in system:
            found.append(self.rabbitmq_program())
        if self.settings.STORAGE_BACKEND is StorageBackend.LOCAL:
            store = [
                py, "-m", "server.localstore",
                "--root", str(self.settings.localstore_root),
                "--host", self.settings.LOCALSTORE_HOST,
                "--port", str(self.ports.localstore),
                "--secret-env", "SUBTONE_SIGNING_SECRET",
            ]  # fmt: skip
            health = f"http://127.0.0.1:{self.ports.localstore}/healthz"
            found.append(Program("localstore", store, health=lambda: _http_ok(health)))
        triton = [
            py, "-m", "server.standalone.tritonserver",
            "--workdir", str(self.home / "triton"),
            "--model-repository", str(self.model_repository),
            "--http", str(self.ports.triton_http),
            "--grpc", str(self.ports.triton_grpc),
            "--metrics", str(self.ports.triton_metrics),
            "--shm-prefix", f"subtone-standalone-{self.ports.triton_grpc}-",
        ]  # fmt: skip
        triton_ready = f"http://127.0.0.1:{self.ports.triton_http}/v2/health/ready"
        found.append(
            Program("triton", triton, stop_seconds=15, health=lambda: _http_ok(triton_ready))
        )
        # The worker hands its job back on SIGTERM within server.worker.STOP_TIMEOUT_SECONDS.
        found.append(Program("worker", [py, "-m", "server.worker"], stop_seconds=100))
        api_health = f"{self.api_url}/healthz"
        found.append(Program("api", [py, "-m", "server.api"], health=lambda: _http_ok(api_health)))
        return found

    def config_text(self, programs: list[Program]) -> str:
        """The supervisord configuration running ``programs``."""
        lines = [
            "[unix_http_server]",
            f"file={_conf_value(str(self.socket_path))}",
            "chmod=0700",
            "",
            "[supervisord]",
            f"logfile={_conf_value(str(self.logs / 'supervisord.log'))}",
            f"logfile_maxbytes={LOG_BYTES}",
            f"logfile_backups={LOG_BACKUPS}",
            f"pidfile={_conf_value(str(self.pid_path))}",
            f"childlogdir={_conf_value(str(self.logs))}",
            f"directory={_conf_value(str(self.home))}",
            "nodaemon=false",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
        ]
        for priority, program in enumerate(programs, start=1):
            lines += [
                f"[program:{program.name}]",
                f"command={_conf_value(shlex.join(program.argv))}",
                f"priority={priority * 10}",
                f"directory={_conf_value(str(self.home))}",
                "autostart=false",  # `up` starts them, in order, and says what it did
                "autorestart=true",
                f"startsecs={START_SECONDS}",
                f"startretries={START_RETRIES}",
                "stopsignal=TERM",
                f"stopwaitsecs={program.stop_seconds}",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={_conf_value(str(self.logs / (program.name + '.log')))}",
                f"stdout_logfile_maxbytes={LOG_BYTES}",
                f"stdout_logfile_backups={LOG_BACKUPS}",
                "",
            ]
        return "\n".join(lines)

    # supervisord ------------------------------------------------------------------------

    def _rpc(self) -> Any | None:
        """supervisord's XML-RPC ``supervisor`` namespace, or None when it does not answer."""
        if not self.socket_path.exists():
            return None
        self._close_rpc()
        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        self._transport = transport
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        rpc: Any = proxy.supervisor
        try:
            if rpc.getState()["statename"] != RUNNING:
                return None
        except (OSError, HTTPException, xmlrpc.client.Error):
            return None
        return rpc

    def _close_rpc(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def _supervisord_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None

    def _start_supervisord(self, env: dict[str, str]) -> Any:
        """Start supervisord with ``env`` (which every program inherits); its RPC."""
        argv = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.config_path)]
        _run_or_explain(argv, "start supervisord", env=env)  # it daemonizes and returns
        deadline = time.monotonic() + SUPERVISORD_START_SECONDS
        while (rpc := self._rpc()) is None:
            if time.monotonic() > deadline:
                raise StandaloneError(
                    "supervisord did not answer on its socket within "
                    f"{SUPERVISORD_START_SECONDS:.0f} s:\n" + _tail(self.logs / "supervisord.log"),
                    code="service_start_failed",
                )
            time.sleep(POLL_SECONDS)
        return rpc

    def _stop_strays(self, report: Callable[[str], None]) -> None:
        """Stop what this stack started that no supervisord looks after any more."""
        strays = marked_processes(self.home)
        if not strays:
            return
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STRAY_STOP_SECONDS
        while time.monotonic() < deadline and any(_alive(p) for p in strays):
            time.sleep(POLL_SECONDS)
        for pid in strays:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        report(f"stopped {len(strays)} process(es) left by an earlier supervisor")

    # up / status / down -------------------------------------------------------------------

    @_closing_rpc
    def up(self, report: Callable[[str], None] = print) -> State:
        """Start supervisord and every program that is not running; safe to call twice.
        Returns once the API is ready (``/readyz``), or raises saying what is not."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        state = State.load(self.state_path)
        rpc = self._rpc()
        if rpc is None:
            self._stop_strays(report)
            state.system = [
                name
                for name, ok in (("redis", self._redis_ok), ("rabbitmq", self._rabbit_ok))
                if not ok()
            ]
            (self.home / "redis").mkdir(exist_ok=True)
        elif state.ports and state.ports != asdict(self.ports):
            raise StandaloneError(
                f"The stack already runs here on other ports ({state.ports}): "
                "`subtone standalone down` first.",
                code="standalone_running",
            )
        programs = self.programs(state.system)
        config = self.config_text(programs)
        if rpc is None:
            self.config_path.write_text(config)
            self.config_path.chmod(0o600)
            env = self.child_env()
            state.ports = asdict(self.ports)
            state.save(self.state_path)
            rpc = self._start_supervisord(env)
            report(f"supervisord: started (pid {self._supervisord_pid()})")
        for program in programs:
            self._start(rpc, program, report)
            if program.name in SYSTEM_SERVICES:
                self._wait_ready(rpc, program)
        self._check_consumer_timeout(report, owned="rabbitmq" in state.system)
        for program in programs:
            self._wait_ready(rpc, program)
        api = next(p for p in programs if p.name == "api")
        self._wait_ready(rpc, replace(api, health=self.ready), what="the API's /readyz")
        return state

    def _start(self, rpc: Any, program: Program, report: Callable[[str], None]) -> None:
        info = rpc.getProcessInfo(program.name)
        state, pid = info["statename"], info["pid"] or None
        if state == RUNNING and (program.health is None or program.health()):
            report(f"{program.name}: already running (pid {pid})")
            return
        if state == RUNNING:
            report(f"{program.name}: running (pid {pid}) but not answering yet; waiting")
            return
        if state == STARTING:
            report(f"{program.name}: starting (pid {pid})")
            return
        if state == BACKOFF:
            report(f"{program.name}: exited, supervisord restarts it (back-off); waiting")
            return
        if state == STOPPING:
            self._wait_state(rpc, program.name, lambda s: s != STOPPING, program.stop_seconds)
        try:
            rpc.startProcess(program.name, False)
        except xmlrpc.client.Fault as e:
            if "ALREADY_STARTED" not in e.faultString:
                raise StandaloneError(
                    f"supervisord could not start {program.name}: {e.faultString}",
                    code="service_start_failed",
                ) from e
        pid = rpc.getProcessInfo(program.name)["pid"] or None
        report(f"{program.name}: started (pid {pid})")

    def _wait_state(self, rpc: Any, name: str, done: Callable[[str], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(rpc.getProcessInfo(name)["statename"]):
            if time.monotonic() > deadline:
                return
            time.sleep(POLL_SECONDS)

    def _wait_ready(self, rpc: Any, program: Program, what: str | None = None) -> None:
        """Wait until ``program`` answers; raise when supervisord gives it up (``FATAL``) or
        it does not answer within :data:`READY_TIMEOUT_SECONDS`."""
        if program.health is None:
            return
        log = self.logs / f"{program.name}.log"
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not program.health():
            state = rpc.getProcessInfo(program.name)["statename"]
            if state == FATAL or time.monotonic() > deadline:
                said = "gave up restarting it" if state == FATAL else "it is not ready"
                raise StandaloneError(
                    f"{what or program.name} did not become ready within "
                    f"{READY_TIMEOUT_SECONDS:.0f} s ({said}; supervisord says {state}); "
                    f"see {log}:\n{_tail(log)}",
                    code="service_start_failed",
                )
            time.sleep(POLL_SECONDS)

    def _check_consumer_timeout(self, report: Callable[[str], None], *, owned: bool) -> None:
        """RabbitMQ before 3.12 ignores our queue's ``x-consumer-timeout`` and applies its
        global ``consumer_timeout`` (30 min by default): a longer job would be redelivered
        mid-run. On a RabbitMQ the stack runs, raise it; on the machine's own, say so."""
        wanted = self.settings.CONSUMER_TIMEOUT_SECONDS * 1000
        if owned:
            ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
            _run_or_explain(
                [ctl, "-q", "await_startup", "--timeout", str(RABBITMQ_START_TIMEOUT_SECONDS)],
                "wait for RabbitMQ to start",
                timeout=RABBITMQ_START_TIMEOUT_SECONDS + 30,
            )
        current = rabbitmq_consumer_timeout_ms()
        if owned and current is not None and current < wanted:
            _run_or_explain(
                ["rabbitmqctl", "-q", "eval",
                 f"application:set_env(rabbit, consumer_timeout, {wanted})."],
                "set RabbitMQ's consumer_timeout",
            )  # fmt: skip
            return
        verdict = check_consumer_timeout(
            self.settings.BROKER_URL,
            job_limit_seconds=self.settings.JOB_TIME_LIMIT_SECONDS,
            queue_timeout_seconds=self.settings.CONSUMER_TIMEOUT_SECONDS,
        )
        if verdict.level is VerdictLevel.TOO_SHORT:
            report(f"warning: {verdict.message}")
        elif verdict.level is VerdictLevel.UNKNOWN:
            report(f"note: {verdict.message}")

    def pids(self) -> dict[str, int]:
        """The pid of each running program, as supervisord knows it."""
        return {s.name: s.pid for s in self.status() if s.pid and s.name in self._names()}

    def _names(self) -> tuple[str, ...]:
        return (*SYSTEM_SERVICES, *OUR_SERVICES)

    @_closing_rpc
    def status(self) -> list[ServiceStatus]:
        """Each program as supervisord sees it (``supervisord`` first), then the Redis and
        RabbitMQ the stack uses when it does not run them itself."""
        rpc = self._rpc()
        state = State.load(self.state_path)
        rows: list[ServiceStatus] = []
        if rpc is None:
            rows.append(ServiceStatus("supervisord", None, False, "not running"))
            rows += [ServiceStatus(n, None, False, "not running") for n in OUR_SERVICES]
        else:
            rows.append(ServiceStatus("supervisord", self._supervisord_pid(), True, RUNNING))
            for info in rpc.getAllProcessInfo():
                alive = info["statename"] == RUNNING
                rows.append(
                    ServiceStatus(info["name"], info["pid"] or None, alive, info["statename"])
                )
        if "redis" not in state.system:
            rows.append(ServiceStatus("redis", None, self._redis_ok(), "the machine's"))
        if "rabbitmq" not in state.system:
            rows.append(ServiceStatus("rabbitmq", None, self._rabbit_ok(), "the machine's"))
        return rows

    def ready(self) -> bool:
        return _http_ok(f"{self.api_url}/readyz")

    @_closing_rpc
    def down(self, report: Callable[[str], None] = print) -> None:
        """Stop every program, then supervisord, then any process of this stack still left;
        leave everything else alone."""
        rpc = self._rpc()
        if rpc is not None:
            order = self._names()
            running = sorted(
                (i["name"] for i in rpc.getAllProcessInfo() if i["pid"]),
                key=lambda n: order.index(n) if n in order else len(order),
            )
            with contextlib.suppress(OSError, HTTPException, xmlrpc.client.Error):
                rpc.stopAllProcesses(True)  # newest first (reverse priority), then returns
            for name in reversed(running):
                report(f"{name}: stopped")
            pid = self._supervisord_pid()
            with contextlib.suppress(OSError, HTTPException, xmlrpc.client.Error):
                rpc.shutdown()
            deadline = time.monotonic() + SUPERVISORD_STOP_SECONDS
            while pid is not None and _alive(pid) and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
            report("supervisord: stopped")
        self._stop_strays(report)
        state = State.load(self.state_path)
        state.system = []
        if self.home.exists():
            state.save(self.state_path)

    @_closing_rpc
    def stop_service(self, name: str, report: Callable[[str], None] = print) -> None:
        """Stop one program (``api``, ``worker``, ``triton``, ``localstore``), leaving the
        others running; supervisord does not restart it, ``up`` starts it again."""
        rpc = self._rpc()
        if rpc is None:
            raise StandaloneError("The stack is not running.", code="not_running")
        try:
            rpc.stopProcess(name, True)
        except xmlrpc.client.Fault as e:
            if BAD_NAME in e.faultString:
                raise StandaloneError(
                    f"{name} is not a process this stack started.", code="unknown_service"
                ) from e
            if NOT_RUNNING in e.faultString:
                raise StandaloneError(f"{name} is not running.", code="not_running") from e
            raise
        report(f"{name}: stopped")
