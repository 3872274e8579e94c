"""The desktop app driven through its window (pytest-qt, offscreen) against the real stack.

Everything past the window is real: HTTP to the standalone API, part PUTs to the local store
by pre-signed URLs, the Dramatiq worker on RabbitMQ, Triton, Redis. Only the sound card is a
fake (the machine has none), and one test watches the part PUTs on their way to storage.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest
from PySide6.QtWidgets import QLabel, QPushButton

from desktop.app.state import ConnectionStatus
from desktop.core.orchestration import TaskStatus
from desktop.core.uploader import HttpPartTransport, PartBody
from subtone.errors import SubtoneError
from tests.desktop.app_support import screenshot
from tests.e2e.app_driver import (
    JOB_MS,
    MiB,
    child,
    click,
    decode_through_the_window,
    fill_encode,
    finished,
    label,
    make_cover,
    make_secret,
    stack_context,
)

pytestmark = pytest.mark.integration

# Helpers ---------------------------------------------------------------------------------


def part_files(root: Path, storage_upload: str) -> dict[int, tuple[int, int]]:
    """The parts the local store holds for one multipart upload, by their sidecars (written
    once a part is stored, rewritten if it is sent again): number → (inode, mtime_ns)."""
    found = {}
    for path in (root / ".multipart" / storage_upload).glob("*.json"):
        if path.stem.isdigit():
            st = path.stat()
            found[int(path.stem)] = (st.st_ino, st.st_mtime_ns)
    return found


class WatchedParts(HttpPartTransport):
    """Real part PUTs to the real store, each reported first to ``before_put``."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, int]] = []
        """(storage upload id, part number) of every PUT, in order."""
        self.before_put = None
        self.lock = threading.Lock()

    def put(self, url: str, body: PartBody) -> str:
        params = httpx.URL(url).params
        upload, number = params["uploadId"], int(params["partNumber"])
        if self.before_put is not None:
            self.before_put(upload, number)
        etag = super().put(url, body)
        with self.lock:
            self.sent.append((upload, number))
        return etag


# The supervisor ---------------------------------------------------------------------------


def test_one_service_stops_and_up_starts_it_again(stack):
    supervisor = stack.supervisor
    worker_before = next(s for s in supervisor.status() if s.name == "worker")
    try:
        supervisor.stop_service("api", report=lambda _: None)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{stack.url}/healthz", timeout=2)
        running = {s.name: s.alive for s in supervisor.status()}
        assert not running["api"] and running["worker"] and running["triton"]
        with pytest.raises(SubtoneError, match="api is not running"):
            supervisor.stop_service("api", report=lambda _: None)
    finally:
        supervisor.up(report=lambda _: None)
    assert httpx.get(f"{stack.url}/readyz", timeout=5).json()["ready"] is True
    worker_after = next(s for s in supervisor.status() if s.name == "worker")
    assert worker_after.pid == worker_before.pid  # the others were left alone


# Encode and decode through the window ----------------------------------------------------


def test_encode_then_decode_through_the_window(qtbot, open_window, dialogs, stack, tmp_path):
    cover = make_cover(tmp_path / "holiday.wav", 20.0)
    secret = make_secret(tmp_path / "plans.pdf")
    window = open_window(stack_context(tmp_path / "app", stack))
    assert window.connection.status is ConnectionStatus.ONLINE
    assert f"Connected to {stack.url}" in label(window, "status.connection")

    fill_encode(qtbot, window, dialogs, cover, secret)
    assert "Fits" in label(window, "encode.fit")
    click(qtbot, window, "encode.start")
    view = window.encode_view
    qtbot.waitUntil(lambda: finished(view), timeout=JOB_MS)
    task = view.follower.task
    assert task.status is TaskStatus.SUCCEEDED, label(window, "encode.error")
    assert "The stego file is ready: holiday-stego.wav" in label(window, "encode.result")
    assert task.output.stat().st_size == cover.stat().st_size
    assert task.output.read_bytes() != cover.read_bytes()

    target = tmp_path / "sent" / "holiday-stego.wav"
    target.parent.mkdir()
    dialogs.save_answers.append(target)
    click(qtbot, window, "encode.save")
    assert dialogs.suggested.name == "holiday-stego.wav"
    qtbot.waitUntil(lambda: label(window, "encode.saved") == f"Saved to {target}")
    screenshot(window, "stack-encode")

    recovered = decode_through_the_window(qtbot, window, dialogs, target)
    assert recovered.name == "plans.pdf"
    assert recovered.read_bytes() == secret.read_bytes()
    assert "Recovered the file plans.pdf" in label(window, "decode.result")


def test_an_encode_queued_while_the_server_is_down_is_sent_when_it_is_back(
    qtbot, open_window, dialogs, stack, tmp_path
):
    cover = make_cover(tmp_path / "cover.wav", 10.0)
    secret = make_secret(tmp_path / "note.bin", 10_000)
    root = stack.settings.localstore_root
    uploads_before = set((root / ".multipart").glob("*"))
    stack.supervisor.stop_service("api", report=lambda _: None)
    try:
        window = open_window(stack_context(tmp_path / "app", stack))
        assert window.connection.status is ConnectionStatus.OFFLINE
        assert f"Offline: the server at {stack.url} cannot be reached" in label(
            window, "status.connection"
        )
        fill_encode(qtbot, window, dialogs, cover, secret)
        start = child(window, QPushButton, "encode.start")
        assert start.text() == "Queue encode"
        click(qtbot, window, "encode.start")
        view = window.encode_view
        qtbot.waitUntil(lambda: view.follower.task is not None, timeout=60_000)
        assert view.follower.task.status is TaskStatus.QUEUED
        assert "Queued: the server cannot be reached now" in label(window, "encode.progress.text")
        assert label(window, "status.queue") == "1 task waiting for the server"
        assert "1 encode waiting to be sent" in label(window, "encode.queue")
        assert set((root / ".multipart").glob("*")) == uploads_before  # nothing was sent
        screenshot(window, "stack-offline")
    finally:
        stack.supervisor.up(report=lambda _: None)  # the API is back

    qtbot.waitUntil(lambda: window.connection.status is ConnectionStatus.ONLINE, timeout=30_000)
    qtbot.waitUntil(lambda: finished(view), timeout=JOB_MS)
    task = view.follower.task
    assert task.status is TaskStatus.SUCCEEDED, label(window, "encode.error")
    assert label(window, "status.queue") == ""
    assert label(window, "encode.queue") == ""
    recovered = decode_through_the_window(qtbot, window, dialogs, task.output)
    assert recovered.read_bytes() == secret.read_bytes()


def test_closing_mid_upload_then_reopening_sends_only_the_missing_parts(
    qtbot, open_window, dialogs, stack, tmp_path
):
    # What is uploaded is the cover's LSB plane (1/16 of it): 127 MB make a 7.6 MiB plane,
    # two parts of 5 MiB (storage's smallest).
    cover = make_cover(tmp_path / "long.wav", 720.0)
    secret = make_secret(tmp_path / "plans.pdf")
    first_parts, second_parts = WatchedParts(), WatchedParts()
    root = stack.settings.localstore_root
    config = {"parallel_parts": 1, "part_size_bytes": 5 * MiB}
    ctx = stack_context(tmp_path / "app", stack, part_transport=first_parts, **config)
    try:
        first = open_window(ctx)
        reached, tick = threading.Event(), threading.Event()

        def hold_part_1(upload: str, number: int) -> None:
            if number == 1 and not reached.is_set():
                reached.set()
                # Held on the wire until closing the window has asked the run to stop: then
                # it arrives, and the upload stops before part 2.
                while not first.manager.is_stopping(first.encode_view.task_id):
                    tick.wait(0.01)

        first_parts.before_put = hold_part_1
        fill_encode(qtbot, first, dialogs, cover, secret)
        click(qtbot, first, "encode.start")
        task_id = first.encode_view.task_id
        qtbot.waitUntil(reached.is_set, timeout=120_000)
        first.close()  # as the person closes the window, mid-upload
        task = first.store.require(task_id)
        assert task.status is TaskStatus.UPLOADING
        (upload, _), *_ = first_parts.sent
        assert [n for u, n in first_parts.sent if u == upload] == [1]
        stored = part_files(root, upload)
        assert sorted(stored) == [1]

        seen_at_restart: dict[int, tuple[int, int]] = {}

        def look_first(up: str, number: int) -> None:
            if up == upload and not seen_at_restart:
                seen_at_restart.update(part_files(root, upload))

        second_parts.before_put = look_first
        ctx.part_transport = second_parts
        second = open_window(ctx, wait_for_server=False)
        notice = child(second, QLabel, "status.resume")
        assert notice.isVisible()
        assert notice.text().startswith("Continuing 1 unfinished upload · ")
        assert second.encode_view.task_id == task_id
        view = second.encode_view
        qtbot.waitUntil(lambda: finished(view), timeout=JOB_MS)
        done = view.follower.task
        assert done.status is TaskStatus.SUCCEEDED, label(second, "encode.error")
        # Only part 2 of the plane went; part 1 was left as storage held it.
        assert [n for u, n in second_parts.sent if u == upload] == [2]
        assert seen_at_restart == stored
        assert not notice.isVisible()
        assert done.output.stat().st_size == cover.stat().st_size
        recovered = decode_through_the_window(qtbot, second, dialogs, done.output)
        assert recovered.read_bytes() == secret.read_bytes()
    finally:
        first_parts.close()
        second_parts.close()
