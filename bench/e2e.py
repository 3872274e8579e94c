"""End to end: the ``subtone`` CLI on the standalone stack, and ``steghide``, on the same files.

    .venv/bin/python bench/e2e.py [--cover-mb 100 500] [--secret-kb 23 1024 10240]
                                  [--steghide-limit 600] [--no-steghide]

Everything runs as a user would run it, one process per operation: ``subtone standalone up``
(on free ports, a data folder, a Redis key prefix and a RabbitMQ vhost of its own), then for
each cover and secret ``subtone encode`` and ``subtone decode`` (with the machine's default
key-derivation cost), a decode with a wrong passphrase, and Debian's ``steghide embed`` and
``extract`` on the same cover and secret under ``--steghide-limit`` seconds.

Measured per operation: wall time (process start to exit), the client's peak RSS (``wait4``),
the bytes the client sent and received over HTTP (``subtone --stats``), and the peak RSS of
the worker and of Triton (``/proc/PID/status`` VmHWM, reset through ``clear_refs`` before each
operation). Covers are generated 16-bit stereo WAVs; secrets are random bytes (they do not
compress). Prints a Markdown table with the ratios against steghide and writes
``bench/out/e2e.json``. Everything it starts it stops.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.standalone.private import free_ports, rabbit_vhost  # noqa: E402
from subtone.stego import wav  # noqa: E402

OUT = ROOT / "bench" / "out"
VENV_BIN = Path(sys.executable).parent
SUBTONE = str(VENV_BIN / "subtone")
MB = 1_000_000
RATE, CHANNELS, BYTES_PER_FRAME = 44_100, 2, 4
PASSPHRASE = "benchmarks are not secrets"
STEGHIDE_PASSPHRASE = "benchmarks are not secrets"


@contextlib.contextmanager
def stack(work: Path) -> Iterator[dict[str, str]]:
    """``subtone standalone up`` in a folder of its own; the environment its clients use."""
    api, store, grpc, http, metrics, worker_metrics = free_ports(6)
    with rabbit_vhost("subtone-e2e") as broker_url:
        env = {
            **os.environ,
            "SUBTONE_DATA_DIR": str(work / "stack"),
            "SUBTONE_REDIS_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}",
            "SUBTONE_BROKER_URL": broker_url,
            "SUBTONE_CLIENT_CONFIG": str(work / "client.json"),
            "SUBTONE_WORKER_METRICS_PORT": str(worker_metrics),
        }
        up = [SUBTONE, "standalone", "up", "--api-port", str(api), "--store-port", str(store),
              "--triton-port", str(grpc), "--triton-http-port", str(http),
              "--triton-metrics-port", str(metrics)]  # fmt: skip
        subprocess.run(up, env=env, check=True, stdout=subprocess.DEVNULL)
        try:
            yield env
        finally:
            subprocess.run([SUBTONE, "standalone", "down"], env=env, check=False)


def server_pids(env: dict[str, str]) -> dict[str, int]:
    """The worker's and Triton's pids: processes whose environment names our data folder."""
    found: dict[str, int] = {}
    for proc in psutil.process_iter(["cmdline", "environ"]):
        environ = proc.info["environ"] or {}
        if environ.get("SUBTONE_DATA_DIR") != env["SUBTONE_DATA_DIR"]:
            continue
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "server.worker" in cmdline and "worker" not in found:
            found["worker"] = proc.pid
        elif "tritonserver" in cmdline.split(" ")[0]:
            found["triton"] = proc.pid
    return found


def tree(pid: int) -> list[int]:
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        return [pid, *(c.pid for c in proc.children(recursive=True))]
    return []


def reset_peaks(pids: dict[str, int]) -> None:
    for pid in pids.values():
        for p in tree(pid):
            with contextlib.suppress(OSError):
                Path(f"/proc/{p}/clear_refs").write_text("5")


def peak_mb(pid: int) -> float:
    """The largest VmHWM in ``pid``'s process tree (Triton's stubs are its children)."""
    peak = 0.0
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
    return peak


def run_measured(command: list[str], env: dict[str, str] | None, limit: float) -> dict[str, object]:
    """Run ``command``: its wall time, exit status, own peak RSS (``wait4``), ``--stats``.

    The disk is settled first (``sync``): each operation starts with nothing of the previous
    one's (or the cover generator's) writes still being written back, as a user's files at
    rest would be."""
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = start + limit
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return {"seconds": None, "rc": None, "timeout": limit}
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    assert proc.stdout is not None and proc.stderr is not None
    chunks = [proc.stdout.read(), proc.stderr.read()]
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = b"".join(chunks).decode(errors="replace")
    row: dict[str, object] = {
        "seconds": seconds,
        "rc": proc.returncode,
        "rss_mb": usage.ru_maxrss / 1024,
        "output": text[-600:],
    }
    for line in text.splitlines():
        if line.startswith("{") and "sent_bytes" in line:
            row.update(json.loads(line))
    return row


def make_cover(path: Path, megabytes: float, seed: int) -> Path:
    seconds = megabytes * MB / (RATE * BYTES_PER_FRAME)
    wav.generate_cover(path, seconds, rate=RATE, channels=CHANNELS, bits=16, seed=seed)
    return path


def subtone_rows(env, cover: Path, secret: Path, work: Path, pids) -> dict[str, object]:
    passfile = work / "pass.txt"
    passfile.write_text(PASSPHRASE + "\n")
    wrong = work / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    stego, out = work / "stego-subtone.wav", work / "recovered"
    rows: dict[str, object] = {}
    for name, command in (
        ("encode", [SUBTONE, "--stats", "encode", str(cover), str(secret), "-o", str(stego),
                    "--passphrase-file", str(passfile), "--force"]),
        ("decode", [SUBTONE, "--stats", "decode", str(stego), "-o", str(out),
                    "--passphrase-file", str(passfile), "--force"]),
        ("wrong", [SUBTONE, "decode", str(stego), "-o", str(work / "nothing"),
                   "--passphrase-file", str(wrong)]),
    ):  # fmt: skip
        reset_peaks(pids)
        row = run_measured(command, env, 3600)
        row["worker_mb"] = peak_mb(pids["worker"]) if "worker" in pids else None
        row["triton_mb"] = peak_mb(pids["triton"]) if "triton" in pids else None
        rows[name] = row
        if name == "encode" and row["rc"] != 0 and "capacity_exceeded" in str(row["output"]):
            return {"does_not_fit": True, "encode": row}
    assert rows["encode"]["rc"] == 0, rows["encode"]["output"]
    assert rows["decode"]["rc"] == 0, rows["decode"]["output"]
    wrong = str(rows["wrong"]["output"])
    assert rows["wrong"]["rc"] != 0 and ("no_payload" in wrong or "passphrase" in wrong), wrong
    recovered = out if out.is_file() else next(p for p in out.iterdir() if p.is_file())
    assert recovered.read_bytes() == secret.read_bytes(), "decode gave something else"
    stego.unlink()
    return rows


def steghide_rows(cover: Path, secret: Path, work: Path, limit: float) -> dict[str, object]:
    stego, out = work / "stego-steghide.wav", work / "steghide-out.bin"
    embed = run_measured(
        ["steghide", "embed", "-cf", str(cover), "-ef", str(secret), "-sf", str(stego),
         "-p", STEGHIDE_PASSPHRASE, "-f", "-q"], None, limit,
    )  # fmt: skip
    rows: dict[str, object] = {"encode": embed}
    if embed.get("rc") == 0:
        extract = run_measured(
            ["steghide", "extract", "-sf", str(stego), "-xf", str(out),
             "-p", STEGHIDE_PASSPHRASE, "-f", "-q"], None, limit,
        )  # fmt: skip
        assert extract.get("rc") != 0 or out.read_bytes() == secret.read_bytes()
        rows["decode"] = extract
    with contextlib.suppress(FileNotFoundError):
        stego.unlink()
    return rows


def fmt_seconds(row: dict[str, object] | None) -> str:
    if not row:
        return "—"
    if row.get("seconds") is None:
        return f"> {row['timeout']:.0f} (did not finish)"
    return f"{row['seconds']:.2f}"


def steghide_rss(row: dict[str, object] | None) -> str:
    """steghide's peak RSS, when it finished (one stopped at the time limit has none)."""
    if not row or row.get("seconds") is None:
        return ""
    return f"{row['rss_mb']:,.0f}"


def ratio(ours: dict[str, object], theirs: dict[str, object] | None) -> str:
    if not theirs:
        return "—"
    if theirs.get("seconds") is None:
        return f"> {float(theirs['timeout']) / float(ours['seconds']):.0f}×"
    return f"{float(theirs['seconds']) / float(ours['seconds']):.1f}×"


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| cover MB | secret KB | op | subtone s | steghide s | ratio | client sent+received MB "
        "(÷ cover) | client / worker / Triton peak RSS MB | steghide RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ours, theirs = r["subtone"], r.get("steghide") or {}
        if ours.get("does_not_fit"):
            lines.append(
                f"| {r['cover_mb']} | {r['secret_kb']} | encode | does not fit "
                "(`capacity_exceeded`) | | | | | |"
            )
            continue
        for op in ("encode", "decode"):
            row = ours[op]
            moved = (row.get("sent_bytes", 0) + row.get("received_bytes", 0)) / MB
            fraction = r["cover_bytes"] / MB / moved if moved else float("nan")
            other = theirs.get(op)
            lines.append(
                f"| {r['cover_mb']} | {r['secret_kb']} | {op} | {fmt_seconds(row)} | "
                f"{fmt_seconds(other)} | {ratio(row, other)} | {moved:.2f} (1/{fraction:.0f}) | "
                f"{row['rss_mb']:.0f} / {row['worker_mb'] or 0:.0f} / {row['triton_mb'] or 0:.0f}"
                f" | {steghide_rss(other)} |"
            )
        lines.append(
            f"| {r['cover_mb']} | {r['secret_kb']} | wrong passphrase | "
            f"{fmt_seconds(ours['wrong'])} | | | | {ours['wrong']['rss_mb']:.0f} / | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cover-mb", type=float, nargs="+", default=[100, 500])
    parser.add_argument("--secret-kb", type=int, nargs="+", default=[23, 1024, 10240])
    parser.add_argument("--steghide-limit", type=float, default=600)
    parser.add_argument("--no-steghide", action="store_true")
    args = parser.parse_args()
    if not args.no_steghide and shutil.which("steghide") is None:
        sys.exit("steghide is not installed (scripts/setup.sh installs it)")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="subtone-e2e-") as tmp:
        work = Path(tmp)
        with stack(work) as env:
            pids = server_pids(env)
            for i, megabytes in enumerate(args.cover_mb):
                cover = make_cover(work / f"cover-{megabytes:g}.wav", megabytes, seed=i)
                for kb in args.secret_kb:
                    secret = work / f"secret-{kb}k.bin"
                    secret.write_bytes(secrets.token_bytes(kb * 1000))
                    result: dict[str, object] = {
                        "cover_mb": megabytes, "secret_kb": kb,
                        "cover_bytes": cover.stat().st_size,
                        "subtone": subtone_rows(env, cover, secret, work, pids),
                    }  # fmt: skip
                    if result["subtone"].get("does_not_fit"):  # type: ignore[union-attr]
                        print(f"{kb} KB does not fit a {megabytes:g} MB cover", flush=True)
                        results.append(result)
                        continue
                    if not args.no_steghide:
                        result["steghide"] = steghide_rows(cover, secret, work, args.steghide_limit)
                    results.append(result)
                    print(json.dumps(result, default=str)[:300], flush=True)
                cover.unlink()
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = dt.date.today().isoformat()
    (OUT / "e2e.json").write_text(json.dumps({"date": stamp, "results": results}, indent=2))
    print(f"\n{stamp}, {os.cpu_count()} cores\n")
    print(table(results))


if __name__ == "__main__":
    main()
