"""``subtone token create|list|revoke``: API tokens, one per person."""

from __future__ import annotations

from typing import Annotated

import redis
import typer
from rich.table import Table

from server.admin._reporting import out, redis_errors, reporting
from server.auth.service import TokenService
from server.settings import Settings

__all__ = ["app", "token_service"]

app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)


def token_service(settings: Settings | None = None) -> TokenService:
    settings = settings or Settings()
    return TokenService(redis.Redis.from_url(settings.REDIS_URL), prefix=settings.REDIS_PREFIX)


@app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="Who the token is for.")]) -> None:
    """Create a token for NAME (a person: their own uploads and jobs). Shown once."""
    with reporting(), redis_errors():
        token, _ = token_service().create(name)
    out.print(f"Token for [bold]{name}[/] (shown once, store it now):")
    print(token)


@app.command("list")
def token_list() -> None:
    """List tokens (names and dates; the tokens themselves are not stored)."""
    with reporting(), redis_errors():
        infos = token_service().list()
    table = Table("name", "created")
    for info in infos:
        table.add_row(info.name, f"{info.created_at:%Y-%m-%d %H:%M}")
    out.print(table)


@app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="Whose token to revoke.")]) -> None:
    """Revoke NAME's token: it stops working at once."""
    with reporting(), redis_errors():
        token_service().revoke(name)
    out.print(f"Revoked the token of {name}.")
