"""Candidate (a): band-energy-ratio QIM in the CELT bands above 8 kHz (hybrid mode's CELT layer),
done at the cover's own rate (44.1 kHz): STFT 882/441 (20 ms window, 10 ms hop); tiles = CELT
band x L columns; cells = disjoint band pairs (8-9.6|9.6-12 kHz, 12-15.6|15.6-20 kHz) or
adjacent-frame pairs of one band. Same water-filling QIM as qim_energy.py; the residual has no
content below 8 kHz.
    nice -n 19 python hf_celt.py [kind=bandpair|time|both] [L=2] [delta=6]"""
import itertools
import sys

import numpy as np
import robust as bench
from common import *

F, H = 882, 441
W = np.sqrt(np.hanning(F + 1)[:F])
FR = np.fft.rfftfreq(F, 1 / RATE)
EDGES = [8000, 9600, 12000, 15600, 20000]


def stft(s):
    n = (len(s) - F) // H + 1
    idx = np.arange(F)[None] + H * np.arange(n)[:, None]
    return np.fft.rfft(s[idx] * W, axis=1)


def istft(X, n):
    fr = np.fft.irfft(X, F, axis=1) * W
    out = np.zeros(n)
    for i in range(len(fr)):
        out[i * H:i * H + F] += fr[i]
    return out


def run(kind="bandpair", L=2, delta=6.0, snr_target=30.0, iters=4, seconds=30.0, seed=1,
        channels=("none", "opus64", "opus32", "mp3128")):
    cover = speech(seconds)
    n = len(cover)
    X0 = stft(cover)
    ncols = len(X0)
    bands = [(lo <= FR) & (hi > FR) for lo, hi in itertools.pairwise(EDGES)]
    ng = ncols // L
    nb = len(bands)
    tiles = [(b, g) for g in range(ng) for b in range(nb)]
    tid = {t: i for i, t in enumerate(tiles)}
    cells = []
    if kind in ("bandpair", "both"):
        for g in range(ng):
            cells += [(tid[(0, g)], tid[(1, g)]), (tid[(2, g)], tid[(3, g)])]
    if kind in ("time",):
        for g in range(0, ng - 1, 2):
            cells += [(tid[(b, g)], tid[(b, g + 1)]) for b in range(nb)]
    cells = np.array(cells)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, len(cells)); dither = rng.uniform(0, delta, len(cells))
    tb = np.array([t[0] for t in tiles]); tg = np.array([t[1] for t in tiles])

    def vals(X):
        E = np.abs(X[:ng * L]) ** 2
        te = np.stack([E[:, m].sum(1) for m in bands], 1).reshape(ng, L, nb).sum(1)[tg, tb] + 1e-20
        return 10 * np.log10(te[cells[:, 0]] / te[cells[:, 1]]), te

    d0, te0 = vals(X0)
    off = dither + bits * delta / 2
    s0 = off + delta * np.round((d0 - off) / delta) - d0
    ea, eb = te0[cells[:, 0]], te0[cells[:, 1]]
    ga0, gb0 = s0 * eb / (ea + eb), -s0 * ea / (ea + eb)
    c_full = ea * (10 ** (ga0 / 20) - 1) ** 2 + eb * (10 ** (gb0 / 20) - 1) ** 2
    scale = (np.abs(X0) ** 2).sum() / np.sum(cover ** 2)
    budget = np.sum(cover ** 2) * 10 ** (-(snr_target + 0.5) / 10) * scale
    if c_full.sum() <= budget:
        frac = np.ones(len(cells)); c_full.sum() / budget
    else:
        lo, hi = 0.0, c_full.max()
        for _ in range(60):
            T = (lo + hi) / 2
            lo, hi = (lo, T) if np.minimum(c_full, T).sum() > budget else (T, hi)
        frac = np.where(c_full > lo, np.sqrt(lo / c_full), 1.0)
    target = d0 + frac * s0
    X = X0.copy()
    for _it in range(iters):
        d, te = vals(X)
        s = target - d
        ea, eb = te[cells[:, 0]], te[cells[:, 1]]
        g = np.zeros(len(tiles)); g[cells[:, 0]] += s * eb / (ea + eb); g[cells[:, 1]] -= s * ea / (ea + eb)
        G = np.ones(X.shape)
        for (b, gr), gv in zip(tiles, 10 ** (g / 20), strict=False):
            if gv != 1.0:
                G[gr * L:(gr + 1) * L, bands[b]] *= gv
        y = istft(X * G, n)
        y[:H] = cover[:H]; y[(ncols - 1) * H + F:] = cover[(ncols - 1) * H + F:]
        X = stft(y)
    stego = y
    out = dict(cells_per_s=len(cells) / (n / RATE), snr=snr_db(cover, stego), frac_full=np.mean(frac >= 1),
               nmr=bench.nmr_db(cover, stego, RATE), pesq=bench.pesq_wb(cover, stego, RATE))
    for ch in channels:
        yy, _dl = through(stego, RATE, ch)
        d, te = vals(stft(yy))
        soft = np.cos(2 * np.pi * (d - dither) / delta)
        out[ch] = mutual_info(soft, bits)
    return out


if __name__ == "__main__":
    kw = dict(kind="bandpair", L=2, delta=6.0)
    for a in sys.argv[1:]:
        k, v = a.split("=")
        kw[k] = v if k == "kind" else (int(v) if k == "L" else float(v))
    o = run(**kw)
    print(f"| HF CELT {kw['kind']} L={kw['L']} ({kw['L']*10} ms) delta={kw['delta']:g} dB | {o['cells_per_s']:.0f} cells/s | SNR {o['snr']:.1f} | "
          f"NMR {o['nmr']:.1f} | PESQ {o['pesq']:.2f} | cells at full shift {o['frac_full']*100:.0f}% | "
          + " | ".join(f"{ch}: MI {o[ch][0]:.2f} ceil {o[ch][0]*o['cells_per_s']:.0f} BER {o[ch][1]*100:.1f}%" for ch in ("none", "opus64", "opus32", "mp3128")) + " |")
