#!/usr/bin/env python3
"""Container health check: exit 0 when healthy, 1 with a one-line reason otherwise.

    subtone-healthcheck api        # GET http://127.0.0.1:$SUBTONE_API_PORT/healthz answers 2xx
    subtone-healthcheck worker     # this container's worker is alive: its heartbeat thread keeps
                                   # its liveness file fresh (in TMPDIR: a liveness probe) while
                                   # no job's thread is stuck past the job time limit
    subtone-healthcheck worker --stop-if-dead PID
                                   # the same; when dead, also SIGTERM to PID (compose: Docker
                                   # never restarts an unhealthy container, so the worker, PID 1,
                                   # is told to stop and its restart policy starts a new one)
    subtone-healthcheck broker     # the broker in SUBTONE_BROKER_URL accepts a connection
    subtone-healthcheck url URL    # GET URL answers 2xx (Triton: /v2/health/ready)

``api`` and ``broker`` read the port and the broker from the server's own settings, and
``worker`` finds the worker's liveness file as the worker does, so the check follows whatever
the environment sets. ``worker`` asks
nothing over the network: a broker or Redis outage restarts no worker, a stuck one is.
``url`` needs nothing but the standard library (the Triton image installs the project without
its dependencies).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 3.0
AMQP_PORT = 5672
URL_SEPARATOR = ";"


def check_url(url: str) -> None:
    # No proxy: a health check asks this container, whatever HTTP_PROXY says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=TIMEOUT_SECONDS) as response:
        if not 200 <= response.status < 300:
            raise RuntimeError(f"{url} answered {response.status}")


def check_api() -> None:
    from server.settings import Settings

    check_url(f"http://127.0.0.1:{Settings().API_PORT}/healthz")


def check_worker() -> None:
    """Healthy while the worker's liveness file says so (server.jobs.heartbeat.AliveFile)."""
    from server.jobs.heartbeat import AliveFile, default_alive_file

    AliveFile.check(default_alive_file())


def check_broker() -> None:
    """Healthy when one of the broker URLs (Dramatiq takes several, ``;``-separated) connects."""
    from server.settings import Settings

    errors = []
    for url in Settings().BROKER_URL.split(URL_SEPARATOR):
        parts = urlsplit(url)
        address = (parts.hostname or "127.0.0.1", parts.port or AMQP_PORT)
        try:
            socket.create_connection(address, timeout=TIMEOUT_SECONDS).close()
        except OSError as e:
            errors.append(f"{address[0]}:{address[1]}: {e}")
        else:
            return
    raise RuntimeError("broker unreachable: " + "; ".join(errors))


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["api"]:
                check_api()
            case ["worker"]:
                check_worker()
            case ["worker", "--stop-if-dead", pid]:
                try:
                    check_worker()
                except RuntimeError:
                    os.kill(int(pid), signal.SIGTERM)
                    raise
            case ["broker"]:
                check_broker()
            case ["url", url]:
                check_url(url)
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except (OSError, RuntimeError, urllib.error.URLError, ValueError) as e:
        print(f"unhealthy: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
