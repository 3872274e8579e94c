"""supervisord, which keeps the standalone stack's programs up: its configuration, and a
client that starts it and talks to it over its XML-RPC unix socket.

supervisord restarts a program whenever it exits (``autorestart``); one that dies again while
starting is retried with a growing back-off (1 s, 2 s, 3 s, …).
"""

from __future__ import annotations

import contextlib
import shlex
import sys
import time
import xmlrpc.client
from http.client import HTTPException
from typing import Any, Final

from supervisor.xmlrpc import SupervisorTransport

from server.standalone.processes import alive, run_or_explain, tail
from server.standalone.stack import POLL_SECONDS, Layout, Program, StandaloneError

__all__ = [
    "BACKOFF",
    "BAD_NAME",
    "FATAL",
    "NOT_RUNNING",
    "RPC_ERRORS",
    "RUNNING",
    "STARTING",
    "STOPPING",
    "Supervisord",
    "config_text",
]

SUPERVISORD_START_SECONDS: Final = 30.0
SUPERVISORD_STOP_SECONDS: Final = 150.0
START_SECONDS: Final = 1
"""A program that exits sooner than this after starting is retried with back-off."""
START_RETRIES: Final = 1000
"""Back-off retries before supervisord gives up on a program (``FATAL``): the delay grows by
a second each time, so that is days; ``up`` starts a given-up program again."""
LOG_BYTES: Final = "10MB"
LOG_BACKUPS: Final = 3

# supervisord's process states (supervisor.states.ProcessStates)
RUNNING: Final = "RUNNING"
STARTING: Final = "STARTING"
BACKOFF: Final = "BACKOFF"
STOPPING: Final = "STOPPING"
FATAL: Final = "FATAL"
NOT_RUNNING: Final = "NOT_RUNNING"  # supervisord's fault name
BAD_NAME: Final = "BAD_NAME"

RPC_ERRORS: Final = (OSError, HTTPException, xmlrpc.client.Error)
"""What a call to a supervisord that stops answering raises."""


def _conf_value(text: str) -> str:
    """``text`` in a supervisord configuration value (``%`` starts an expansion there)."""
    return text.replace("%", "%%")


def config_text(layout: Layout, programs: list[Program]) -> str:
    """The supervisord configuration running ``programs`` for the stack at ``layout``."""
    lines = [
        "[unix_http_server]",
        f"file={_conf_value(str(layout.socket))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_conf_value(str(layout.logs / 'supervisord.log'))}",
        f"logfile_maxbytes={LOG_BYTES}",
        f"logfile_backups={LOG_BACKUPS}",
        f"pidfile={_conf_value(str(layout.pid))}",
        f"childlogdir={_conf_value(str(layout.logs))}",
        f"directory={_conf_value(str(layout.home))}",
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
            f"directory={_conf_value(str(layout.home))}",
            "autostart=false",  # `up` starts them, in order, and says what it did
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={program.stop_seconds}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_conf_value(str(layout.logs / (program.name + '.log')))}",
            f"stdout_logfile_maxbytes={LOG_BYTES}",
            f"stdout_logfile_backups={LOG_BACKUPS}",
            "",
        ]
    return "\n".join(lines)


class Supervisord:
    """The supervisord of the stack at ``layout``. Each :meth:`rpc` opens a connection to
    its socket; :meth:`close` closes the last one."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self._transport: SupervisorTransport | None = None

    def rpc(self) -> Any | None:
        """supervisord's XML-RPC ``supervisor`` namespace, or None when it does not answer."""
        if not self.layout.socket.exists():
            return None
        self.close()
        transport = SupervisorTransport(None, None, f"unix://{self.layout.socket}")
        self._transport = transport
        proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
        rpc: Any = proxy.supervisor
        try:
            if rpc.getState()["statename"] != RUNNING:
                return None
        except RPC_ERRORS:
            return None
        return rpc

    def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def pid(self) -> int | None:
        try:
            return int(self.layout.pid.read_text().strip())
        except (OSError, ValueError):
            return None

    def write_config(self, programs: list[Program]) -> None:
        """Write the configuration running ``programs``, readable by this user only."""
        self.layout.config.write_text(config_text(self.layout, programs))
        self.layout.config.chmod(0o600)

    def start(self, env: dict[str, str]) -> Any:
        """Start supervisord with ``env`` (which every program inherits); its RPC."""
        argv = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.layout.config)]
        run_or_explain(argv, "start supervisord", env=env)  # it daemonizes and returns
        deadline = time.monotonic() + SUPERVISORD_START_SECONDS
        while (rpc := self.rpc()) is None:
            if time.monotonic() > deadline:
                raise StandaloneError(
                    "supervisord did not answer on its socket within "
                    f"{SUPERVISORD_START_SECONDS:.0f} s:\n"
                    + tail(self.layout.logs / "supervisord.log"),
                    code="service_start_failed",
                )
            time.sleep(POLL_SECONDS)
        return rpc

    def shutdown(self, rpc: Any) -> None:
        """Ask supervisord (``rpc``) to exit, and wait a while for it to be gone."""
        pid = self.pid()
        with contextlib.suppress(*RPC_ERRORS):
            rpc.shutdown()
        deadline = time.monotonic() + SUPERVISORD_STOP_SECONDS
        while pid is not None and alive(pid) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
