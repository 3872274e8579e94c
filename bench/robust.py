"""Robust mode through real channels: embed, re-encode/resample/gain/crop, extract, tabulate.

    python bench/robust.py [--seconds 30] [--minutes10]

``--minutes10`` also times a 10-minute cover through the client's and the server's steps.

Covers: speech (espeak-ng when installed, else formant-like synthetic speech) with a -55 dBFS
room-noise floor, and music (generated chords + kick + hi-hat). Both 44.1 kHz mono, peak -8 dBFS
(so +6 dB gain does not clip). The payload fills the cover's robust capacity.
Perceptual measure: PESQ (wide band, ``pesq`` from PyPI) for speech; for every cover the
noise-to-mask ratio (NMR) against the simple masking model in docs/robust.md.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from subtone.robust import capacity, core, embed, embedding, extract, sync
from subtone.robust._dsp import resample
from subtone.robust.core import RobustError

Audio = tuple[np.ndarray, int]
RATE = 44100
TEXT = (
    "The river was quiet when we reached the old bridge, and the light was already going. "
    "Nobody had told us the road would be closed, so we waited by the water and talked "
    "about the summer, the long drive north, and the friends we had not seen for years. "
)


def speech_cover(seconds: float) -> np.ndarray:
    out = None
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as d:
            path = f"{d}/s.wav"
            subprocess.run(
                ["espeak-ng", "-v", "en-us", "-s", "165", "-w", path, TEXT * 4], check=True
            )
            x, r = sf.read(path)
            out = resample(x, r, RATE)
    if out is None:  # formant-like fallback: pulse train through three resonances, syllables
        rng = np.random.default_rng(7)
        t = np.arange(int(seconds * RATE)) / RATE
        f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
        src = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / RATE))
        out = np.zeros_like(t)
        for f in (500, 1500, 2500):
            out += np.convolve(
                src,
                np.exp(-np.arange(200) / RATE * 300)
                * np.sin(2 * np.pi * f * np.arange(200) / RATE),
                "same",
            )
        out *= (np.sin(2 * np.pi * 4 * t) > -0.3) * (0.6 + 0.4 * rng.random())
    n = int(seconds * RATE)
    out = np.resize(out, n)
    out = out + np.random.default_rng(5).standard_normal(n) * 10 ** (-55 / 20)
    return out / np.abs(out).max() * 10 ** (-8 / 20)


def music_cover(seconds: float) -> np.ndarray:
    r = RATE
    t = np.arange(int(seconds * r)) / r
    x = np.zeros_like(t)
    chords = [[220, 277, 330], [196, 247, 294], [175, 220, 262], [165, 208, 247]]
    for i in range(int(np.ceil(len(t) / (2 * r)))):
        s = slice(i * 2 * r, (i + 1) * 2 * r)
        tt = t[s] - i * 2
        for f in chords[i % 4]:
            for h in range(1, 8):
                x[s] += np.sin(2 * np.pi * f * h * tt) / h**1.5 * np.exp(-tt * 0.7) * 0.1
    rng = np.random.default_rng(3)
    for k in range(int(len(t) / (r * 0.25))):
        st, n = int(k * 0.25 * r), int(0.12 * r)
        e = np.exp(-np.arange(n) / r * 40)
        seg = x[st : st + n]
        if k % 2 == 0:
            seg += (np.sin(2 * np.pi * 60 * np.arange(n) / r * (1 + 2 * e)) * e * 0.5)[: len(seg)]
        else:
            seg += (rng.standard_normal(n) * np.exp(-np.arange(n) / r * 60) * 0.2)[: len(seg)]
    return x / np.abs(x).max() * 10 ** (-8 / 20)


# ------------------------------------------------------------------ channels


def opus(kbps: int) -> Callable[[Audio], Audio]:
    def run(a: Audio) -> Audio:
        x, r = a
        y = resample(x, r, 48000)  # Opus runs at 48 kHz
        b = io.BytesIO()
        # libsndfile maps compression level linearly onto 256 … 6 kbit/s
        sf.write(b, y, 48000, format="OGG", subtype="OPUS", compression_level=(256 - kbps) / 250)
        b.seek(0)
        return sf.read(b)[0], 48000

    return run


def mp3(kbps: int) -> Callable[[Audio], Audio]:
    def run(a: Audio) -> Audio:
        x, r = a
        b = io.BytesIO()
        sf.write(
            b,
            x,
            r,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=(320 - kbps) / 312,
            bitrate_mode="CONSTANT",
        )
        b.seek(0)
        return sf.read(b)[0], r

    return run


def to_rate(rate: int) -> Callable[[Audio], Audio]:
    return lambda a: (resample(a[0], a[1], rate), rate)


def gain(db: float) -> Callable[[Audio], Audio]:
    return lambda a: (a[0] * 10 ** (db / 20), a[1])


def crop(start_s: float, end_s: float) -> Callable[[Audio], Audio]:
    return lambda a: (a[0][int(start_s * a[1]) : len(a[0]) - int(end_s * a[1])], a[1])


def chain(*fs: Callable[[Audio], Audio]) -> Callable[[Audio], Audio]:
    def run(a: Audio) -> Audio:
        for f in fs:
            a = f(a)
        return a

    return run


CHANNELS: dict[str, Callable[[Audio], Audio]] = {
    "none": lambda a: a,
    "opus 64k": opus(64),
    "opus 32k": opus(32),
    "mp3 128k": mp3(128),
    "44.1→48 kHz": to_rate(48000),
    "48→44.1 kHz": chain(to_rate(48000), to_rate(44100)),
    "gain −6 dB": gain(-6),
    "gain +6 dB": gain(6),
    "crop 1 s + 1 s": crop(1.0, 1.0),
    "crop 0.37 s + 0.8 s": crop(0.37, 0.8),
    "opus 64k + crop 1 s": chain(crop(1.0, 0.5), opus(64)),
    "mp3 128k + gain −6 dB": chain(gain(-6), mp3(128)),
    "48 kHz + gain +6 dB": chain(to_rate(48000), gain(6)),
}
SPEECH_ONLY = {"opus 32k"}


# ------------------------------------------------------------------ quality


def nmr_db(cover: np.ndarray, stego: np.ndarray, rate: int) -> float:
    """Mean noise-to-mask ratio (dB) against the simple masking model of docs/robust.md."""
    n, hop = 2048, 1024
    w = np.hanning(n)
    frames = (len(cover) - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(frames)[:, None]
    c = np.abs(np.fft.rfft(cover[idx] * w, axis=1)) ** 2
    d = np.abs(np.fft.rfft((stego - cover)[idx] * w, axis=1)) ** 2
    f = np.fft.rfftfreq(n, 1 / rate)
    bark = 13 * np.arctan(0.00076 * f) + 3.5 * np.arctan((f / 7500) ** 2)
    bands = np.minimum(bark.astype(int), 24)
    cb = np.stack([c[:, bands == b].sum(1) for b in range(25)], 1)
    db = np.stack([d[:, bands == b].sum(1) for b in range(25)], 1)
    z = np.arange(25)
    dz = z[None, :] - z[:, None]  # masker i -> maskee j
    spread_db = np.where(dz >= 0, -10 * dz, 25 * dz)  # -10 dB/Bark upward, -25 downward
    mask = cb @ (10 ** (spread_db / 10)) * 10 ** (-14 / 10)  # 14 dB below (noise-like masker)
    quiet = (10 ** (-90 / 10)) * n  # absolute floor
    ratio = (db + 1e-20) / (np.maximum(mask, quiet))
    active = cb.sum(1) > 1e-6 * cb.sum(1).max()
    return float(10 * np.log10(ratio[active].mean()))


def pesq_wb(cover: np.ndarray, stego: np.ndarray, rate: int) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    ref = resample(cover, rate, 16000)
    deg = resample(stego, rate, 16000)
    return float(pesq(16000, ref, deg, "wb"))


def cell_errors(y: np.ndarray, rate: int, k_pos: bytes, payload: bytes) -> str:
    """Diagnostic: the share of data cells read wrong (hard decision), at the alignment the
    extractor found: the quantity the code has to correct."""
    stream = embedding._coded_stream(k_pos, payload)
    mix = core.working_mix(np.asarray(y), rate).astype(np.float64)
    _, data = sync._synchronise(mix, k_pos)
    n = min(len(stream), len(data))
    return f"{np.mean(data[:n] * (1 - 2 * stream[:n]) <= 0) * 100:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--minutes10", action="store_true", help="also time a 10-minute encode")
    ap.add_argument(
        "--stack",
        action="store_true",
        help="only time a 10-minute cover through the CLI and a standalone stack of its own",
    )
    args = ap.parse_args()
    if args.stack:
        through_the_stack()
        return
    k_pos = bytes(range(32))
    wrong = bytes(range(1, 33))
    rows = []
    for cname, make in (("speech", speech_cover), ("music", music_cover)):
        cover = make(args.seconds)
        room = capacity(len(cover) / RATE, RATE)
        payload = np.random.default_rng(11).integers(0, 256, room, dtype=np.uint8).tobytes()
        t0 = time.perf_counter()
        stego = embed(cover, RATE, k_pos, payload)
        t_embed = time.perf_counter() - t0
        snr = 10 * np.log10(np.sum(cover**2) / np.sum((stego - cover) ** 2))
        nmr = nmr_db(cover, stego, RATE)
        pq = pesq_wb(cover, stego, RATE) if cname == "speech" else None
        bps = len(payload) * 8 / (len(cover) / RATE)
        for chname, ch in CHANNELS.items():
            if chname in SPEECH_ONLY and cname != "speech":
                continue
            y, r = ch((stego.copy(), RATE))
            try:
                ok = "yes" if extract(y, r, k_pos) == payload else "WRONG"
            except RobustError as e:
                ok = f"no ({e.code})"
            rows.append(
                (
                    chname,
                    cname,
                    f"{bps:.0f}",
                    ok,
                    cell_errors(y, r, k_pos, payload),
                    f"{snr:.1f}",
                    f"{pq:.2f}" if pq is not None else "–",
                    f"{nmr:.1f}",
                )
            )
        for label, y in (("wrong passphrase", stego), ("unmarked cover", cover)):
            try:
                extract(y, RATE, wrong if label.startswith("wrong") else k_pos)
                ok = "GARBAGE"
            except RobustError as e:
                ok = e.code
            rows.append((label, cname, "", ok, "", "", "", ""))
        print(
            f"<!-- {cname}: {len(cover) / RATE:.0f} s, payload {len(payload)} B, "
            f"embed {t_embed:.2f} s -->"
        )
    print("| channel | cover | bits/s | exact | cell err % | SNR dB | PESQ-WB | NMR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if args.minutes10:
        minutes10()


def minutes10() -> None:
    """A 10-minute stereo 16-bit 44.1 kHz cover through the steps the client and the server
    run (files on disk, the objects that travel serialised), each timed: the client's mix,
    the server's embed (its read-back check included), the client's apply; then a decode's
    server step."""
    import resource

    from subtone.robust import apply_residual_file, cover_mix, embed_mix, extract_mix, wire

    k_pos = bytes(range(32))
    payload = np.random.default_rng(12).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    big = np.tile(music_cover(60.0), 10)
    pcm = np.round(np.stack([big, big * 0.9], axis=1) * 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as d:
        cover, stego = f"{d}/cover.wav", f"{d}/stego.wav"
        sf.write(cover, pcm, RATE, subtype="PCM_16")
        steps = []

        def timed(name, call):
            t0, c0 = time.perf_counter(), time.process_time()
            out = call()
            steps.append((name, time.perf_counter() - t0, time.process_time() - c0))
            return out

        _, mix = timed("client: read the cover, working mix", lambda: cover_mix(cover))
        up = io.BytesIO()
        wire.write_mix(up, mix)
        residual = timed("server: embed_mix (read-back check included)",
                         lambda: embed_mix(mix, k_pos, payload))  # fmt: skip
        down = io.BytesIO()
        wire.write_residual(down, residual)
        timed("client: apply the residual, write the stego file",
              lambda: apply_residual_file(cover, residual, stego))  # fmt: skip
        _, stego_mix = cover_mix(stego)
        found = timed("server: extract_mix (a decode)", lambda: extract_mix(stego_mix, k_pos))
        assert found == payload
        size = len(pcm) * 4
    print(f"\n10-minute stereo 16-bit 44.1 kHz cover ({size / 1e6:.0f} MB), 2000-byte payload:")
    print("| step | wall s | CPU s |\n|---|---|---|")
    for name, wall, cpu in steps:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    encode = steps[:3]
    print(f"| **encode, all three steps** | **{sum(w for _, w, _ in encode):.1f}** | "
          f"**{sum(c for _, _, c in encode):.1f}** |")  # fmt: skip
    print(f"\nSent: mix {len(up.getvalue()) / 1e6:.1f} MB; received: residual "
          f"{len(down.getvalue()) / 1e6:.1f} MB; peak RSS of this process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")  # fmt: skip


def through_the_stack() -> None:
    """``subtone --stats encode --mode robust`` and ``decode`` of a 10-minute cover against a
    standalone stack of its own (bench/e2e.py's), timed, with the bytes the client sent and
    received and every process's peak RSS."""
    from e2e import SUBTONE, peak_mb, reset_peaks, run_measured, server_pids, stack

    big = np.tile(music_cover(60.0), 10)
    pcm = np.round(np.stack([big, big * 0.9], axis=1) * 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        cover, stego, out = work / "cover.wav", work / "stego.wav", work / "out"
        sf.write(cover, pcm, RATE, subtype="PCM_16")
        out.mkdir()
        secret = work / "note.txt"
        secret.write_bytes(TEXT.encode() * 6)
        secret_bytes = secret.stat().st_size
        passfile = work / "pass.txt"
        passfile.write_text("benchmarks are not secrets\n")
        with stack(work) as env:
            pids = server_pids(env)
            rows = {}
            for name, command in (
                ("encode", [SUBTONE, "--stats", "encode", str(cover), str(secret), "-o",
                            str(stego), "--mode", "robust", "--passphrase-file", str(passfile)]),
                ("decode", [SUBTONE, "--stats", "decode", str(stego), "-o", str(out),
                            "--passphrase-file", str(passfile)]),
            ):  # fmt: skip
                reset_peaks(pids)
                # /usr/bin/time reports the client's own peak: wait4's would include this
                # process's memory at fork (Linux keeps the high-water mark across exec).
                row = run_measured(["/usr/bin/time", "-f", "PEAK_KB=%M", *command], env, 900)
                assert row["rc"] == 0, row["output"]
                peak = re.search(r"PEAK_KB=(\d+)", str(row["output"]))
                row["rss_mb"] = int(peak.group(1)) / 1024 if peak else float("nan")
                row["worker_mb"] = peak_mb(pids["worker"])
                row["triton_mb"] = peak_mb(pids["triton"])
                rows[name] = row
        assert (out / "note.txt").read_bytes() == secret.read_bytes()
        size = cover.stat().st_size
    print(f"10-minute stereo 16-bit 44.1 kHz cover ({size / 1e6:.0f} MB) through the CLI and the "
          f"standalone stack, {secret_bytes}-byte secret:")  # fmt: skip
    print("| step | wall s | client sent MB | client received MB | client RSS MB | "
          "worker RSS MB | Triton RSS MB |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for name, row in rows.items():
        print(f"| {name} | {row['seconds']:.1f} | {row['sent_bytes'] / 1e6:.1f} | "
              f"{row['received_bytes'] / 1e6:.1f} | {row['rss_mb']:.0f} | "
              f"{row['worker_mb']:.0f} | {row['triton_mb']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
