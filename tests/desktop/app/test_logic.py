"""The desktop app's Qt-free pieces: passphrase hints, formatting, progress text, drops,
error wording, capacity checks, settings with a keyring, and the task store."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from desktop.app.drops import DropTarget, route_drop
from desktop.app.formatting import format_clock, format_duration, format_rate, format_size
from desktop.app.media import check_fit, describe_cover, describe_secret
from desktop.app.messages import describe_error
from desktop.app.passphrase import MIN_ACCEPTED_BITS, estimate_bits, strength
from desktop.app.progress import ProgressText, Throttle, TransferMeter
from desktop.app.settings import KEYRING_SERVICE, SettingsStore, TokenPlace
from desktop.core.config import ClientSettings
from desktop.core.orchestration import ProgressEvent, Stage, Task, TaskKind, TaskStatus, TaskStore
from subtone.errors import SubtoneError
from tests.desktop.app_support import MemoryKeyring, write_wav


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# Passphrases ------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["", "password", "aaaaaaaa", "abcdefgh", "12345678", "qwerty12"])
def test_weak_passphrases_are_refused(weak):
    assert estimate_bits(weak) < MIN_ACCEPTED_BITS
    assert not strength(weak).acceptable


@pytest.mark.parametrize(
    "good", ["correct horse battery staple", "Tr0ub4dor&3-x!", "mill at noon 7"]
)
def test_reasonable_passphrases_pass(good):
    s = strength(good)
    assert s.acceptable and s.level >= 2 and s.hint


def test_longer_is_stronger():
    assert estimate_bits("blue whale") < estimate_bits("blue whale sings at dawn")


_NUMBERS = {"Three": 3, "Four": 4, "Five": 5, "Six": 6, "Seven": 7}
_WORDS = ["orbit", "velvet", "tundra", "pickle", "saddle", "quartz", "lantern", "meadow", "cobalt"]


def test_the_hint_and_the_meter_agree_on_how_many_words_are_strong():
    hint = strength("pass").hint
    recommended = next(n for word, n in _NUMBERS.items() if f"{word} or more random words" in hint)
    assert "make a strong passphrase" in hint
    assert strength(" ".join(_WORDS[:recommended])).label == "Strong"
    assert strength(" ".join(_WORDS[: recommended + 1])).label in ("Strong", "Very strong")
    assert strength(" ".join(_WORDS[: recommended - 1])).label != "Strong"


# Formatting ---------------------------------------------------------------------------------


def test_formatting():
    assert format_size(999) == "999 B"
    assert format_size(1_234_567) == "1.2 MB"
    assert format_size(512_000_000) == "512 MB"
    assert format_rate(2_500_000) == "2.5 MB/s"
    assert format_clock(7.34) == "0:07.3"
    assert format_clock(3725) == "1:02:05"
    assert format_duration(8.4) == "8 s"
    assert format_duration(190) == "3 min 10 s"
    assert format_duration(7500) == "2 h 5 min"
    assert format_duration(float("inf")) == "a while"


# Progress -----------------------------------------------------------------------------------


def test_transfer_meter_speed_and_time_left():
    clock = Clock()
    meter = TransferMeter(clock=clock)
    first = meter.update(0, 10_000_000)
    assert first.bytes_per_second is None and first.seconds_left is None
    clock.now = 2.0
    later = meter.update(4_000_000, 10_000_000)
    assert later.bytes_per_second == pytest.approx(2_000_000)
    assert later.seconds_left == pytest.approx(3.0)
    assert later.fraction == pytest.approx(0.4)
    assert meter.update(0, 5).bytes_per_second is None  # going back means a new transfer


def test_progress_text_for_each_stage():
    clock = Clock()
    text = ProgressText(clock=clock)
    assert text.describe(ProgressEvent(Stage.PREPARE, 0, 1)) == (0.0, "Sealing the secret…")
    text.describe(ProgressEvent(Stage.UPLOAD, 0, 8_000_000))
    clock.now = 1.0
    fraction, line = text.describe(ProgressEvent(Stage.UPLOAD, 2_000_000, 8_000_000))
    assert fraction == 0.25
    assert line == "Uploading: 2.0 MB of 8.0 MB · 2.0 MB/s · 3 s left"
    assert text.describe(ProgressEvent(Stage.JOB, 420, 1000)) == (
        0.42,
        "Processing on the server: 42%",
    )


def test_throttle_lets_the_last_call_through():
    clock = Clock()
    throttle = Throttle(0.5, clock=clock)
    assert throttle.ready()
    assert not throttle.ready()
    assert throttle.ready(final=True)
    clock.now = 1.0
    assert throttle.ready()


# Drops ------------------------------------------------------------------------------------


def test_drops_go_to_the_right_field(tmp_path: Path):
    wav, other, text = tmp_path / "a.wav", tmp_path / "b.WAV", tmp_path / "note.txt"
    for p in (wav, other, text):
        p.write_bytes(b"x")
    assert route_drop("encode", [wav, text], has_cover=False) == [
        (DropTarget.COVER, wav),
        (DropTarget.SECRET, text),
    ]
    assert route_drop("encode", [wav], has_cover=True) == [(DropTarget.SECRET, wav)]
    assert route_drop("encode", [wav, other], has_cover=False) == [
        (DropTarget.COVER, wav),
        (DropTarget.SECRET, other),
    ]
    assert route_drop("decode", [text, wav], has_cover=False) == [(DropTarget.STEGO, text)]
    assert route_drop("record", [wav], has_cover=False) == [(DropTarget.SECRET, wav)]
    assert route_drop("encode", [tmp_path / "missing.wav", tmp_path], has_cover=False) == []


# Errors -----------------------------------------------------------------------------------


def test_errors_in_plain_words():
    wrong = describe_error("no_payload", "No hidden message was found.")
    assert wrong.startswith("Wrong passphrase, or nothing hidden.")
    assert "passphrase is wrong" in describe_error("wrong_passphrase", "tag mismatch")
    assert describe_error("capacity_exceeded", "The secret needs 9 bytes.") == (
        "The secret does not fit. The secret needs 9 bytes."
    )
    assert describe_error("quota_exceeded", "You used your quota") == (
        "You used your quota. [quota_exceeded]"
    )
    assert "sent when the server is back" in describe_error("server_unreachable", "Cannot reach")


# Capacity -----------------------------------------------------------------------------------


def test_cover_summary_and_fit(tmp_path: Path):
    cover = describe_cover(write_wav(tmp_path / "cover.wav", 16_000, rate=8000, channels=2))
    assert cover.channels == 2 and cover.samples == 32_000 and cover.duration_seconds == 2.0
    assert cover.summary.startswith("0:02.0 · WAV 16-bit · 8 kHz · stereo")
    small = tmp_path / "note.txt"
    small.write_text("meet me at noon")
    fit = check_fit(cover, describe_secret(small))
    assert fit.fits and "Fits" in fit.message
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(cover.capacity_bytes + 1))
    too_big = check_fit(cover, describe_secret(big))
    assert not too_big.fits and too_big.message.startswith("Too large")


def test_a_cover_that_is_not_wav_is_refused(tmp_path: Path):
    bad = tmp_path / "cover.wav"
    bad.write_bytes(b"not a wav at all" * 10)
    with pytest.raises(SubtoneError) as caught:
        describe_cover(bad)
    assert caught.value.code == "not_wav"
    with pytest.raises(SubtoneError, match="Cannot read"):
        describe_cover(tmp_path / "missing.wav")


# Settings -----------------------------------------------------------------------------------


def test_token_goes_to_the_keyring_when_there_is_one(tmp_path: Path):
    keyring = MemoryKeyring()
    store = SettingsStore(tmp_path / "client.json", keyring=keyring, environ={})
    settings = ClientSettings(server_url="http://srv:8600", token="tok_abc", parallel_parts=3)
    assert store.save(settings) == TokenPlace.KEYRING
    assert keyring.entries == {(KEYRING_SERVICE, "http://srv:8600"): "tok_abc"}
    assert "tok_abc" not in (tmp_path / "client.json").read_text()
    loaded = store.load()
    assert (loaded.token, loaded.parallel_parts) == ("tok_abc", 3)
    assert store.save(settings.model_copy(update={"token": None})) == TokenPlace.NONE
    assert keyring.entries == {}


class BrokenKeyring(MemoryKeyring):
    def set_password(self, service_name, username, password):
        raise RuntimeError("No recommended backend was available.")

    def get_password(self, service_name, username):
        raise RuntimeError("No recommended backend was available.")


def test_without_a_keyring_the_token_is_in_a_0600_file(tmp_path: Path):
    store = SettingsStore(tmp_path / "cfg" / "client.json", keyring=BrokenKeyring(), environ={})
    assert store.save(ClientSettings(token="tok_file")) == TokenPlace.FILE
    mode = stat.S_IMODE((tmp_path / "cfg" / "client.json").stat().st_mode)
    assert mode == 0o600
    assert store.load().token == "tok_file"


def test_environment_overrides_the_keyring(tmp_path: Path):
    keyring = MemoryKeyring()
    store = SettingsStore(
        tmp_path / "client.json", keyring=keyring, environ={"SUBTONE_TOKEN": "tok_env"}
    )
    store.save(ClientSettings(token="tok_saved"))
    assert store.load().token == "tok_env"


# Task store ---------------------------------------------------------------------------------


def _task(task_id: str, **fields) -> Task:
    base = {
        "id": task_id,
        "kind": TaskKind.ENCODE,
        "status": TaskStatus.QUEUED,
        "server": "http://srv",
        "input_path": "/tmp/cover.wav",
        "input_bytes": 100,
        "k_pos": "00" * 32,
        "job_nonce": "n",
    }
    return Task(**(base | fields))


def test_task_store_round_trip_and_queue_order(tmp_path: Path):
    store = TaskStore(tmp_path / "state" / "desktop.sqlite3")
    first = store.add(_task("task_1", secret_is_recording=True))
    store.add(_task("task_2", kind=TaskKind.DECODE))
    store.add(_task("task_3", status=TaskStatus.SUCCEEDED))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.get("task_1") == first
    assert [t.id for t in store.unfinished()] == ["task_1", "task_2"]
    assert [t.id for t in store.all()] == ["task_3", "task_2", "task_1"]
    updated = store.update("task_1", status=TaskStatus.UPLOADING, input_object_id="obj_1")
    assert updated.status is TaskStatus.UPLOADING and updated.secret_is_recording
    assert updated.updated_at >= first.updated_at
    with pytest.raises(ValueError):
        store.update("task_1", nonsense=1)
    store.remove("task_2")
    assert store.get("task_2") is None
    assert TaskStatus.PAUSED.label == "Paused" and not TaskStatus.PAUSED.resumes_by_itself


# Upload speed: the app sends exactly as the CLI does (issue 14, item 11) ----------------


def test_the_apps_uploader_is_the_clis_for_the_same_settings(tmp_path):
    from desktop.app.context import AppContext
    from desktop.cli import CliEnv
    from desktop.core.api import ApiClient
    from desktop.core.parts import HttpPartTransport

    settings = ClientSettings(
        server_url="http://127.0.0.1:8600",
        token="tok",
        parallel_parts=6,
        part_size_bytes=8 * 1024 * 1024,
        sessions_path=str(tmp_path / "uploads.sqlite3"),
    )
    ctx = AppContext(data_dir=tmp_path / "data", state_dir=tmp_path / "state", keyring=None)
    with ApiClient(settings.server_url, settings.token) as client:
        app = ctx.uploader(client, settings)
        cli = CliEnv(settings=settings).uploader(client, settings)
        try:
            for uploader in (app, cli):
                assert isinstance(uploader._transport, HttpPartTransport)
            assert app._parallel == cli._parallel == 6  # parts in flight at once
            assert app._part_size == cli._part_size == 8 * 1024 * 1024
            assert app._retry == cli._retry
            assert app.sessions_path == cli.sessions_path
        finally:
            app.close()
            cli.close()


def test_upload_progress_reaches_the_window_a_few_times_a_second_not_per_event():
    """Progress goes to the GUI thread as queued signals: one per event would flood it (and
    the GIL) on a fast upload. The last event always arrives."""
    from desktop.app.tasks import _progress_reporter

    reports: list[tuple[float, str]] = []
    on_event = _progress_reporter(lambda fraction, text: reports.append((fraction, text)))
    total = 100 * 1024 * 1024
    for done in range(0, total + 1, 64 * 1024):  # 1,601 events in well under 0.1 s
        on_event(ProgressEvent(Stage.UPLOAD, done, total))
    assert 1 <= len(reports) <= 5
    assert reports[-1][0] == 1.0


# Start-up on Linux without the xcb plugin's libraries (issue 14, item 10) ----------------


def _missing(*sonames: str):
    def load(soname: str) -> None:
        if soname in sonames:
            raise OSError(f"{soname}: cannot open shared object file: No such file or directory")

    return load


def test_missing_xcb_libraries_are_named_with_their_packages():
    from desktop.app.platform_check import check_platform_libraries

    found = check_platform_libraries(
        {"DISPLAY": ":0"},
        platform="linux",
        load=_missing("libxcb-cursor.so.0", "libxcb-icccm.so.4"),
    )
    assert found is not None
    assert found.libraries == ("libxcb-cursor.so.0", "libxcb-icccm.so.4")
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in found.message
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in found.message
    assert check_platform_libraries({"DISPLAY": ":0"}, platform="linux", load=_missing()) is None


@pytest.mark.parametrize(
    ("environ", "platform"),
    [
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux"),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux"),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux"),
        ({}, "darwin"),
        ({}, "win32"),
    ],
)
def test_no_xcb_check_where_qt_uses_another_plugin(environ, platform):
    from desktop.app.platform_check import XCB_LIBRARIES, check_platform_libraries

    everything_missing = _missing(*XCB_LIBRARIES)
    assert check_platform_libraries(environ, platform=platform, load=everything_missing) is None


def test_the_app_says_what_is_missing_instead_of_letting_qt_abort(monkeypatch, capsys):
    import desktop.app
    from desktop.app import platform_check

    monkeypatch.setattr(platform_check, "_load", _missing("libxkbcommon-x11.so.0"))
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(desktop.app, "run", lambda *a: pytest.fail("Qt must not be started"))
    assert desktop.app.main([]) == platform_check.MISSING_LIBRARIES
    err = capsys.readouterr().err
    assert "libxkbcommon-x11.so.0" in err
    assert "sudo apt-get install libxkbcommon-x11-0" in err


def test_the_setup_script_installs_every_library_of_the_xcb_plugin():
    import re

    from desktop.app.platform_check import XCB_LIBRARIES

    script = (Path(__file__).resolve().parents[3] / "scripts" / "setup.sh").read_text()
    block = re.search(r"^APT_PACKAGES=\((.*?)\)$", script, re.S | re.M)
    assert block is not None
    words = {w for line in block.group(1).splitlines() for w in line.split("#")[0].split()}
    assert set(XCB_LIBRARIES.values()) <= words
