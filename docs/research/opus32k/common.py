"""Shared plumbing for the Opus-32k carrier study (imports the bench's cover and channel)."""
import io
import sys
from pathlib import Path as _Path
ROOT = _Path(__file__).resolve().parents[3]  # the repository

import numpy as np
import soundfile as sf

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
import robust as bench  # bench/robust.py: speech_cover, opus(), RATE

from subtone.robust._dsp import resample

RATE = bench.RATE  # 44100


def speech(seconds=30.0):
    return bench.speech_cover(seconds)


def channel(name):
    if name == "none":
        return lambda a: a
    if name.startswith("opus"):
        return bench.opus(int(name[4:]))
    if name.startswith("mp3"):
        return bench.mp3(int(name[3:]))
    if name == "r48":
        return lambda a: (resample(a[0], a[1], 48000), 48000)
    if name.startswith("gain"):
        g = float(name[4:])
        return lambda a: (a[0] * 10 ** (g / 20), a[1])
    if name.startswith("delay"):  # fractional delay (samples at the file's rate), NOT compensated
        dly = float(name[5:])
        def run(a):
            x, r = a
            n = len(x); N = 1 << int(np.ceil(np.log2(n + 64)))
            Xf = np.fft.rfft(x, N) * np.exp(-2j * np.pi * np.fft.rfftfreq(N) * dly)
            return np.fft.irfft(Xf, N)[:n], r
        return run
    raise ValueError(name)


def opus_bytes(x, r, kbps):
    y = resample(x, r, 48000)
    b = io.BytesIO()
    sf.write(b, y, 48000, format="OGG", subtype="OPUS", compression_level=(256 - kbps) / 250)
    return b.getvalue()


def ogg_packets(data):
    """Opus packets from an Ogg stream (minimal parser)."""
    pkts, cur, i = [], b"", 0
    while i < len(data):
        assert data[i:i + 4] == b"OggS"
        nseg = data[i + 26]
        lac = data[i + 27:i + 27 + nseg]
        j = i + 27 + nseg
        for l in lac:
            cur += data[j:j + l]
            j += l
            if l < 255:
                pkts.append(cur)
                cur = b""
        i = j
    return pkts


def opus_modes(data):
    """Histogram of (mode, bandwidth, frame ms) from each packet's TOC byte."""
    from collections import Counter
    pk = ogg_packets(data)[2:]  # skip OpusHead, OpusTags
    c = Counter()
    for p in pk:
        cfg = p[0] >> 3
        if cfg < 12:
            mode = "SILK"; bw = ["NB", "MB", "WB"][cfg // 4]; fr = [10, 20, 40, 60][cfg % 4]
        elif cfg < 16:
            mode = "HYBRID"; bw = ["SWB", "FB"][(cfg - 12) // 2]; fr = [10, 20][cfg % 2]
        else:
            mode = "CELT"; bw = ["NB", "WB", "SWB", "FB"][(cfg - 16) // 4]; fr = [2.5, 5, 10, 20][cfg % 4]
        c[(mode, bw, fr)] += 1
    return c, len(pk), sum(len(p) for p in pk)


def align(ref, y):
    """Integer lag d such that y[n + d] ~ ref[n] (cross-correlation, FFT)."""
    n = min(len(ref), len(y))
    a, b = ref[:n], y[:n]
    N = 1 << int(np.ceil(np.log2(2 * n)))
    cc = np.fft.irfft(np.conj(np.fft.rfft(a, N)) * np.fft.rfft(b, N), N)
    lag = int(np.argmax(np.r_[cc[:4000], cc[-4000:]]))
    return lag if lag < 4000 else lag - 8000


def through(x, r, name):
    """Pass x (rate r) through a channel; return it at rate r, delay-compensated to x."""
    y, ry = channel(name)((x.copy(), r))
    y = resample(y, ry, r) if ry != r else np.asarray(y, float)
    d = 0 if name.startswith("delay") else align(x, y)
    if d > 0:
        y = y[d:]
    elif d < 0:
        y = np.r_[np.zeros(-d), y]
    y = np.resize(y, len(x)) if len(y) >= len(x) else np.r_[y, np.zeros(len(x) - len(y))]
    return y, d


def h2(p):
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return -p * np.log2(p) - (1 - p) * np.log2(1 - p)


def mutual_info(soft, bits, nbins=10):
    """MI per cell: soft values binned by |soft| (quantiles), error rate per bin."""
    soft = np.asarray(soft, float); bits = np.asarray(bits)
    s = 1 - 2 * bits.astype(float)  # bit 0 -> +1
    mag = np.abs(soft)
    edges = np.quantile(mag, np.linspace(0, 1, nbins + 1))
    idx = np.clip(np.searchsorted(edges, mag, side="right") - 1, 0, nbins - 1)
    mi = 0.0
    for k in range(nbins):
        m = idx == k
        if not m.any():
            continue
        p = np.mean(soft[m] * s[m] <= 0)
        mi += m.mean() * (1 - h2(p))
    ber = np.mean(soft * s <= 0)
    return mi, ber


def snr_db(cover, stego):
    return 10 * np.log10(np.sum(cover ** 2) / np.sum((stego - cover) ** 2))
