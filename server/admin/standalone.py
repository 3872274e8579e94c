"""``subtone standalone up|down|status``: the whole stack as processes on this machine,
kept up by supervisord (:mod:`server.standalone.supervisor`)."""

from __future__ import annotations

import getpass
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from server.admin._reporting import out, redis_errors, reporting
from server.admin.tokens import token_service
from server.auth.service import TokenService
from server.settings import Settings
from server.standalone.supervisor import Supervisor
from subtone.clientconfig import client_config_path, merge_client_config, read_client_config
from subtone.errors import SubtoneError

__all__ = ["app"]

app = typer.Typer(help="Run the whole stack on this machine.", no_args_is_help=True)

ROOT_CONFIG_OPTION = "config"
"""The ``subtone --config FILE`` option of the client CLI: the client settings file."""


def _supervisor(ports: dict[str, int | None] | None = None) -> Supervisor:
    """The stack's supervisor: on the ports given, and for the rest those of the stack
    ``up`` started last (else the settings')."""
    settings = Settings()
    current = Supervisor(settings)
    if ports is None:
        return current
    chosen = {name: port for name, port in ports.items() if port is not None}
    return Supervisor(settings, replace(current.ports, **chosen))


def _port(help_text: str) -> typer.models.OptionInfo:
    option: typer.models.OptionInfo = typer.Option(min=1, max=65535, help=help_text)
    return option


def _client_config(ctx: typer.Context) -> Path:
    """The client settings file: ``subtone --config``, else the client's default."""
    given = ctx.find_root().params.get(ROOT_CONFIG_OPTION)
    return Path(given) if given else client_config_path()


def _token_works(tokens: TokenService, token: object) -> bool:
    if not isinstance(token, str) or not token:
        return False
    try:
        tokens.authenticate(token)
    except SubtoneError:
        return False
    return True


@app.command("up")
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
    """Start the whole stack on this machine (no containers) and point this client at it.
    Every process is restarted by supervisord if it exits; running `up` again starts
    whatever is missing."""
    config = _client_config(ctx)
    with reporting(), redis_errors():
        supervisor = _supervisor(
            {
                "api": api_port,
                "localstore": store_port,
                "triton_grpc": triton_port,
                "triton_http": triton_http_port,
                "triton_metrics": triton_metrics_port,
            }
        )
        supervisor.up(report=out.print)
        current = read_client_config(config)
        tokens = token_service(supervisor.settings)
        if current.get("server_url") != supervisor.api_url or not _token_works(
            tokens, current.get("token")
        ):
            token, _ = tokens.create(f"local-{getpass.getuser()}")
            merge_client_config({"server_url": supervisor.api_url, "token": token}, config)
            out.print("Created a token for this user and saved it in the client settings.")
    out.print(f"[green]Subtone is up[/] at {supervisor.api_url} (logs: {supervisor.logs})")


@app.command("down")
def standalone_down() -> None:
    """Stop what `standalone up` started (supervisord included), and nothing else."""
    with reporting():
        _supervisor().down(report=out.print)


@app.command("status")
def standalone_status() -> None:
    """Show each process of the standalone stack as supervisord sees it, and whether the API
    is ready."""
    with reporting():
        supervisor = _supervisor()
        rows = supervisor.status()
        ready = supervisor.ready()
    table = Table("service", "pid", "state")
    for row in rows:
        colour = "green" if row.alive else "red"
        table.add_row(row.name, str(row.pid or "—"), f"[{colour}]{row.state or 'down'}")
    out.print(table)
    out.print(f"API {supervisor.api_url}: " + ("[green]ready" if ready else "[red]not ready"))
    if not ready:
        raise typer.Exit(1)
