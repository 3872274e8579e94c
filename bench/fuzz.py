"""Fuzz the parsers that read hostile bytes, for a bounded time per target.

    .venv/bin/python bench/fuzz.py [--seconds 120] [--engine atheris|hypothesis|both]
                                   [--targets wav frame sealed range]

The targets are in ``tests/fuzz/targets.py`` (the WAV parser, the secret's frame parser, the
sealed payload's open path, the local store's Range parser). ``atheris`` (libFuzzer,
coverage-guided; each target in its own child process, seeded with ``tests/fuzz/corpus/<target>``)
and ``hypothesis`` (random ``binary()`` inputs, shrunk on failure) each run every target for
``--seconds``. A crasher is any input that raises something other than the project's own
``SubtoneError``, breaks a parser's promise, or runs past ``--input-timeout``; each distinct
one (by exception type and place) is written to ``bench/out/fuzz/<target>/crashers/``. Copy
the ones you fix into ``tests/fuzz/corpus/<target>/`` (with their expected outcome in its
``EXPECTED.json``) so the tests replay them.

Prints a table of execs, execs/s, corpus size and crashers per target and engine, and writes
``bench/out/fuzz/results.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out" / "fuzz"
SEEDS = ROOT / "tests" / "fuzz" / "corpus"
TARGET_NAMES = ("wav", "frame", "sealed", "range", "patch")
DEFAULT_SECONDS = 120
DEFAULT_INPUT_TIMEOUT_SECONDS = 10
RSS_LIMIT_MB = 2048
MAX_LEN = 1 << 16
STATS_EVERY = 500
HYPOTHESIS_BATCH = 2000
HYPOTHESIS_MAX_SIZE = 4096
EXECUTED = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")


def _signature(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    place = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    return f"{type(error).__name__} at {place}"


def _save(folder: Path, data: bytes, signature: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(signature + "\n")
    return path


# --- atheris: one child process per target ------------------------------------------------


def atheris_child(target_name: str, work: Path) -> None:
    """Runs inside the child: instrument our packages, then hand the target to libFuzzer."""
    import atheris

    with atheris.instrument_imports(include=["server", "desktop", "tests"]):
        from tests.fuzz.targets import TARGETS

    target = TARGETS[target_name]
    crashers = work / "crashers"
    seen: set[str] = {p.read_text().strip() for p in crashers.glob("*.txt")}
    stats = work / "stats.json"
    count = 0
    started = time.monotonic()

    def one_input(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            target(data)
        except Exception as e:  # a crasher: keep it, and keep fuzzing
            signature = _signature(e)
            if signature not in seen:
                seen.add(signature)
                _save(crashers, data, signature)
        if count % STATS_EVERY == 0:
            elapsed = time.monotonic() - started
            stats.write_text(json.dumps({"execs": count, "seconds": elapsed}))

    argv = [sys.argv[0], *sys.argv[sys.argv.index("--") + 1 :]]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def run_atheris(target: str, seconds: float, input_timeout: int) -> dict[str, object]:
    work = OUT / target / "atheris"
    corpus = work / "corpus"
    crashers = work / "crashers"
    for folder in (corpus, crashers):
        folder.mkdir(parents=True, exist_ok=True)
    (work / "stats.json").unlink(missing_ok=True)
    seeds = [str(SEEDS / target)] if (SEEDS / target).is_dir() else []
    execs = 0
    restarts = 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while (left := deadline - time.monotonic()) > 1:
        command = [
            sys.executable, __file__, "--child", target, "--work", str(work), "--",
            f"-max_total_time={int(left)}", f"-timeout={input_timeout}",
            f"-rss_limit_mb={RSS_LIMIT_MB}", f"-max_len={MAX_LEN}", "-print_final_stats=1",
            f"-artifact_prefix={crashers}/", str(corpus), *seeds,
        ]  # fmt: skip
        run = subprocess.run(command, capture_output=True, check=False, cwd=ROOT)
        output = run.stdout + run.stderr
        with (work / "libfuzzer.log").open("ab") as log:
            log.write(output)
        final = EXECUTED.search(output)
        stats = work / "stats.json"
        if final is not None:  # libFuzzer's own count, printed when it stops
            execs += int(final.group(1))
        elif stats.exists():  # killed: our own count, written every STATS_EVERY inputs
            execs += int(json.loads(stats.read_text())["execs"])
        stats.unlink(missing_ok=True)
        restarts += 1  # libFuzzer stops on a timeout or out-of-memory input: start again
    elapsed = time.monotonic() - started
    found = sorted(p.name for p in crashers.iterdir() if not p.name.endswith(".txt"))
    return {
        "engine": "atheris",
        "target": target,
        "seconds": round(elapsed, 1),
        "execs": execs,
        "execs_per_s": round(execs / elapsed) if elapsed else 0,
        "corpus": sum(1 for _ in corpus.iterdir()),
        "crashers": found,
        "runs": restarts,
    }


# --- hypothesis: in this process -----------------------------------------------------------


def run_hypothesis(target_name: str, seconds: float) -> dict[str, object]:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from tests.fuzz.targets import TARGETS

    target = TARGETS[target_name]
    crashers = OUT / target_name / "hypothesis" / "crashers"
    seen: set[str] = set()
    found: list[str] = []
    execs = 0
    last: list[bytes] = [b""]

    @settings(
        max_examples=HYPOTHESIS_BATCH,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(st.binary(max_size=HYPOTHESIS_MAX_SIZE))
    def check(data: bytes) -> None:
        nonlocal execs
        execs += 1
        last[0] = data
        target(data)

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            check()
        except Exception as e:
            signature = _signature(e)
            if signature not in seen:
                seen.add(signature)
                found.append(_save(crashers, last[0], signature).name)
    elapsed = time.monotonic() - started
    return {
        "engine": "hypothesis",
        "target": target_name,
        "seconds": round(elapsed, 1),
        "execs": execs,
        "execs_per_s": round(execs / elapsed) if elapsed else 0,
        "corpus": 0,
        "crashers": found,
        "runs": 1,
    }


def _table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| engine | target | seconds | execs | execs/s | corpus | crashers |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        crashers = r["crashers"]
        assert isinstance(crashers, list)
        shown = f"{len(crashers)}" + (f" ({', '.join(crashers)})" if crashers else "")
        lines.append(
            f"| {r['engine']} | {r['target']} | {r['seconds']} | {r['execs']} | "
            f"{r['execs_per_s']} | {r['corpus']} | {shown} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="per target")
    parser.add_argument("--engine", choices=["atheris", "hypothesis", "both"], default="both")
    parser.add_argument("--targets", nargs="+", choices=TARGET_NAMES, default=list(TARGET_NAMES))
    parser.add_argument("--input-timeout", type=int, default=DEFAULT_INPUT_TIMEOUT_SECONDS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()
    if args.child:
        atheris_child(args.child, args.work)
        return 0
    engines = ["atheris", "hypothesis"] if args.engine == "both" else [args.engine]
    rows = []
    for engine in engines:
        for target in args.targets:
            print(f"fuzz: {engine} on {target} for {args.seconds:.0f} s", flush=True)
            if engine == "atheris":
                row = run_atheris(target, args.seconds, args.input_timeout)
            else:
                row = run_hypothesis(target, args.seconds)
            rows.append(row)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(rows, indent=2))
    print(_table(rows))
    total = sum(len(cast(list[str], r["crashers"])) for r in rows)
    print(f"crashers: {total} (in {OUT}/<target>/<engine>/crashers)")
    return 1 if total else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
