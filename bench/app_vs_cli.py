"""The desktop app's encode against the CLI's, on the same standalone stack, in one run.

    .venv/bin/python bench/app_vs_cli.py [--cover-mb 100] [--secret-kb 1024] [--runs 3]
                                         [--py-spy FILE]

One ``subtone standalone up`` (``bench/e2e.py``'s ``stack()``: free ports, a data folder, a
Redis key prefix and a RabbitMQ vhost of its own), one generated 16-bit stereo cover and one
random secret (it does not compress). Then, alternately, ``--runs`` times each:

- **CLI**: ``subtone encode COVER SECRET -o OUT --passphrase-file F --force`` as a user runs
  it, one process per encode; timed from the process's start to the stego file appearing
  under its name (it appears only when complete) and to the process's exit. Beside it,
  ``subtone encode --help``: the process start-up every CLI encode includes.
- **App**: one ``MainWindow`` (offscreen, or on ``$QT_QPA_PLATFORM``) on the same stack and
  the same client settings (``client.json`` written by ``standalone up``), driven as a
  person drives it: the cover and the secret chosen through the file buttons, the
  passphrase typed twice, Encode clicked; timed from the click to the task reaching
  SUCCEEDED (the stego file is then under its name in the app's folder: checked). Between
  runs the window finishes its after-encode work (the stego file set against its cover) and
  the task is removed, so the next run starts from the same state.

Both use the machine's default key-derivation cost. Prints each run, the medians, the ratio
app/CLI (the target is ≤ 1.2) and, stricter, app/(CLI − its start-up); writes
``bench/out/app_vs_cli.json``. ``--py-spy FILE`` records the app's runs with py-spy (a
speedscope profile of this process, every thread). Everything it starts it stops.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# The stack and the CLI run this checkout's code too (not whichever one the venv installed).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from e2e import MB, SUBTONE, make_cover, stack  # noqa: E402
from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication, QLineEdit, QPushButton, QWidget  # noqa: E402

from desktop.app.context import AppContext  # noqa: E402
from desktop.app.dialogs import Dialogs  # noqa: E402
from desktop.app.main_window import MainWindow  # noqa: E402
from desktop.app.state import ConnectionStatus  # noqa: E402
from desktop.core.orchestration import Task, TaskStatus  # noqa: E402

OUT = ROOT / "bench" / "out"
PASSPHRASE = "benchmarks are not secrets"
TARGET_RATIO = 1.2
LIMIT_S = 1800.0
"""One encode's time limit, either way."""
POLL_S = 0.002
W = TypeVar("W", bound=QWidget)


# The CLI ---------------------------------------------------------------------------------


def cli_encode(env: dict[str, str], cover: Path, secret: Path, work: Path) -> dict[str, float]:
    """One ``subtone encode`` process: seconds to the stego file, and to the process's exit."""
    passfile = work / "pass.txt"
    passfile.write_text(PASSPHRASE + "\n")
    stego = work / "stego-cli.wav"
    stego.unlink(missing_ok=True)
    command = [SUBTONE, "encode", str(cover), str(secret), "-o", str(stego),
               "--passphrase-file", str(passfile), "--force"]  # fmt: skip
    log = work / "cli.log"
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        written: float | None = None
        while proc.poll() is None:
            if written is None and stego.exists():
                written = time.perf_counter() - start
            if time.perf_counter() - start > LIMIT_S:
                proc.kill()
                proc.wait()
                raise SystemExit(f"subtone encode took over {LIMIT_S:.0f} s")
            time.sleep(POLL_S)
        exited = time.perf_counter() - start
    if proc.returncode != 0 or not stego.exists():
        raise SystemExit(f"subtone encode failed ({proc.returncode}):\n{log.read_text()[-2000:]}")
    stego.unlink()
    return {"seconds": written if written is not None else exited, "exit_seconds": exited}


def cli_startup(env: dict[str, str]) -> float:
    """Seconds for ``subtone encode --help``: the interpreter's start and the CLI's imports, which
    every CLI encode pays and the open app does not (a lower bound: encode imports more)."""
    start = time.perf_counter()
    subprocess.run([SUBTONE, "encode", "--help"], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


# The app ---------------------------------------------------------------------------------


class Answers(Dialogs):
    """File dialogs answered in advance, in order (the person's choices)."""

    def __init__(self) -> None:
        self.files: list[Path] = []

    def open_file(self, parent: QWidget, title: str, start: Path, filters: str) -> Path | None:
        return self.files.pop(0) if self.files else None


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Run the event loop (as ``app.exec()`` does) until ``condition`` holds."""
    if condition():
        return
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: loop.quit() if condition() else None)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    timer.start()
    deadline.start(round(timeout_s * 1000))
    loop.exec()
    timer.stop()
    if not condition():
        raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")


def widget(window: MainWindow, cls: type[W], name: str) -> W:
    found = window.findChild(cls, name)
    assert found is not None, f"no {cls.__name__} named {name}"
    return found


def click(window: MainWindow, name: str) -> None:
    button = widget(window, QPushButton, name)
    assert button.isVisible() and button.isEnabled(), f"{name} cannot be clicked"
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)


def type_into(window: MainWindow, name: str, text: str) -> None:
    edit = widget(window, QLineEdit, name)
    edit.clear()
    QTest.keyClicks(edit, text)


def open_app(work: Path, env: dict[str, str]) -> tuple[MainWindow, Answers]:
    """The window on the stack, with the settings ``standalone up`` wrote for clients."""
    root = work / "app"
    ctx = AppContext(
        data_dir=root / "data",
        state_dir=root / "state",
        config_path=Path(env["SUBTONE_CLIENT_CONFIG"]),
        environ={},
        keyring=None,
    )
    answers = Answers()
    window = MainWindow(ctx, dialogs=answers)
    window.show()
    wait_until(lambda: window.connection.status is not ConnectionStatus.UNKNOWN, 60, "the server")
    if window.connection.status is not ConnectionStatus.ONLINE:
        raise SystemExit(f"the app cannot reach the stack: {window.connection.message}")
    return window, answers


def app_encode(window: MainWindow, answers: Answers, cover: Path, secret: Path) -> dict[str, float]:
    """One encode through the window: seconds from the click to the stego file written."""
    view = window.encode_view
    window.show_screen("encode")
    answers.files += [cover, secret]
    click(window, "encode.cover.browse")
    click(window, "encode.secret.browse")
    type_into(window, "encode.passphrase.first", PASSPHRASE)
    type_into(window, "encode.passphrase.confirm", PASSPHRASE)
    start_button = widget(window, QPushButton, "encode.start")
    wait_until(start_button.isEnabled, 600, "Encode to be enabled (the secret measured)")

    ended: dict[str, object] = {}

    def changed(task: Task) -> None:
        if "at" not in ended and task.id == view.follower.task_id and task.status.finished:
            ended["at"] = time.perf_counter()
            ended["task"] = task

    window.manager.task_changed.connect(changed)
    window.manager.task_failed.connect(
        lambda task_id, code, message: ended.setdefault("error", f"{code}: {message}")
    )
    try:
        start = time.perf_counter()
        click(window, "encode.start")
        wait_until(lambda: "at" in ended or "error" in ended, LIMIT_S, "the encode")
    finally:
        window.manager.task_changed.disconnect(changed)
    task = ended.get("task")
    if not isinstance(task, Task) or task.status is not TaskStatus.SUCCEEDED:
        raise SystemExit(f"the app's encode failed: {ended.get('error') or task}")
    at = ended["at"]
    assert isinstance(at, float)
    seconds = at - start
    assert task.output is not None and task.output.stat().st_size == cover.stat().st_size
    # Let the window finish what follows an encode (the difference view), then forget the
    # task and its output, so that the next run starts as this one did.
    wait_until(lambda: window.workers.active == 0, 600, "the window's after-encode work")
    window.manager.remove(task.id)
    return {"seconds": seconds}


# The run -----------------------------------------------------------------------------------


def py_spy(path: Path | None) -> subprocess.Popen[bytes] | None:
    """py-spy recording this process (every thread) into ``path`` until stopped."""
    if path is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [spy, "record", "--pid", str(os.getpid()), "--format", "speedscope", "--rate", "200",
         "--threads", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_py_spy(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(2)  # SIGINT: py-spy writes its profile and exits
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    times = [r["seconds"] for r in rows]
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cover-mb", type=float, default=100)
    parser.add_argument("--secret-kb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--py-spy", type=Path, default=None, metavar="FILE")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    cli_rows: list[dict[str, float]] = []
    app_rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="subtone-app-vs-cli-") as tmp:
        work = Path(tmp)
        cover = make_cover(work / "cover.wav", args.cover_mb, seed=7)
        secret = work / "secret.bin"
        secret.write_bytes(secrets.token_bytes(args.secret_kb * 1000))
        with stack(work) as env:
            window, answers = open_app(work, env)
            try:
                for n in range(1, args.runs + 1):
                    row = cli_encode(env, cover, secret, work)
                    row["startup_seconds"] = cli_startup(env)
                    cli_rows.append(row)
                    print(f"run {n}: CLI {row['seconds']:.2f} s (exit {row['exit_seconds']:.2f}"
                          f" s; start-up {row['startup_seconds']:.2f} s)", flush=True)  # fmt: skip
                    spy = py_spy(args.py_spy.with_suffix(f".{n}.json") if args.py_spy else None)
                    try:
                        app_rows.append(app_encode(window, answers, cover, secret))
                    finally:
                        stop_py_spy(spy)
                    print(f"run {n}: app {app_rows[-1]['seconds']:.2f} s", flush=True)
            finally:
                window.shutdown()
                window.close()
                app.processEvents()
    cli, ours = summary(cli_rows), summary(app_rows)
    ratio = ours["median"] / cli["median"]
    startup = statistics.median(r["startup_seconds"] for r in cli_rows)
    strict = ours["median"] / (cli["median"] - startup)
    load = os.getloadavg()
    result = {
        "date": dt.date.today().isoformat(),
        "cores": os.cpu_count(),
        "cover_mb": args.cover_mb,
        "cover_bytes": round(args.cover_mb * MB),
        "secret_kb": args.secret_kb,
        "runs": args.runs,
        "cli": {"rows": cli_rows, **cli},
        "app": {"rows": app_rows, **ours},
        "cli_startup_median": startup,
        "ratio": ratio,
        "ratio_without_cli_startup": strict,
        "target": TARGET_RATIO,
        "load_average": load,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "app_vs_cli.json").write_text(json.dumps(result, indent=2))
    print(
        f"\n{args.cover_mb:g} MB cover, {args.secret_kb} KB secret, {args.runs} runs each, "
        f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n"
        f"CLI: median {cli['median']:.2f} s (min {cli['min']:.2f}, max {cli['max']:.2f}); "
        f"its start-up (subtone encode --help) {startup:.2f} s\n"
        f"app: median {ours['median']:.2f} s (min {ours['min']:.2f}, max {ours['max']:.2f})\n"
        f"app / CLI = {ratio:.2f} (target ≤ {TARGET_RATIO}); "
        f"app / (CLI − start-up) = {strict:.2f}"
    )


if __name__ == "__main__":
    main()
