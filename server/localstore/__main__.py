"""``python -m server.localstore --root DIR --port P --secret-env NAME``.

Binds the socket itself (``--port 0`` picks a free port), logs the address it listens on (a
JSON line, as every line it logs) and, with ``--port-file``, writes the port there so a
supervisor or a test can find it.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

import uvicorn

from server.integrations.localstore import LocalStore
from server.integrations.storage import MAX_PART_SIZE
from server.kit.logs import configure_logging
from server.localstore.app import create_app

log = logging.getLogger("server.localstore")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9100
DEFAULT_SECRET_ENV = "SUBTONE_LOCALSTORE_SECRET"  # noqa: S105 (a variable name, not a secret)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m server.localstore", description="Serve a local store's signed URLs."
    )
    parser.add_argument("--root", type=Path, required=True, help="the store's folder")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    parser.add_argument(
        "--secret-env",
        default=DEFAULT_SECRET_ENV,
        help="name of the environment variable holding the URL-signing secret",
    )
    parser.add_argument("--max-part-bytes", type=int, default=MAX_PART_SIZE)
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"localstore: set the signing secret in ${args.secret_env}", file=sys.stderr)
        return 2
    store = LocalStore(args.root, secret, max_part_size=args.max_part_bytes)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    if args.port_file:
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(str(port), encoding="utf-8")
        tmp.replace(args.port_file)
    configure_logging("localstore", args.log_level)
    log.info("serving %s on http://%s:%d", store.root, args.host, port)
    config = uvicorn.Config(
        create_app(store), log_level=args.log_level, access_log=False, log_config=None
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
