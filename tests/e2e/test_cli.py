"""``subtone`` as a person runs it, on the real standalone stack, for both storage backends:
the local folder store and S3 (a moto server process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from subtone.stego import wav

pytestmark = pytest.mark.integration

PASSPHRASE = "correct horse battery staple, twice"
CLI_TIMEOUT_SECONDS = 300


class Cli:
    """The ``subtone`` command with a config file of its own, pointed at one stack."""

    def __init__(self, stack, home: Path, token: str | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.config = home / "client.json"
        self.config.write_text(
            json.dumps(
                {
                    "server_url": stack.url,
                    "token": token or stack.token,
                    "sessions_path": str(home / "sessions.db"),
                    "download_dir": str(home / "downloads"),
                }
            )
        )
        self.passphrase_file = home / "passphrase.txt"
        self.passphrase_file.write_text(PASSPHRASE + "\n")

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUBTONE_")}
        env["SUBTONE_CLIENT_CONFIG"] = str(self.config)
        return subprocess.run(
            [sys.executable, "-m", "desktop.cli", *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
        )


def cover(path: Path, seconds: float) -> Path:
    wav.generate_cover(path, seconds, rate=44_100, channels=2, bits=16, seed=5)
    return path


def ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    return output


def refused(result: subprocess.CompletedProcess[str], code: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"[{code}]" in output or code in output, output
    assert "Traceback" not in output
    return output


def test_encode_then_decode_a_file(any_stack, tmp_path):
    cli = Cli(any_stack, tmp_path / "home")
    # 70 s of stereo: 12 MB, so S3 gets a real multipart upload of 5 MiB+ parts both ways.
    carrier = cover(tmp_path / "holiday.wav", 70.0)
    secret = tmp_path / "plans.pdf"
    secret.write_bytes(os.urandom(30_000) + b"%%EOF")
    stego = tmp_path / "out" / "holiday-stego.wav"
    stego.parent.mkdir()

    encoded = ok(
        cli("encode", carrier, secret, "-o", stego, "--passphrase-file", cli.passphrase_file)
    )
    assert f"Wrote {stego}" in encoded
    assert stego.stat().st_size == carrier.stat().st_size
    assert stego.read_bytes() != carrier.read_bytes()

    recovered = tmp_path / "recovered"
    recovered.mkdir()
    decoded = ok(cli("decode", stego, "-o", recovered, "--passphrase-file", cli.passphrase_file))
    assert (recovered / "plans.pdf").read_bytes() == secret.read_bytes()
    assert "plans.pdf" in decoded
    assert sorted(p.name for p in recovered.iterdir()) == ["plans.pdf"]  # no leftovers

    listing = ok(cli("jobs"))
    assert listing.count("succeeded") >= 2
    assert "stego.embed" in listing and "stego.extract" in listing


def test_a_recorded_secret_travels_as_opus_and_comes_back_as_audio(stack, tmp_path):
    cli = Cli(stack, tmp_path / "home")
    carrier = cover(tmp_path / "cover.wav", 20.0)
    rate, seconds, tone = 16_000, 2.0, 440.0
    t = np.arange(int(rate * seconds)) / rate
    voice = tmp_path / "voice.wav"
    soundfile.write(voice, 0.4 * np.sin(2 * np.pi * tone * t), rate, subtype="PCM_16")
    stego = tmp_path / "stego.wav"

    ok(cli("encode", carrier, voice, "-o", stego, "--passphrase-file", cli.passphrase_file))
    recovered = tmp_path / "recovered"
    recovered.mkdir()
    ok(cli("decode", stego, "-o", recovered, "--passphrase-file", cli.passphrase_file))

    (found,) = list(recovered.iterdir())
    data, got_rate = soundfile.read(found)
    assert soundfile.info(found).subtype == "OPUS"
    spectrum = np.abs(np.fft.rfft(data))
    peak = np.fft.rfftfreq(len(data), 1 / got_rate)[int(np.argmax(spectrum))]
    assert abs(peak - tone) < 5
    assert found.stat().st_size < voice.stat().st_size / 4  # compressed, not the raw WAV


def test_capacity_reads_the_header_only(tmp_path):
    carrier = cover(tmp_path / "cover.wav", 10.0)
    result = subprocess.run(
        [sys.executable, "-m", "desktop.cli", "capacity", str(carrier), "--size", "10MB"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = refused(result, "capacity_exceeded")
    assert "Max payload" in output and "does not fit" in output


def test_bad_input_gets_a_message_and_a_non_zero_exit(stack, tmp_path):
    cli = Cli(stack, tmp_path / "home")
    carrier = cover(tmp_path / "cover.wav", 5.0)
    secret = tmp_path / "note.txt"
    secret.write_text("the eagle lands at dawn")
    stego = tmp_path / "stego.wav"
    ok(cli("encode", carrier, secret, "-o", stego, "--passphrase-file", cli.passphrase_file))

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    recovered = tmp_path / "recovered"
    recovered.mkdir()
    out = cli("decode", stego, "-o", recovered, "--passphrase-file", wrong)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "no_payload" in out.stderr or "wrong_passphrase" in out.stderr, out.stderr
    assert list(recovered.iterdir()) == []

    not_wav = tmp_path / "song.wav"
    not_wav.write_bytes(b"ID3\x04" + os.urandom(4096))
    refused(cli("encode", not_wav, secret, "-o", tmp_path / "x.wav",
                "--passphrase-file", cli.passphrase_file), "not_wav")  # fmt: skip
    assert not (tmp_path / "x.wav").exists()

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2_000_000))
    refused(cli("encode", carrier, big, "-o", tmp_path / "y.wav",
                "--passphrase-file", cli.passphrase_file), "capacity_exceeded")  # fmt: skip

    stranger = Cli(stack, tmp_path / "stranger", token="st_not-a-real-token")
    refused(stranger("jobs"), "unauthorized")
    assert not (tmp_path / "y.wav").exists()
