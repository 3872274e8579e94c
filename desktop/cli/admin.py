"""``subtone token …`` and ``subtone standalone …``: commands for whoever runs the stack.

They talk to Redis and start processes, so they import the server's modules (lazily: the
client commands work without the server extras).
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from desktop.cli import _env, _reporting, standalone_app, token_app
from desktop.core.config import ClientSettings, load_settings, save_settings
from subtone.errors import SubtoneError

if TYPE_CHECKING:
    from server.auth.service import TokenService
    from server.standalone.supervisor import Supervisor

__all__: list[str] = []

_out = Console()


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    """Redis unreachable (or refusing) as a message, not a traceback."""
    import redis

    from server.settings import Settings

    try:
        yield
    except redis.RedisError as e:
        url = Settings().REDIS_URL
        raise SubtoneError(
            f"Cannot reach Redis at {url} ({e}). Start it (`subtone standalone up` starts the "
            "machine's Redis if installed), or set SUBTONE_REDIS_URL.",
            code="redis_unavailable",
        ) from e


def _tokens() -> TokenService:
    import redis

    from server.auth.service import TokenService
    from server.settings import Settings

    settings = Settings()
    client = redis.Redis.from_url(settings.REDIS_URL)
    return TokenService(client, prefix=settings.REDIS_PREFIX)


@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="Who the token is for.")]) -> None:
    """Create a token for NAME (a person: their own uploads and jobs). Shown once."""
    with _reporting(), _redis_errors():
        token, _ = _tokens().create(name)
    _out.print(f"Token for [bold]{name}[/] (shown once, store it now):")
    print(token)


@token_app.command("list")
def token_list() -> None:
    """List tokens (names and dates; the tokens themselves are not stored)."""
    with _reporting(), _redis_errors():
        infos = _tokens().list()
    table = Table("name", "created")
    for info in infos:
        table.add_row(info.name, f"{info.created_at:%Y-%m-%d %H:%M}")
    _out.print(table)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="Whose token to revoke.")]) -> None:
    """Revoke NAME's token: it stops working at once."""
    with _reporting(), _redis_errors():
        _tokens().revoke(name)
    _out.print(f"Revoked the token of {name}.")


def _supervisor(ports: dict[str, int | None] | None = None) -> Supervisor:
    """The stack's supervisor: on the ports given (and the settings' for the rest), or on
    those of the stack ``up`` started last."""
    from server.settings import Settings
    from server.standalone.supervisor import Ports, Supervisor

    settings = Settings()
    if ports is None:
        return Supervisor(settings)
    chosen = {name: port for name, port in ports.items() if port is not None}
    return Supervisor(settings, Ports.from_settings(settings, **chosen))


def _port(help_text: str) -> typer.models.OptionInfo:
    option: typer.models.OptionInfo = typer.Option(min=1, max=65535, help=help_text)
    return option


@standalone_app.command("up")
def standalone_up(
    ctx: typer.Context,
    api_port: Annotated[
        int | None, _port("The API's port (default: SUBTONE_API_PORT, else 8600).")
    ] = None,
    store_port: Annotated[
        int | None, _port("The local store's port (default: SUBTONE_LOCALSTORE_PORT, 8602).")
    ] = None,
    triton_port: Annotated[
        int | None, _port("Triton's gRPC port (default: that of SUBTONE_TRITON_URL, 8601).")
    ] = None,
    triton_http_port: Annotated[int | None, _port("Triton's HTTP port (default 8603).")] = None,
    triton_metrics_port: Annotated[
        int | None, _port("Triton's metrics port (default 8604).")
    ] = None,
) -> None:
    """Start the whole stack on this machine (no containers) and point this client at it."""
    env = _env(ctx)
    with _reporting(), _redis_errors():
        supervisor = _supervisor(
            {
                "api": api_port,
                "localstore": store_port,
                "triton_grpc": triton_port,
                "triton_http": triton_http_port,
                "triton_metrics": triton_metrics_port,
            }
        )
        supervisor.up(report=_out.print)
        current = load_settings(env.config_path, environ={})
        token = current.token
        if current.server_url != supervisor.api_url or not _token_works(supervisor, token):
            token, _ = _tokens().create(f"local-{getpass.getuser()}")
            save_settings(
                ClientSettings.model_validate(
                    current.model_dump() | {"server_url": supervisor.api_url, "token": token}
                ),
                env.config_path,
            )
            _out.print("Created a token for this user and saved it in the client settings.")
    _out.print(f"[green]Subtone is up[/] at {supervisor.api_url} (logs: {supervisor.logs})")


def _token_works(supervisor: Supervisor, token: str | None) -> bool:
    if not token:
        return False
    from desktop.core.api import ApiClient

    with ApiClient(supervisor.api_url, token) as client:
        try:
            client.list_jobs()
        except Exception:
            return False
    return True


@standalone_app.command("down")
def standalone_down() -> None:
    """Stop what `standalone up` started, and nothing else."""
    with _reporting():
        _supervisor().down(report=_out.print)


@standalone_app.command("status")
def standalone_status() -> None:
    """Show each process of the standalone stack, and whether the API is ready."""
    with _reporting():
        supervisor = _supervisor()
        rows = supervisor.status()
        ready = supervisor.ready()
    table = Table("service", "pid", "state")
    for row in rows:
        table.add_row(row.name, str(row.pid or "—"), "[green]up" if row.alive else "[red]down")
    _out.print(table)
    _out.print(f"API {supervisor.api_url}: " + ("[green]ready" if ready else "[red]not ready"))
    if not ready:
        raise typer.Exit(1)
