"""A RabbitMQ node of a stack's own under supervisord: its own node name, AMQP and distribution
ports, epmd (a program beside it, on a port of its own), data folder, Erlang cookie and
configuration, and no plugins; so a test or a bench can SIGKILL it, and supervisord restart it,
while the machine's RabbitMQ is left alone.

It runs the scripts behind Debian's ``/usr/sbin/rabbitmq-server`` and ``rabbitmqctl``: run as
root, those wrappers switch to the ``rabbitmq`` user (``su``), who cannot write a folder of
ours (the node does not boot: ``failed_to_create_feature_flags_file_directory``) and whose
home, cookie and working folder are the machine node's. Here the node runs as the user who
started the stack, with ``HOME`` at its own folder (the cookie), and reads no file of
``/etc/rabbitmq`` (that ``rabbitmq-env.conf`` names the machine's node).

Its queues and persistent messages are on disk under its folder: a node killed outright comes
back with them (a publisher that had its message confirmed, as Dramatiq's is, loses nothing).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from server.settings import Settings
from server.standalone.programs import port_open
from server.standalone.stack import Program, StandaloneError

__all__ = ["DEBIAN_SCRIPTS", "RabbitNode", "rabbitmq_scripts"]

DEBIAN_SCRIPTS: Final = Path("/usr/lib/rabbitmq/bin")
"""Where Debian keeps RabbitMQ's own scripts (``/usr/sbin`` has the wrappers)."""
HOST: Final = "127.0.0.1"
STOP_SECONDS: Final = 60
CTL_TIMEOUT_SECONDS: Final = 120.0
NOT_REGISTERED: Final = "not running at all"
"""What ``rabbitmqctl`` says (from epmd) of a node that has not registered yet."""
REGISTER_POLL_SECONDS: Final = 0.5


def rabbitmq_scripts() -> Path | None:
    """The folder of RabbitMQ's ``rabbitmq-server`` and ``rabbitmqctl`` scripts (not Debian's
    wrappers), or None when RabbitMQ is not installed."""
    found = shutil.which("rabbitmq-server")
    candidates = [DEBIAN_SCRIPTS] + ([Path(found).resolve().parent] if found else [])
    for folder in candidates:
        if (folder / "rabbitmq-server").is_file() and (folder / "rabbitmqctl").is_file():
            return folder
    return None


@dataclass(frozen=True)
class RabbitNode:
    """A node under ``home`` that listens for AMQP on ``amqp_port``, for its peers (the CLI) on
    ``dist_port``, and registers with an epmd of its own on ``epmd_port``; all on 127.0.0.1."""

    home: Path
    amqp_port: int
    dist_port: int
    epmd_port: int

    @property
    def name(self) -> str:
        return f"subtone-{self.amqp_port}@localhost"

    @property
    def url(self) -> str:
        """Its AMQP URL (the default vhost, the ``guest`` user, allowed from 127.0.0.1)."""
        return f"amqp://guest:guest@{HOST}:{self.amqp_port}/%2F"

    @property
    def cookie(self) -> Path:
        return self.home / ".erlang.cookie"

    def prepare(self, settings: Settings) -> None:
        """Write its files: the configuration (its listener, and the settings'
        ``consumer_timeout``), no plugins, an empty ``rabbitmq-env.conf``, and a cookie
        (kept when there is one: its data was made with it)."""
        self.home.mkdir(parents=True, exist_ok=True)
        timeout_ms = settings.CONSUMER_TIMEOUT_SECONDS * 1000
        (self.home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {HOST}:{self.amqp_port}\nconsumer_timeout = {timeout_ms}\n"
        )
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq-env.conf").write_text("")
        if not self.cookie.exists():
            fd = os.open(self.cookie, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(20).upper())

    def env(self) -> dict[str, str]:
        """What the server and ``rabbitmqctl`` need on top of the stack's environment to be
        this node, or to reach it."""
        return {
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.home / "log"),
            "RABBITMQ_LOGS": "-",  # to standard output: supervisord's log of the program
            "RABBITMQ_CONFIG_FILE": str(self.home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.home / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.home / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.home / "rabbitmq.pid"),
            "ERL_CRASH_DUMP": str(self.home / "erl_crash.dump"),
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_EPMD_PORT": str(self.epmd_port),
            # The epmd program runs it: the node must not start a daemon of its own.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"
            ),
            "RABBITMQ_CTL_ERL_ARGS": "-start_epmd false",
        }

    def programs(self) -> list[Program]:
        """``epmd`` then ``rabbitmq``, for the stack's supervisord."""
        scripts = rabbitmq_scripts()
        epmd = shutil.which("epmd")
        if scripts is None or epmd is None:
            raise StandaloneError(
                "RabbitMQ is not installed (no rabbitmq-server, rabbitmqctl or epmd). Install "
                "it with `apt-get install rabbitmq-server`.",
                code="rabbitmq_missing",
            )
        return [
            Program(
                "epmd",
                [epmd, "-port", str(self.epmd_port), "-address", HOST],
                env={"ERL_EPMD_ADDRESS": HOST},
                health=lambda: port_open(HOST, self.epmd_port),
            ),
            Program(
                "rabbitmq",
                [str(scripts / "rabbitmq-server")],
                stop_seconds=STOP_SECONDS,
                env=self.env(),
                health=lambda: port_open(HOST, self.amqp_port),
            ),
        ]

    def ctl(
        self, *args: str, timeout: float = CTL_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <this node> -q ARGS`` (its output, whatever it exits with)."""
        scripts = rabbitmq_scripts()
        if scripts is None:
            raise StandaloneError("RabbitMQ is not installed.", code="rabbitmq_missing")
        return subprocess.run(
            [str(scripts / "rabbitmqctl"), "-n", self.name, "-q", *args],
            env={**os.environ, **self.env()}, cwd=self.home, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def await_startup(self, timeout: float = CTL_TIMEOUT_SECONDS) -> None:
        """Return once the node has booted (its AMQP port answering is not enough: the
        application starts after); raise when it has not within ``timeout`` seconds.

        ``rabbitmqctl await_startup`` waits for a node that epmd knows; a node spawned a moment
        ago (supervisord restarting it) has not registered yet, and is asked again until it
        has or ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(1, int(deadline - time.monotonic()))
            done = self.ctl("await_startup", "--timeout", str(left), timeout=left + 30)
            if done.returncode == 0:
                return
            said = (done.stderr or done.stdout).strip()
            if NOT_REGISTERED not in said or time.monotonic() >= deadline:
                raise StandaloneError(
                    f"RabbitMQ node {self.name} did not start within {timeout:.0f} s:\n"
                    f"{said[-1500:]}",
                    code="service_start_failed",
                )
            time.sleep(REGISTER_POLL_SECONDS)
