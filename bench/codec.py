"""Codec benchmark: Subtone (in-process and through Triton) side by side with steghide.

    .venv/bin/python bench/codec.py [--sizes-mb 100 500] [--secrets-kb 23 1024]
    .venv/bin/python bench/codec.py --kernel-only [--sizes-mb 100] [--plane-secrets-kb 1024 5000]

First, the kernel alone on the plane protocol (what the server runs): the cover's LSB plane in
memory, ``embed_plane`` / ``extract_plane`` with the in-process engine on ONE core
(``NUMBA_NUM_THREADS=1``, one window batch at a time) and through Triton (several batches in
flight, many windows per request), in MB/s of 16-bit cover, best of ``--repeat``: wall clock,
and for the in-process engine also per CPU second (``*_cpu``: what one free core would do, on a
shared machine where wall clock includes waiting for a core).

For each generated 16-bit stereo cover and each random secret it measures, every operation in
its own process (so peak RSS is that operation's alone): embed and extract MB/s (of cover),
peak RSS, the fraction of samples changed and the SNR of stego vs cover; then the same for
Debian's ``steghide embed``/``extract`` under a time and memory limit ("did not finish" when it
runs past them). Prints a Markdown table and writes ``bench/out/codec.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subtone.stego import codec, wav  # noqa: E402
from subtone.stego.engine import FlipMap, Flips, WindowEngine  # noqa: E402
from subtone.stego.kernel import WINDOW_SAMPLES  # noqa: E402

OUT = ROOT / "bench" / "out"
MB = 1_000_000
RATE = 44_100
CHANNELS = 2
BYTES_PER_FRAME = 4
STEGHIDE_TIME_LIMIT_SECONDS = 600
STEGHIDE_MEMORY_LIMIT_BYTES = 8 << 30
PASSPHRASE = "correct horse battery staple"


def k_pos() -> bytes:
    return hashlib.sha256(PASSPHRASE.encode()).digest()


# One operation, run in a child process ----------------------------------------------------


def op_main(argv: list[str]) -> None:
    mode, engine_name, src, dst, secret, url = argv
    if engine_name == "triton":
        from server.integrations.triton import TritonEngine

        engine: WindowEngine = TritonEngine(url)
    else:
        from subtone.stego.engine import InProcessEngine

        engine = InProcessEngine()
    start = time.perf_counter()
    if mode == "embed":
        result = codec.embed_file(
            src, dst, k_pos=k_pos(), payload=Path(secret).read_bytes(), engine=engine
        )
        changed = result.change_rate
    else:
        data = codec.extract_file(src, k_pos=k_pos(), engine=engine)
        assert data == Path(secret).read_bytes(), "extracted payload differs"
        changed = 0.0
    print(json.dumps({"seconds": time.perf_counter() - start, "change_rate": changed}))


def plane_main(argv: list[str]) -> None:
    """The plane protocol alone: best-of-``repeat`` seconds for embed and extract."""
    import io

    engine_name, src, secret_path, url, repeat = argv
    cover = Path(src)
    with cover.open("rb") as f:
        info, _ = wav.read_header(f)
        start = time.perf_counter()
        plane = b"".join(p.tobytes() for p in codec.lsb_plane(f, info))
        plane_s = time.perf_counter() - start
    payload = Path(secret_path).read_bytes()
    if engine_name == "triton":
        from server.integrations.triton import TritonEngine

        engine: WindowEngine = TritonEngine(url)
        options = {"concurrency": 4, "windows_per_call": 16}
    else:
        from subtone.stego.engine import InProcessEngine
        from subtone.stego.kernel import warm_up

        warm_up()
        engine = InProcessEngine()
        options = {"concurrency": 1, "windows_per_call": 16}
    flips: dict[int, Flips] = {}
    embed_s = extract_s = embed_cpu = extract_cpu = math.inf
    k = 0
    for _ in range(int(repeat)):
        flips.clear()
        start, cpu = time.perf_counter(), time.process_time()
        result = codec.embed_plane(
            io.BytesIO(plane), samples=info.samples, k_pos=k_pos(), payload=payload,
            engine=engine, on_window_flips=flips.__setitem__, **options,
        )  # fmt: skip
        embed_s = min(embed_s, time.perf_counter() - start)
        embed_cpu = min(embed_cpu, time.process_time() - cpu)
        k = result.k
    # The stego plane: each flip toggles its sample's LSB.
    stego = np.frombuffer(plane, np.uint8).copy()
    window_bytes = WINDOW_SAMPLES // 8
    for index, window_flips in flips.items():
        if isinstance(window_flips, FlipMap):  # a dense window's flips, as Triton answers them
            at = index * window_bytes
            stego[at : at + window_flips.bits.size] ^= window_flips.bits
            continue
        where = window_flips
        np.bitwise_xor.at(
            stego, index * window_bytes + (where >> 3), (1 << (where & 7)).astype(np.uint8)
        )
    for _ in range(int(repeat)):
        start, cpu = time.perf_counter(), time.process_time()
        data = codec.extract_plane(
            io.BytesIO(stego.tobytes()), samples=info.samples, k_pos=k_pos(), engine=engine,
            **options,
        )  # fmt: skip
        extract_s = min(extract_s, time.perf_counter() - start)
        extract_cpu = min(extract_cpu, time.process_time() - cpu)
        assert data == payload, "extracted payload differs"
    engine.close()
    times = {"embed_s": embed_s, "extract_s": extract_s, "plane_s": plane_s, "k": k}
    if engine_name != "triton":  # this process's CPU seconds (all threads): the kernel's cost
        times |= {"embed_cpu_s": embed_cpu, "extract_cpu_s": extract_cpu}
    print(json.dumps(times))


def plane_rows(cover: Path, secret: Path, url: str, engines: list[str], repeat: int):
    size = cover.stat().st_size
    rows = []
    for engine in engines:
        env = os.environ | {"NUMBA_NUM_THREADS": "1"}
        argv = [sys.executable, __file__, "--plane", engine, str(cover), str(secret), url]
        out = subprocess.run(
            [*argv, str(repeat)], env=env, capture_output=True, text=True, check=False
        )
        if out.returncode:
            raise RuntimeError(out.stderr[-2000:])
        got = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append({
            "path": f"plane kernel ({'in-process, 1 core' if engine == 'inprocess' else engine})",
            "k": got["k"],
            "embed_MBps": size / MB / got["embed_s"],
            "extract_MBps": size / MB / got["extract_s"],
            "lsb_plane_MBps": size / MB / got["plane_s"],
        } | ({
            "embed_MBps_cpu": size / MB / got["embed_cpu_s"],
            "extract_MBps_cpu": size / MB / got["extract_cpu_s"],
        } if "embed_cpu_s" in got else {}))  # fmt: skip
    return rows


def run_child(
    argv: list[str], *, limit_seconds: float | None = None, limit_bytes: int | None = None
):
    """Run ``argv``; return (seconds, peak RSS bytes, stdout) or None if it did not finish."""

    def limits() -> None:
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limits)
    deadline = None if limit_seconds is None else start + limit_seconds
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            os.wait4(proc.pid, 0)
            return None
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        if limit_bytes or limit_seconds:
            print(f"  (did not finish: {err.strip()[-300:]})", file=sys.stderr)
            return None
        raise RuntimeError(f"{argv[:4]} failed: {err[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, out


# Measurements ------------------------------------------------------------------------------


def snr_db(cover: Path, stego: Path) -> float:
    signal = noise = 0.0
    with cover.open("rb") as a, stego.open("rb") as b:
        info_a, _ = wav.read_header(a)
        info_b, _ = wav.read_header(b)
        for x, y in zip(
            wav.read_windows(a, info_a, WINDOW_SAMPLES),
            wav.read_windows(b, info_b, WINDOW_SAMPLES),
            strict=True,
        ):
            x64 = x.astype(np.float64)
            signal += float(np.dot(x64, x64))
            d = (y.astype(np.int64) - x).astype(np.float64)
            noise += float(np.dot(d, d))
    return math.inf if noise == 0 else 10 * math.log10(signal / noise)


def fraction_changed(cover: Path, stego: Path) -> float:
    changed = total = 0
    with cover.open("rb") as a, stego.open("rb") as b:
        ia, _ = wav.read_header(a)
        ib, _ = wav.read_header(b)
        for x, y in zip(
            wav.read_windows(a, ia, WINDOW_SAMPLES),
            wav.read_windows(b, ib, WINDOW_SAMPLES),
            strict=True,
        ):
            changed += int(np.count_nonzero(x != y))
            total += x.size
    return changed / total


def subtone(engine: str, cover: Path, secret: Path, work: Path, url: str) -> dict[str, object]:
    size = cover.stat().st_size
    stego = work / f"stego-{engine}.wav"
    me = [sys.executable, __file__, "--op"]
    emb = run_child([*me, "embed", engine, str(cover), str(stego), str(secret), url])
    ext = run_child([*me, "extract", engine, str(stego), "-", str(secret), url])
    assert emb and ext
    row = {
        "tool": f"subtone ({engine})",
        "embed_s": emb[0],
        "embed_MBps": size / MB / json.loads(emb[2])["seconds"],
        "embed_rss_MB": emb[1] / MB,
        "extract_s": ext[0],
        "extract_MBps": size / MB / json.loads(ext[2])["seconds"],
        "extract_rss_MB": ext[1] / MB,
        "changed": fraction_changed(cover, stego),
        "snr_db": snr_db(cover, stego),
    }
    stego.unlink()
    return row


def steghide(cover: Path, secret: Path, work: Path) -> dict[str, object]:
    size = cover.stat().st_size
    stego = work / "stego-steghide.wav"
    out = work / "steghide-out.bin"
    row: dict[str, object] = {"tool": "steghide"}
    emb = run_child(
        ["steghide", "embed", "-cf", str(cover), "-ef", str(secret), "-sf", str(stego),
         "-p", PASSPHRASE, "-f", "-q"],
        limit_seconds=STEGHIDE_TIME_LIMIT_SECONDS, limit_bytes=STEGHIDE_MEMORY_LIMIT_BYTES,
    )  # fmt: skip
    if emb is None:
        row["embed_s"] = "did not finish"
        return row
    row.update(embed_s=emb[0], embed_MBps=size / MB / emb[0], embed_rss_MB=emb[1] / MB)
    ext = run_child(
        ["steghide", "extract", "-sf", str(stego), "-xf", str(out), "-p", PASSPHRASE, "-f", "-q"],
        limit_seconds=STEGHIDE_TIME_LIMIT_SECONDS, limit_bytes=STEGHIDE_MEMORY_LIMIT_BYTES,
    )  # fmt: skip
    if ext is None:
        row["extract_s"] = "did not finish"
    else:
        assert out.read_bytes() == secret.read_bytes(), "steghide extracted something else"
        row.update(extract_s=ext[0], extract_MBps=size / MB / ext[0], extract_rss_MB=ext[1] / MB)
    row.update(changed=fraction_changed(cover, stego), snr_db=snr_db(cover, stego))
    stego.unlink()
    out.unlink(missing_ok=True)
    return row


def fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1 else f"{value:,.1f}"
    return str(value if value is not None else "—")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--secrets-kb", type=int, nargs="+", default=[23, 1024])
    parser.add_argument("--no-steghide", action="store_true")
    parser.add_argument("--no-triton", action="store_true")
    parser.add_argument("--work", type=Path, default=OUT / "work")
    parser.add_argument("--plane-secrets-kb", type=int, nargs="+", default=[1024, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kernel-only", action="store_true")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, object]] = []
    plane: list[dict[str, object]] = []
    triton = None
    url = ""
    if not args.no_triton:
        from server.standalone.tritonserver import TritonProcess

        triton = TritonProcess().start()
        url = triton.grpc_url
    try:
        for size_mb in args.sizes_mb:
            measure_cover(args, size_mb, url, plane, rows)
    finally:
        if triton is not None:
            triton.stop()
    report_plane(plane)
    if not args.kernel_only:
        report_files(rows)


def emit(rows: list[dict[str, object]], row: dict[str, object]) -> None:
    rows.append(row)
    print(json.dumps(row), flush=True)


def secret_file(work: Path, kb: int) -> tuple[Path, int]:
    secret = work / f"secret-{kb}KB.bin"
    secret.write_bytes(np.random.default_rng(kb).bytes(kb * 1000))
    return secret, kb


Rows = list[dict[str, object]]


def measure_cover(args: argparse.Namespace, size_mb: int, url: str, plane: Rows,
                  rows: Rows) -> None:  # fmt: skip
    """The plane rows, then (unless ``--kernel-only``) the whole-file rows, for one cover size."""
    cover = args.work / f"cover-{size_mb}MB.wav"
    frames = size_mb * MB // BYTES_PER_FRAME
    if not cover.exists():
        wav.generate_cover(cover, frames / RATE, rate=RATE, channels=CHANNELS, bits=16)
    engines = ["inprocess"] + ([] if args.no_triton else ["triton"])
    cover_mb = round(cover.stat().st_size / MB)
    for secret, kb in (secret_file(args.work, kb) for kb in args.plane_secrets_kb):
        label = {"cover_MB": cover_mb, "secret_KB": kb}
        for row in plane_rows(cover, secret, url, engines, args.repeat):
            emit(plane, label | row)
    if args.kernel_only:
        return
    for secret, kb in (secret_file(args.work, kb) for kb in args.secrets_kb):
        label = {"cover_MB": cover_mb, "secret_KB": kb}
        for engine in engines:
            emit(rows, label | subtone(engine, cover, secret, args.work, url))
        if not args.no_steghide and shutil.which("steghide"):
            emit(rows, label | steghide(cover, secret, args.work))


def print_table(columns: list[str], rows: list[dict[str, object]]) -> None:
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")


def report_plane(plane: list[dict[str, object]]) -> None:
    print_table(["cover_MB", "secret_KB", "path", "k", "embed_MBps", "extract_MBps",
                 "embed_MBps_cpu", "extract_MBps_cpu", "lsb_plane_MBps"], plane)  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "codec-plane.json").write_text(json.dumps(plane, indent=2))


def report_files(rows: list[dict[str, object]]) -> None:
    print_table(["cover_MB", "secret_KB", "tool", "embed_MBps", "embed_rss_MB", "extract_MBps",
                 "extract_rss_MB", "changed", "snr_db", "embed_s", "extract_s"], rows)  # fmt: skip
    # Ratios: steghide's time over Subtone's in-process time for the same cover and secret.
    for row in rows:
        if row["tool"] != "steghide" or not isinstance(row.get("embed_s"), float):
            continue
        ours = next(
            r for r in rows
            if r["tool"] == "subtone (inprocess)"
            and (r["cover_MB"], r["secret_KB"]) == (row["cover_MB"], row["secret_KB"])
        )  # fmt: skip
        print(
            f"steghide/subtone embed time, {row['cover_MB']} MB cover, {row['secret_KB']} KB: "
            f"{row['embed_s'] / ours['embed_s']:.1f}x; peak RSS "  # type: ignore[operator]
            f"{row['embed_rss_MB'] / ours['embed_rss_MB']:.1f}x"  # type: ignore[operator]
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "codec.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--op":
        op_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--plane":
        plane_main(sys.argv[2:])
    else:
        main()
