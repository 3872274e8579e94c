"""Services the fault tests own, so that they can stop, kill and restart them without
touching the machine's: a RabbitMQ node, a Redis server with AOF, and a TCP proxy that cuts
or stalls the connections through it. Each is stopped by the context that started it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from tests.stack import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
"""Debian's RabbitMQ scripts, run directly (the /usr/sbin wrappers switch to the rabbitmq
user, whose files and cookie these nodes do not use)."""
START_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 0.2
RESET_ON_CLOSE = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero timeout: close() sends a TCP reset, as a dropped network does."""


def rabbitmq_missing() -> str | None:
    """Why a RabbitMQ node of our own cannot run here, or None."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        return f"no {RABBITMQ_BIN}/rabbitmq-server (Debian's rabbitmq-server package)"
    return None


class PrivateRabbitMQ:
    """A RabbitMQ node of its own (name, ports, data, cookie) under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.name = f"subtone-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        dist = free_port()
        (home / "log").mkdir(parents=True, exist_ok=True)
        (home / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nconsumer_timeout = 10800000\n"
        )
        (home / "enabled_plugins").write_text("[].\n")
        (home / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "-q", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.home,
        )  # fmt: skip

    def start(self) -> None:
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"],
            env=self.env, cwd=self.home, check=True, capture_output=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        # `await_startup` fails until the node has registered with epmd: ask again.
        while self.ctl("await_startup", "--timeout", "30").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"RabbitMQ {self.name} did not start: {self.log_tail()}")
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """A clean stop: queues and persistent messages are kept on disk."""
        self.ctl("stop", timeout=120)

    def kill(self) -> None:
        """SIGKILL the node (no clean shutdown): what a crash or a power cut leaves."""
        pid_file = self.home / "rabbitmq.pid"
        if pid_file.exists():
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.ctl("ping", timeout=10).returncode == 0 and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)

    def messages(self, queue: str) -> int:
        """Messages in ``queue``, ready or unacknowledged."""
        out = self.ctl("list_queues", "--no-table-headers", "name", "messages").stdout
        rows = dict(line.split("\t") for line in out.splitlines() if "\t" in line)
        return int(rows.get(queue, "0"))

    def log_tail(self) -> str:
        logs = sorted((self.home / "log").glob("*.log"))
        return logs[0].read_text(errors="replace")[-3000:] if logs else "(no log)"


@contextmanager
def private_rabbitmq(home: Path) -> Iterator[PrivateRabbitMQ]:
    node = PrivateRabbitMQ(home)
    node.start()
    try:
        yield node
    finally:
        node.stop()
        if node.ctl("ping", timeout=10).returncode == 0:
            node.kill()


class PrivateRedis:
    """A Redis server of its own on a free port, with the append-only file on (as compose
    runs it): ``appendfsync always``, so a SIGKILL loses nothing acknowledged."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        home.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is installed by scripts/setup.sh"
        log = (self.home / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.home),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.home / "redis.log").read_text())
            time.sleep(POLL_SECONDS)
        client.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@contextmanager
def private_redis(home: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(home)
    server.start()
    try:
        yield server
    finally:
        server.kill()


class FaultyProxy:
    """A TCP proxy on loopback to ``target``: passes bytes both ways until told to ``cut``
    every connection (and refuse new ones for a while) or to ``stall`` (hold connections
    open and pass nothing)."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing_until = 0.0
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closed = threading.Event()
        self.accepted = 0
        self.bytes_up = 0
        self._thread = threading.Thread(target=self._accept, name="faulty-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self, refuse_seconds: float = 0.0) -> None:
        """Reset every open connection; refuse new ones for ``refuse_seconds``."""
        self._refusing_until = time.monotonic() + refuse_seconds
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
                # close() alone does not wake a thread blocked in recv() on the socket, and
                # the kernel keeps the connection open while it waits: shut it down first.
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self.cut()
        self._flowing.set()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refusing_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self.accepted += 1
            with self._lock:
                self._connections |= {client, upstream}
            for source, sink, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(source, sink, up), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if up:
                    self.bytes_up += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._connections.discard(end)
                with suppress(OSError):
                    end.close()


@contextmanager
def faulty_proxy(target_port: int) -> Iterator[FaultyProxy]:
    proxy = FaultyProxy(target_port)
    try:
        yield proxy
    finally:
        proxy.close()
