"""The ``subtone`` CLI's client commands, driven through typer's CliRunner and the fake API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import desktop.cli
import desktop.core.api
import desktop.core.api_errors
import desktop.core.config
import desktop.core.orchestration
import desktop.core.orchestration.oneshot
import desktop.core.orchestration.prepare
import desktop.core.orchestration.progress
import desktop.core.orchestration.runner
import desktop.core.orchestration.steps
import desktop.core.orchestration.store
import desktop.core.orchestration.transfer
import desktop.core.orchestration.workdir
import desktop.core.parts
import desktop.core.retry
import desktop.core.sessions
import desktop.core.sources
import desktop.core.sqlite
import desktop.core.stop
import desktop.core.uploader
from desktop.cli import CliEnv, app
from desktop.core.config import ClientSettings
from desktop.core.envelope import KdfParams
from desktop.core.sessions import SessionStore
from subtone.tracing import TRACEPARENT_HEADER, TraceParent, parse_traceparent
from tests.desktop.fake_server import API, TOKEN, FakePartTransport, FakeServer, error

CHEAP = KdfParams(log2_n=4, r=1, p=1)
runner = CliRunner()


def write_wav(path: Path, frames: int, rate: int = 8000, channels: int = 1) -> Path:
    samples = np.zeros((frames, channels), dtype=np.int16)
    sf.write(path, samples, rate, subtype="PCM_16")
    return path


def env_for(server: FakeServer, tmp_path: Path, **kwargs) -> CliEnv:
    settings = ClientSettings(server_url=API, token=TOKEN, download_dir=tmp_path / "downloads")
    kwargs.setdefault("environ", {})
    return CliEnv(
        settings=settings,
        transport=server.transport(),
        part_transport=FakePartTransport(server),
        sessions=SessionStore(tmp_path / "sessions.sqlite3"),
        interactive=lambda: False,
        position_kdf=CHEAP,
        **kwargs,
    )


def test_capacity_reports_format_duration_and_sizes(tmp_path: Path):
    cover = write_wav(tmp_path / "c.wav", 44_100 * 3, rate=44_100, channels=2)

    result = runner.invoke(app, ["capacity", str(cover), "--size", "10k"])

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "PCM 16-bit, 2 channel(s), 44,100 Hz" in out
    assert "0:03.0" in out
    assert "264,600" in out  # samples
    assert "Max secret" in out and "k" in out
    assert "does not fit" not in out


def test_capacity_says_when_a_size_does_not_fit(tmp_path: Path):
    cover = write_wav(tmp_path / "c.wav", 8000)

    result = runner.invoke(app, ["capacity", str(cover), "--size", "1MB"])

    assert result.exit_code == 1
    assert "does not fit" in result.stdout
    assert "error [capacity_exceeded]:" in result.stderr


def test_capacity_of_a_file_that_is_not_wav(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not audio at all")

    result = runner.invoke(app, ["capacity", str(path)])

    assert result.exit_code == 1
    assert "error [not_wav]:" in result.stderr
    assert "Traceback" not in result.output


def test_an_api_error_exits_non_zero_with_its_code(tmp_path: Path):
    server = FakeServer()
    sent: list[TraceParent | None] = []

    def forbidden(request: httpx.Request) -> httpx.Response:
        sent.append(parse_traceparent(request.headers.get(TRACEPARENT_HEADER)))
        return error(403, "forbidden", "Your token was revoked.")

    server.hooks["/v1/jobs"] = forbidden

    result = runner.invoke(app, ["jobs"], obj=env_for(server, tmp_path))

    assert result.exit_code == 1
    (trace,) = sent
    assert trace is not None
    # The error, then the trace id the request carried: what the operators search for.
    assert result.stderr.strip().splitlines() == [
        "error [forbidden]: Your token was revoked.",
        f"trace id: {trace.trace_id}",
    ]
    assert "Traceback" not in result.output


def test_an_unreachable_server_is_reported(tmp_path: Path):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    env = env_for(FakeServer(), tmp_path)
    env.transport = httpx.MockTransport(refuse)

    result = runner.invoke(app, ["jobs"], obj=env)

    assert result.exit_code == 1
    assert "error [server_unreachable]: Cannot reach the Subtone server" in result.stderr


def test_jobs_lists_a_table(tmp_path: Path):
    server = FakeServer()
    cover = write_wav(tmp_path / "c.wav", 16_000)
    secret = tmp_path / "s.txt"
    secret.write_text("psst")
    (tmp_path / "pw").write_text("pass phrase\n")
    env = env_for(server, tmp_path)
    runner.invoke(
        app,
        ["encode", str(cover), str(secret), "-o", str(tmp_path / "o.wav"),
         "--passphrase-file", str(tmp_path / "pw")],
        obj=env,
    )  # fmt: skip

    result = runner.invoke(app, ["jobs"], obj=env)

    assert result.exit_code == 0, result.output
    (job_id,) = server.jobs
    assert job_id in result.stdout and "stego.embed" in result.stdout
    assert "succeeded" in result.stdout


def test_encode_and_decode_from_the_command_line(tmp_path: Path):
    server = FakeServer()
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "note.txt"
    secret.write_text("the key is under the mat")
    out = tmp_path / "stego.wav"
    env = env_for(server, tmp_path, environ={"SUBTONE_PASSPHRASE": "open sesame"})

    encoded = runner.invoke(app, ["encode", str(cover), str(secret), "-o", str(out)], obj=env)

    assert encoded.exit_code == 0, encoded.output
    assert f"Wrote {out}" in encoded.stdout and "note.txt" in encoded.stdout
    assert out.stat().st_size == cover.stat().st_size

    folder = tmp_path / "downloads"  # made on first use
    decoded = runner.invoke(app, ["decode", str(out)], obj=env)

    assert decoded.exit_code == 0, decoded.output
    assert (folder / "note.txt").read_text() == "the key is under the mat"


def test_the_cli_asks_for_the_configured_part_size(tmp_path: Path):
    server = FakeServer()
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "note.txt"
    secret.write_text("sized parts")
    env = env_for(server, tmp_path, environ={"SUBTONE_PASSPHRASE": "open sesame"})
    env.settings = env.settings.model_copy(update={"part_size_bytes": 6 * 1024 * 1024})

    result = runner.invoke(
        app, ["encode", str(cover), str(secret), "-o", str(tmp_path / "o.wav")], obj=env
    )

    assert result.exit_code == 0, result.output
    created = [
        json.loads(r.content)
        for r in server.requests
        if r.method == "POST" and r.url.path == "/v1/uploads"
    ]
    assert created and all(body["part_size"] == 6 * 1024 * 1024 for body in created)


def test_a_wrong_passphrase_is_an_error_line(tmp_path: Path):
    server = FakeServer()
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "note.txt"
    secret.write_text("hi")
    out = tmp_path / "stego.wav"
    encoded = runner.invoke(
        app,
        ["encode", str(cover), str(secret), "-o", str(out)],
        obj=env_for(server, tmp_path, environ={"SUBTONE_PASSPHRASE": "right"}),
    )
    assert encoded.exit_code == 0 and out.is_file(), encoded.output
    seen = len(server.requests)

    result = runner.invoke(
        app,
        ["decode", str(out), "-o", str(tmp_path)],
        obj=env_for(server, tmp_path, environ={"SUBTONE_PASSPHRASE": "wrong"}),
    )

    assert result.exit_code == 1
    assert "error [no_payload]: No hidden message was found: the passphrase is wrong" in (
        result.stderr
    )
    assert "Traceback" not in result.output
    assert len(server.requests) == seen and len(server.jobs) == 1  # refused before sending


def test_without_a_passphrase_and_no_terminal_it_refuses(tmp_path: Path):
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "n.txt"
    secret.write_text("x")

    result = runner.invoke(
        app,
        ["encode", str(cover), str(secret), "-o", str(tmp_path / "o.wav")],
        obj=env_for(FakeServer(), tmp_path),
    )

    assert result.exit_code == 1
    assert "error [passphrase_required]" in result.stderr


def test_the_passphrase_is_prompted_twice_when_encoding(tmp_path: Path):
    server = FakeServer()
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "n.txt"
    secret.write_text("x")
    env = env_for(server, tmp_path)
    env.interactive = lambda: True

    result = runner.invoke(
        app,
        ["encode", str(cover), str(secret), "-o", str(tmp_path / "o.wav")],
        obj=env,
        input="typed secret\ntyped secret\n",
    )

    assert result.exit_code == 0, result.output
    assert "typed secret" not in result.output  # hidden input


def test_the_passphrase_is_not_an_option():
    result = runner.invoke(app, ["encode", "--help"])
    assert "--passphrase-file" in result.stdout
    assert "--passphrase " not in result.stdout


def test_the_client_commands_are_built_in():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("encode", "decode", "jobs", "capacity"):
        assert name in result.stdout


@pytest.mark.parametrize(
    "module",
    [
        desktop.cli,
        desktop.core.api,
        desktop.core.api_errors,
        desktop.core.config,
        desktop.core.retry,
        desktop.core.parts,
        desktop.core.sessions,
        desktop.core.sources,
        desktop.core.sqlite,
        desktop.core.stop,
        desktop.core.uploader,
        desktop.core.orchestration,
        desktop.core.orchestration.oneshot,
        desktop.core.orchestration.prepare,
        desktop.core.orchestration.progress,
        desktop.core.orchestration.runner,
        desktop.core.orchestration.steps,
        desktop.core.orchestration.store,
        desktop.core.orchestration.transfer,
        desktop.core.orchestration.workdir,
    ],
)
def test_public_names_exist(module):
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.{name}"
