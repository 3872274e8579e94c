"""Kill `subtone encode` in the middle of its upload; the next run sends only what is missing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from subtone.stego import wav


def part_files(root: Path) -> dict[str, tuple[int, int]]:
    """Every stored part of every open multipart upload, by its sidecar (written once the
    part is stored, whether in a file of its own or in place in the upload's data file):
    path → (inode, mtime_ns)."""
    parts = {}
    for path in (root / ".multipart").glob("*/*.json"):
        if path.stem.isdigit():
            st = path.stat()
            parts[str(path.relative_to(root))] = (st.st_ino, st.st_mtime_ns)
    return parts


def test_killed_encode_resumes_without_resending_stored_parts(stack, tmp_path):
    cover = tmp_path / "cover.wav"
    # ~423 MB: its LSB plane (what is uploaded, 1/16) spans six parts of 5 MiB, so the kill
    # after the first stored part lands with most of the upload still to go
    wav.generate_cover(cover, 2400.0, rate=44_100, channels=2, bits=16, seed=11)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(os.urandom(5000))
    config = tmp_path / "client.json"
    config.write_text(
        json.dumps(
            {
                "server_url": stack.url,
                "token": stack.token,
                "parallel_parts": 1,
                "sessions_path": str(tmp_path / "sessions.db"),
            }
        )
    )
    env = {
        **os.environ,
        "SUBTONE_CLIENT_CONFIG": str(config),
        "SUBTONE_PASSPHRASE": "resume me",
    }
    argv = [sys.executable, "-m", "desktop.cli", "encode", str(cover), str(secret),
            "-o", str(tmp_path / "stego.wav")]  # fmt: skip
    root = stack.settings.localstore_root
    before = set(part_files(root))

    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as first:
        deadline = time.monotonic() + 120
        while len(set(part_files(root)) - before) < 1:
            assert first.poll() is None, first.stdout.read().decode()
            assert time.monotonic() < deadline, "no part was stored"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
    stored = {k: v for k, v in part_files(root).items() if k not in before}
    assert stored, "the upload had stored parts before the kill"

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    output = second.stdout + second.stderr
    assert second.returncode == 0, output
    assert (tmp_path / "stego.wav").stat().st_size == cover.stat().st_size
    match = re.search(r"resumed an interrupted upload, sent (\d+) of (\d+) parts", output)
    assert match, output
    sent, total = int(match[1]), int(match[2])
    # Exactly the parts storage did not hold were sent again.
    assert sent == total - len(stored), (sent, total, sorted(stored))
    assert sent < total
