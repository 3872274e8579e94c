"""``subtone encode --mode robust`` and ``subtone decode`` as a person runs them, on the real
standalone stack: the message survives a channel between them (a resample to 48 kHz and a
gain change, saved as FLAC), a wrong passphrase is ``no_payload``, a message the channel
destroyed is ``channel_damaged``, and a secret too large is refused before anything is sent."""

from __future__ import annotations

import json
from math import gcd
from pathlib import Path

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from subtone.stego import wav
from tests.e2e.test_cli import Cli, ok, refused

pytestmark = pytest.mark.integration

SECRET = b"Meet at the old bridge at dawn. Bring the map. -- R"


def cover(path: Path, seconds: float = 30.0) -> Path:
    wav.generate_cover(path, seconds, rate=44_100, channels=2, bits=16, seed=5)
    return path


@pytest.fixture(scope="module")
def encoded(stack, tmp_path_factory) -> tuple[Cli, Path, Path]:
    """A robust stego file made by the CLI through the stack: (cli, cover, stego)."""
    home = tmp_path_factory.mktemp("robust")
    cli = Cli(stack, home / "home")
    carrier = cover(home / "walk.wav")
    secret = home / "note.txt"
    secret.write_bytes(SECRET)
    stego = home / "walk-marked.wav"
    out = ok(cli("encode", carrier, secret, "-o", stego, "--mode", "robust",
                 "--passphrase-file", cli.passphrase_file))  # fmt: skip
    assert "robust mode" in out and f"Wrote {stego}" in out
    return cli, carrier, stego


def decode(cli: Cli, stego: Path, out: Path, *args: str):
    out.mkdir()
    return cli("decode", stego, "-o", out, "--passphrase-file", cli.passphrase_file, *args)


def test_a_robust_round_trip_keeps_the_cover_format(encoded, tmp_path):
    cli, carrier, stego = encoded
    assert stego.stat().st_size == carrier.stat().st_size
    with carrier.open("rb") as a, stego.open("rb") as b:
        (info, prefix), (info2, prefix2) = wav.read_header(a), wav.read_header(b)
    assert (info, prefix) == (info2, prefix2)
    clean, _ = soundfile.read(carrier)
    marked, _ = soundfile.read(stego)
    snr = 10 * np.log10(np.sum(clean**2) / np.sum((marked - clean) ** 2))
    assert snr > 28

    out = decode(cli, stego, tmp_path / "out")  # the mode is found
    assert "robust mode" in ok(out)
    assert (tmp_path / "out" / "note.txt").read_bytes() == SECRET
    listing = ok(cli("jobs"))
    assert "robust.embed" in listing and "robust.extract" in listing


def test_the_message_survives_a_resample_and_a_gain_change(encoded, tmp_path):
    cli, _, stego = encoded
    x, rate = soundfile.read(stego)
    g = gcd(rate, 48_000)
    y = resample_poly(x, 48_000 // g, rate // g, axis=0) * 10 ** (-4.5 / 20)  # -4.5 dB
    sent = tmp_path / "forwarded.flac"
    soundfile.write(sent, y, 48_000, subtype="PCM_16")

    out = decode(cli, sent, tmp_path / "out", "--mode", "robust")
    ok(out)
    assert (tmp_path / "out" / "note.txt").read_bytes() == SECRET


def test_a_wrong_passphrase_is_no_payload(encoded, tmp_path):
    cli, _, stego = encoded
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = cli("decode", stego, "-o", out_dir, "--passphrase-file", wrong, "--mode", "robust")
    refused(result, "no_payload")
    assert "passphrase is wrong" in result.stderr
    assert list(out_dir.iterdir()) == []


def test_a_message_the_channel_destroyed_is_channel_damaged(encoded, tmp_path):
    cli, _, stego = encoded
    x, rate = soundfile.read(stego, dtype="int16")
    n = len(x)
    # Its start (the pilots the client checks, the header) survives; the payload does not.
    noise = np.random.default_rng(9).normal(0, 3000, (int(0.8 * n) - int(0.4 * n), x.shape[1]))
    x[int(0.4 * n) : int(0.8 * n)] = noise.astype(np.int16)
    broken = tmp_path / "broken.wav"
    soundfile.write(broken, x, rate, subtype="PCM_16")

    result = decode(cli, broken, tmp_path / "out")
    refused(result, "channel_damaged")
    assert "changed too much" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_a_secret_too_large_is_refused_before_anything_is_sent(stack, tmp_path):
    cli = Cli(stack, tmp_path / "home")
    carrier = cover(tmp_path / "short.wav", seconds=20.0)  # holds 230 bytes: less than 304
    secret = tmp_path / "note.txt"
    secret.write_bytes(SECRET)
    result = cli("--stats", "encode", carrier, secret, "-o", tmp_path / "x.wav",
                 "--mode", "robust", "--passphrase-file", cli.passphrase_file)  # fmt: skip
    out = refused(result, "capacity_exceeded")
    assert "robust mode" in out
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    assert stats["sent_bytes"] == 0  # not even a request
    assert not (tmp_path / "x.wav").exists()
