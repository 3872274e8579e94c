"""Standalone mode: the whole stack as processes on one machine, no containers, kept up by
supervisord.

``up`` writes a supervisord configuration under ``<data>/standalone``
(:mod:`server.standalone.supervisord`), starts supervisord (unless it already runs) and asks
it, over its XML-RPC unix socket, to start every program (:mod:`server.standalone.programs`)
that is not running. ``status`` reads supervisord's view; ``down`` stops every program, then
supervisord, then anything still marked as started by this stack (a child of a supervisord
killed outright, :func:`server.standalone.processes.stop_marked`), and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Final, TypeVar, cast

from server.settings import Settings
from server.standalone import programs, tritonserver
from server.standalone.broker import ensure_consumer_timeout
from server.standalone.processes import stop_marked, tail
from server.standalone.stack import (
    OUR_SERVICES,
    POLL_SECONDS,
    SYSTEM_SERVICES,
    Layout,
    Ports,
    Program,
    ServiceStatus,
    StandaloneError,
    State,
)
from server.standalone.supervisord import (
    BACKOFF,
    BAD_NAME,
    FATAL,
    NOT_RUNNING,
    RPC_ERRORS,
    RUNNING,
    STARTING,
    STOPPING,
    Supervisord,
)

__all__ = ["Supervisor"]

READY_TIMEOUT_SECONDS: Final = 120.0

_F = TypeVar("_F", bound=Callable[..., Any])


def _closing_rpc(method: _F) -> _F:
    """Close the connection to supervisord when ``method`` returns (it opens its own)."""

    @functools.wraps(method)
    def wrapper(self: Supervisor, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self.supervisord.close()

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
        self.layout = Layout(settings.DATA_DIR.resolve() / "standalone")
        self.home = self.layout.home
        self.logs = self.layout.logs
        self.supervisord = Supervisord(self.layout)
        if ports is None:
            recorded = State.load(self.layout.state).ports
            ports = Ports(**recorded) if recorded else Ports.from_settings(settings)
        self.ports = ports

    def signing_secret(self) -> str:
        return programs.signing_secret(self.layout)

    def child_env(self) -> dict[str, str]:
        """The environment of every process: these settings, with the ports of this stack."""
        return programs.child_env(self.settings, self.ports, self.layout)

    @property
    def api_url(self) -> str:
        return programs.api_url(self.settings, self.ports)

    # up / status / down -------------------------------------------------------------------

    @_closing_rpc
    def up(self, report: Callable[[str], None] = print) -> State:
        """Start supervisord and every program that is not running; safe to call twice.
        Returns once the API is ready (``/readyz``), or raises saying what is not."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        state = State.load(self.layout.state)
        rpc = self.supervisord.rpc()
        if rpc is None:
            stop_marked(self.home, report)
            state.system = [
                name
                for name, ok in (("redis", programs.redis_ok), ("rabbitmq", programs.rabbit_ok))
                if not ok(self.settings)
            ]
            (self.home / "redis").mkdir(exist_ok=True)
        elif state.ports and state.ports != asdict(self.ports):
            raise StandaloneError(
                f"The stack already runs here on other ports ({state.ports}): "
                "`subtone standalone down` first.",
                code="standalone_running",
            )
        stack = programs.stack_programs(
            self.settings,
            self.ports,
            self.layout,
            model_repository=self.model_repository,
            system=state.system,
        )
        if rpc is None:
            self.supervisord.write_config(stack)
            env = self.child_env()
            state.ports = asdict(self.ports)
            state.save(self.layout.state)
            rpc = self.supervisord.start(env)
            report(f"supervisord: started (pid {self.supervisord.pid()})")
        for program in stack:
            self._start(rpc, program, report)
            if program.name in SYSTEM_SERVICES:
                self._wait_ready(rpc, program)
        ensure_consumer_timeout(self.settings, report, owned="rabbitmq" in state.system)
        for program in stack:
            self._wait_ready(rpc, program)
        api = next(p for p in stack if p.name == "api")
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
                    f"see {log}:\n{tail(log)}",
                    code="service_start_failed",
                )
            time.sleep(POLL_SECONDS)

    def pids(self) -> dict[str, int]:
        """The pid of each running program, as supervisord knows it."""
        return {s.name: s.pid for s in self.status() if s.pid and s.name in self._names()}

    def _names(self) -> tuple[str, ...]:
        return (*SYSTEM_SERVICES, *OUR_SERVICES)

    @_closing_rpc
    def status(self) -> list[ServiceStatus]:
        """Each program as supervisord sees it (``supervisord`` first), then the Redis and
        RabbitMQ the stack uses when it does not run them itself."""
        rpc = self.supervisord.rpc()
        state = State.load(self.layout.state)
        rows: list[ServiceStatus] = []
        if rpc is None:
            rows.append(ServiceStatus("supervisord", None, False, "not running"))
            rows += [ServiceStatus(n, None, False, "not running") for n in OUR_SERVICES]
        else:
            rows.append(ServiceStatus("supervisord", self.supervisord.pid(), True, RUNNING))
            for info in rpc.getAllProcessInfo():
                alive = info["statename"] == RUNNING
                rows.append(
                    ServiceStatus(info["name"], info["pid"] or None, alive, info["statename"])
                )
        for name, ok in (("redis", programs.redis_ok), ("rabbitmq", programs.rabbit_ok)):
            if name not in state.system:
                rows.append(ServiceStatus(name, None, ok(self.settings), "the machine's"))
        return rows

    def ready(self) -> bool:
        return programs.http_ok(f"{self.api_url}/readyz")

    @_closing_rpc
    def down(self, report: Callable[[str], None] = print) -> None:
        """Stop every program, then supervisord, then any process of this stack still left;
        leave everything else alone."""
        rpc = self.supervisord.rpc()
        if rpc is not None:
            order = self._names()
            running = sorted(
                (i["name"] for i in rpc.getAllProcessInfo() if i["pid"]),
                key=lambda n: order.index(n) if n in order else len(order),
            )
            with contextlib.suppress(*RPC_ERRORS):
                rpc.stopAllProcesses(True)  # newest first (reverse priority), then returns
            for name in reversed(running):
                report(f"{name}: stopped")
            self.supervisord.shutdown(rpc)
            report("supervisord: stopped")
        stop_marked(self.home, report)
        state = State.load(self.layout.state)
        state.system = []
        if self.home.exists():
            state.save(self.layout.state)

    @_closing_rpc
    def stop_service(self, name: str, report: Callable[[str], None] = print) -> None:
        """Stop one program (``api``, ``worker``, ``triton``, ``localstore``), leaving the
        others running; supervisord does not restart it, ``up`` starts it again."""
        rpc = self.supervisord.rpc()
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
