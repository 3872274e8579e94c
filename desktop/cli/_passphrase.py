"""The passphrase of a command: from a file, the environment or a hidden prompt; never from
the command line itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Final

import typer

from desktop.cli._env import CliEnv
from subtone.errors import SubtoneError

__all__ = ["ENV_PASSPHRASE", "PassphraseFile", "read_passphrase"]

ENV_PASSPHRASE: Final = "SUBTONE_PASSPHRASE"  # noqa: S105 - the variable's name
STDIN_PATH: Final = "-"


def read_passphrase(env: CliEnv, passphrase_file: Path | None, *, confirm: bool) -> str:
    """From ``--passphrase-file`` (its first line; ``-`` is stdin), ``SUBTONE_PASSPHRASE``,
    or a hidden prompt; never from the command line itself."""
    if passphrase_file is not None:
        try:
            if str(passphrase_file) == STDIN_PATH:
                text = sys.stdin.readline()
            else:
                text = passphrase_file.read_text(encoding="utf-8")
        except OSError as e:
            raise SubtoneError(
                f"Cannot read the passphrase file: {e.strerror}.", code="unreadable_file"
            ) from e
        lines = text.splitlines()
        passphrase = lines[0] if lines else ""
        if not passphrase:
            raise SubtoneError("The passphrase file is empty.", code="empty_passphrase")
        return passphrase
    from_env = env.environ.get(ENV_PASSPHRASE)
    if from_env:
        return from_env
    if env.interactive():
        answer: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
        return answer
    raise SubtoneError(
        f"No passphrase: use --passphrase-file, set {ENV_PASSPHRASE}, or run in a terminal.",
        code="passphrase_required",
    )


PassphraseFile = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help=f"Read the passphrase from the first line of this file ('-': stdin). "
        f"Else {ENV_PASSPHRASE}, else a prompt.",
        dir_okay=False,
    ),
]
