"""``subtone``: hide a secret in a cover WAV, and get it back, from the command line.

The commands use the same client core as the desktop app (:mod:`desktop.core`). Errors are
printed as ``error [code]: message`` on stderr with a non-zero exit status, never as a
traceback. Everything the commands reach out to (settings, HTTP transports, the session
store) comes from a :class:`CliEnv`, which tests pass as Click's ``obj``.

Other installed packages add command groups through the ``subtone.cli`` entry-point group
(:func:`add_plugin_groups`): the server registers ``subtone token …`` and
``subtone standalone …`` there, so they work wherever the server is installed, while this
package never imports it (a desktop-only install simply has none).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table
from rich.text import Text

from desktop.cli._console import ProgressView, format_duration, format_size, parse_size, print_error
from desktop.cli._env import CliEnv
from desktop.cli._passphrase import ENV_PASSPHRASE, PassphraseFile, read_passphrase
from desktop.cli._plugins import ENTRY_POINT_GROUP, add_plugin_groups
from desktop.core.envelope import OPUS_MEDIA_TYPE, prefetch_position_key, sealed_length
from desktop.core.orchestration.progress import Stage
from desktop.core.orchestration.store import TaskMode
from desktop.core.uploader import UploadCancelled
from subtone.errors import SubtoneError
from subtone.protocol import JobState

if TYPE_CHECKING:
    import importlib.metadata

    from desktop.core.orchestration.oneshot import DecodeSummary, EncodeSummary

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_PASSPHRASE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "CliEnv",
    "add_plugin_groups",
    "app",
    "main",
]

EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130
VOICE_NAME: Final = "secret.opus"
"""The name capacity figures assume (a recorded voice message)."""

_STATE_STYLES: Final = {
    JobState.QUEUED: "yellow",
    JobState.RUNNING: "cyan",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "dim",
}


app = typer.Typer(
    name="subtone",
    help="Hide a voice message (or any file) in a cover WAV, and get it back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_err = Console(stderr=True)
_out = Console()


def _env(ctx: typer.Context) -> CliEnv:
    env = ctx.find_root().obj
    if not isinstance(env, CliEnv):
        env = CliEnv()
        ctx.find_root().obj = env
    return env


@contextlib.contextmanager
def _reporting(env: CliEnv | None = None) -> Iterator[None]:
    """Turn the project's errors into ``error [code]: message`` and an exit status; once the
    server was called, a ``trace id: …`` line follows (what the operators search their logs
    for)."""
    try:
        yield
    except UploadCancelled as e:
        print_error(_err, e)
        _print_trace(env, e)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except SubtoneError as e:
        print_error(_err, e)
        _print_trace(env, e)
        raise typer.Exit(EXIT_ERROR) from None
    except KeyboardInterrupt:
        _err.print("interrupted: an unfinished upload resumes when the same command runs again")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _print_trace(env: CliEnv | None, error: SubtoneError) -> None:
    trace_id = getattr(error, "trace_id", None) or (env.trace_id if env is not None else None)
    if trace_id:
        _err.print(f"trace id: {trace_id}", markup=False, highlight=False)


Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")]


class EncodeMode(StrEnum):
    LSB = "lsb"
    ROBUST = "robust"


class DecodeMode(StrEnum):
    AUTO = "auto"
    LSB = "lsb"
    ROBUST = "robust"


ROBUST_WORDS: Final = "robust mode (survives re-encoding)"


@app.callback()
def _root(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option("--url", help="The server (else SUBTONE_URL, else the config).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="The client settings file.", dir_okay=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
    stats: Annotated[
        bool,
        typer.Option(
            "--stats",
            help="At the end, print the bytes sent and received and the time taken, as a "
            "JSON line on stderr.",
        ),
    ] = False,
) -> None:
    env = _env(ctx)
    if stats:
        traffic, started = env.count_traffic(), time.monotonic()

        def report() -> None:
            line = traffic.as_dict() | {"seconds": round(time.monotonic() - started, 3)}
            print(json.dumps(line), file=sys.stderr)

        ctx.call_on_close(report)
    if url is not None:
        env.url = url
    if config is not None:
        env.config_path = config
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG,
            format="%(message)s",
            handlers=[RichHandler(console=_err, show_path=False)],
        )


@app.command("encode")
def encode_command(
    ctx: typer.Context,
    cover: Annotated[Path, typer.Argument(help="The cover: a PCM WAV file.", dir_okay=False)],
    secret: Annotated[
        Path, typer.Argument(help="The secret: audio (sent as Opus) or any file.", dir_okay=False)
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The WAV to write.")],
    passphrase_file: PassphraseFile = None,
    no_compress: Annotated[
        bool, typer.Option("--no-compress", help="Hide audio as it is, not as Opus.")
    ] = False,
    force: Force = False,
    mode: Annotated[
        EncodeMode,
        typer.Option(
            "--mode",
            help="lsb: in the least significant bits (large, exact; lost on any re-encoding; "
            "the server sees only the LSB plane). robust: survives re-encoding (Opus 64k, "
            "MP3 128k, resampling, gain, cropping up to 1 s), about 100 bits per second of "
            "cover; the server sees a 16 kHz mono copy of the cover's audio.",
            case_sensitive=False,
        ),
    ] = EncodeMode.LSB,
) -> None:
    """Hide SECRET in COVER; the secret is encrypted here, never sent in the clear."""
    env = _env(ctx)
    task_mode = TaskMode(mode.value)
    with _reporting(env):
        passphrase = read_passphrase(env, passphrase_file, confirm=True)
        prefetch_position_key(passphrase, position_kdf=env.position_kdf)
        from desktop.core.orchestration import encode  # the codec: while scrypt runs

        with (
            env.client() as (settings, client),
            env.uploader(client, settings) as uploader,
            _progress_view(cover, task_mode) as view,
        ):
            summary = encode(
                client,
                cover,
                secret,
                output,
                passphrase,
                uploader=uploader,
                progress=view,
                compress_audio=not no_compress,
                overwrite=force,
                position_kdf=env.position_kdf,
                mode=task_mode,
            )
        _report_encode(summary)


def _report_encode(summary: EncodeSummary) -> None:
    used = summary.payload_bytes / summary.capacity_bytes
    if summary.cover_reused:
        _out.print("Cover: already on the server, nothing uploaded.")
    elif summary.cover_resumed:
        _out.print(
            f"Cover: resumed an interrupted upload, sent {summary.cover_parts_sent} of "
            f"{summary.cover_parts_total} parts."
        )
    _out.print(
        f"Wrote {summary.output} ({format_size(summary.output_bytes)}): "
        f"{summary.secret_name} ({format_size(summary.secret_bytes)}) sealed into "
        f"{format_size(summary.payload_bytes)}, {used:.1%} of the cover's capacity, "
        + (ROBUST_WORDS + "." if summary.k is None else f"k = {summary.k}."),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command("decode")
def decode_command(
    ctx: typer.Context,
    stego: Annotated[
        Path,
        typer.Argument(
            help="A WAV written by encode (robust mode: also a re-encoded copy of it, in any "
            "format: OGG/Opus, MP3, FLAC...).",
            dir_okay=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="A folder (the secret keeps its own name) or a file; default: the "
            "download folder.",
        ),
    ] = None,
    passphrase_file: PassphraseFile = None,
    force: Force = False,
    mode: Annotated[
        DecodeMode,
        typer.Option(
            "--mode",
            help="auto: whichever the file holds under the passphrase; lsb or robust: that "
            "one only.",
            case_sensitive=False,
        ),
    ] = DecodeMode.AUTO,
) -> None:
    """Recover the secret hidden in STEGO."""
    env = _env(ctx)
    task_mode = TaskMode(mode.value)
    with _reporting(env):
        passphrase = read_passphrase(env, passphrase_file, confirm=False)
        prefetch_position_key(passphrase, position_kdf=env.position_kdf)
        from desktop.core.orchestration import decode  # the codec: while scrypt runs

        with env.client() as (settings, client), env.uploader(client, settings) as uploader:
            target = output
            if target is None:
                target = settings.effective_download_dir
                target.mkdir(parents=True, exist_ok=True)
            with _progress_view(stego, task_mode, deriving=True) as view:
                summary = decode(
                    client,
                    stego,
                    target,
                    passphrase,
                    uploader=uploader,
                    progress=view,
                    overwrite=force,
                    position_kdf=env.position_kdf,
                    mode=task_mode,
                )
        _report_decode(summary)


def _report_decode(summary: DecodeSummary) -> None:
    found = f", {ROBUST_WORDS}" if summary.mode is TaskMode.ROBUST else ""
    _out.print(
        f"Wrote {summary.output} ({format_size(summary.size)}, {summary.media_type}{found}).",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _progress_view(source: Path, mode: TaskMode, *, deriving: bool = False) -> ProgressView:
    """The stages' labels of an encode (``deriving``: a decode) of ``source``."""
    view = ProgressView(_err)
    if deriving:
        view.label(Stage.PREPARE, "Deriving the key")
    view.label(Stage.PLANE, f"Reading {source.name}")
    view.label(Stage.UPLOAD, _sending(mode))
    return view


def _sending(mode: TaskMode) -> str:
    return {
        TaskMode.LSB: "Sending its LSB plane",
        TaskMode.ROBUST: "Sending its 16 kHz mono mix",
        TaskMode.AUTO: "Sending what the server reads",
    }[mode]


@app.command("jobs")
def jobs_command(ctx: typer.Context) -> None:
    """List your recent jobs."""
    env = _env(ctx)
    with _reporting(env), env.client() as (_, client):
        jobs = client.list_jobs().jobs
        table = Table(title=f"{len(jobs)} job(s)")
        # Narrow terminals (or a pipe: 80 columns) fold the id rather than squeeze the state
        # away; a failed job's error code goes on a second line of its state.
        table.add_column("ID", overflow="fold")
        table.add_column("Kind", no_wrap=True)
        table.add_column("State", min_width=max(len(s.value) for s in JobState))
        table.add_column("Progress", no_wrap=True, justify="right")
        table.add_column("Created", no_wrap=True, min_width=len("2026-01-01 00:00"))
        for job in jobs:
            state = Text(job.state.value, style=_STATE_STYLES[job.state])
            if job.error is not None:
                state.append(f"\n{job.error.code}", style="dim")
            table.add_row(
                job.id,
                job.kind.value,
                state,
                f"{job.progress:.0%}",
                f"{job.created_at.astimezone():%Y-%m-%d %H:%M}",
            )
        _out.print(table)


@app.command("capacity")
def capacity_command(
    cover: Annotated[Path, typer.Argument(help="A PCM WAV file.", dir_okay=False)],
    size: Annotated[
        str | None,
        typer.Option("--size", "-s", help="A secret size to check (bytes, or 200k, 1.5MB, 2MiB)."),
    ] = None,
) -> None:
    """What COVER can hold, from its header alone (no server needed)."""
    from desktop.core.orchestration import max_secret_bytes
    from subtone.stego.layout import choose_k, read_capacity

    with _reporting():
        try:
            info, capacity = read_capacity(cover)
        except OSError as e:
            raise SubtoneError(
                f"Cannot read {cover.name}: {e.strerror}.", code="unreadable_file"
            ) from e
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row(
            "Format",
            f"PCM {info.valid_bits}-bit, {info.channels} channel(s), {info.sample_rate:,} Hz",
        )
        table.add_row("Duration", format_duration(info.duration_seconds))
        table.add_row("Samples", f"{info.samples:,}")
        table.add_row(
            "Max payload",
            f"{format_size(capacity.max_payload_bytes)} ({capacity.max_payload_bytes:,} bytes)",
        )
        largest = max_secret_bytes(
            capacity.max_payload_bytes, name=VOICE_NAME, media_type=OPUS_MEDIA_TYPE
        )
        table.add_row("Max secret", f"{format_size(largest)} ({largest:,} bytes)")
        from subtone.robust.layout import capacity_frames

        robust = capacity_frames(info.frames, info.sample_rate)
        robust_secret = max_secret_bytes(robust, name=VOICE_NAME, media_type=OPUS_MEDIA_TYPE)
        table.add_row(
            "Robust mode",
            f"{format_size(robust)} ({robust:,} bytes; a secret of {robust_secret:,} bytes) "
            "survives re-encoding",
        )
        refusal: SubtoneError | None = None
        if size is not None:
            wanted = parse_size(size)
            sealed = sealed_length(wanted, name=VOICE_NAME, media_type=OPUS_MEDIA_TYPE)
            table.add_row("Secret", f"{format_size(wanted)} → {format_size(sealed)} sealed")
            try:
                k = choose_k(info.samples, sealed)
            except SubtoneError as e:
                refusal = e
                table.add_row("k", "does not fit")
            else:
                table.add_row("k", f"{k} ({k} bits in each block of {2**k - 1} samples)")
        _out.print(table)
        if refusal is not None:
            raise refusal


def plugins_for(
    argv: list[str], entry_points: Iterable[importlib.metadata.EntryPoint]
) -> list[importlib.metadata.EntryPoint]:
    """The entry points a command line needs: those it names, none when it names a built-in
    command and no plug-in, all otherwise (``--help``, an unknown command), so that
    ``subtone encode`` does not import the server's command groups (and FastAPI, Redis...)."""
    entries = list(entry_points)
    words = set(argv)
    named = [e for e in entries if e.name in words]
    if named:
        return named
    builtins = {c.name for c in app.registered_commands if c.name}
    return [] if words & builtins else entries


def names_a_builtin(argv: list[str]) -> bool:
    """Whether the command line's first word that is not an option is a built-in command:
    then no plug-in is needed, and the installed packages' metadata is not read (a few tens
    of milliseconds of every ``subtone encode``)."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first is not None and first in {c.name for c in app.registered_commands if c.name}


def main() -> None:
    """The ``subtone`` console script."""
    argv = sys.argv[1:]
    if not names_a_builtin(argv):
        import importlib.metadata

        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        add_plugin_groups(app, plugins_for(argv, found))
    app(prog_name="subtone")
