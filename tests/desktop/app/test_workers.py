"""Background workers report only through signals, received on the GUI thread."""

from __future__ import annotations

import threading

from desktop.app.workers import WorkerPool
from subtone.errors import SubtoneError


def test_results_progress_and_errors_arrive_on_the_gui_thread(qtbot):
    pool = WorkerPool()
    gui = threading.current_thread()
    seen: list[tuple[str, object, bool]] = []

    def work(report):
        assert threading.current_thread() is not gui
        report(0.5, "half")
        return 42

    def refuse(report):
        raise SubtoneError("The cover is too small.", code="capacity_exceeded")

    def crash(report):
        raise ValueError("boom")

    def note(kind):
        return lambda *args: seen.append((kind, args, threading.current_thread() is gui))

    pool.start(work, on_progress=note("progress"), on_finished=note("finished"))
    pool.start(refuse, on_failed=note("refused"))
    pool.start(crash, on_failed=note("crashed"))
    qtbot.waitUntil(lambda: len(seen) == 4 and pool.active == 0)
    assert all(on_gui for _, _, on_gui in seen)
    assert ("progress", (0.5, "half"), True) in seen
    assert ("finished", (42,), True) in seen
    assert ("refused", ("capacity_exceeded", "The cover is too small."), True) in seen
    assert ("crashed", ("internal_error", "ValueError: boom"), True) in seen
    assert pool.wait(1000)
