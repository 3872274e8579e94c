"""Energy-ratio QIM carriers in the 16 kHz working mix, measured through channels.

A carrier = tiles (band x group of L STFT columns) paired into cells; a cell's value is
d = 10log10(E_a/E_b); dithered binary QIM with step delta; SNR budget by water filling;
per-tile STFT gains, a few analysis-synthesis iterations; residual resampled back to 44.1k.

    nice -n 19 python qim_energy.py [carrier ...]
"""
import itertools
import sys
import time

import numpy as np
from common import *

F, H, R16 = 512, 256, 16000
W = np.sqrt(np.hanning(F + 1)[:F])
FR = np.fft.rfftfreq(F, 1 / R16)


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


CELT = [200, 400, 600, 800, 1000, 1200, 1400, 1600, 2000, 2400, 2800, 3200, 4000, 4800, 5600, 6800, 8000]


def make_carrier(kind, ncols, L, edges):
    """Return (tile_bins list of bin masks, tiles as (band, group), cells as (tileA, tileB))."""
    nb = len(edges) - 1
    ng = ncols // L
    bands = [(lo <= FR) & (hi > FR) for lo, hi in itertools.pairwise(edges)]
    tiles = [(b, g) for g in range(ng) for b in range(nb)]
    tid = {t: i for i, t in enumerate(tiles)}
    cells = []
    if kind == "band":      # neighbouring bands, same column group
        for g in range(ng):
            for b in range(0, nb - 1):
                cells.append((tid[(b, g)], tid[(b + 1, g)]))
    elif kind == "bandpair":  # disjoint pairs of bands (each tile in one cell)
        for g in range(ng):
            for b in range(0, nb - 1, 2):
                cells.append((tid[(b, g)], tid[(b + 1, g)]))
    elif kind == "time":    # same band, adjacent column groups (disjoint pairs)
        for g in range(0, ng - 1, 2):
            for b in range(nb):
                cells.append((tid[(b, g)], tid[(b, g + 1)]))
    return bands, tiles, np.array(cells), ng


def tile_energy(X, bands, L, ng):
    E = np.abs(X[:ng * L]) ** 2
    te = np.stack([E[:, m].sum(1) for m in bands], 1)  # cols x bands
    return te.reshape(ng, L, -1).sum(1)  # groups x bands


def run(carrier, seconds=30.0, delta=6.0, snr_target=30.0, iters=4, channels=("none", "opus64", "opus32"), seed=1, verbose=True, cover=None):
    kind, L, edges = carrier
    cover = speech(seconds) if cover is None else cover
    x16 = resample(cover, RATE, R16)
    n16 = len(x16)
    X0 = stft(x16)
    ncols = len(X0)
    bands, tiles, cells, ng = make_carrier(kind, ncols, L, edges)
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, len(cells))
    u01 = rng.uniform(0, 1, len(cells))
    tb = np.array([t[0] for t in tiles]); tg = np.array([t[1] for t in tiles])
    cg = tg[cells[:, 0]]  # column group of each cell
    if isinstance(delta, tuple):
        d_loud, d_quiet, thr = delta
        def deltas(te):
            pe = 10 * np.log10(te[cells[:, 0]] + te[cells[:, 1]])
            mx = np.full(cg.max() + 1, -1e9); np.maximum.at(mx, cg, pe)
            return np.where(pe < mx[cg] - thr, d_quiet, d_loud)
    else:
        def deltas(te):
            return np.full(len(cells), float(delta))

    def cellvals(X):
        te = tile_energy(X, bands, L, ng)[tg, tb] + 1e-12
        return 10 * np.log10(te[cells[:, 0]] / te[cells[:, 1]]), te

    # --- water-filling level from the cover (per-cell energy cost of its full shift)
    d0, te0 = cellvals(X0)
    dl0 = deltas(te0); dither = u01 * dl0
    off = dither + bits * dl0 / 2
    s0 = off + dl0 * np.round((d0 - off) / dl0) - d0
    ea, eb = te0[cells[:, 0]], te0[cells[:, 1]]

    def split(s, ea, eb):
        ga = s * eb / (ea + eb); gb = -s * ea / (ea + eb)
        return ga, gb

    def cost(s):
        ga, gb = split(s, ea, eb)
        return ea * (10 ** (ga / 20) - 1) ** 2 + eb * (10 ** (gb / 20) - 1) ** 2

    c_full = cost(s0)
    ecov = np.sum(cover ** 2) * R16 / RATE  # cover energy in 16k samples units
    budget_db = snr_target + 1.0
    for _attempt in range(3):
        budget = ecov * 10 ** (-budget_db / 10) * 2 * H / F  # STFT energy scale: sum|X|^2 = 2*sum x^2 (sqrt-hann 50%, one-sided ~ F/2)
        # calibrate scale empirically: sum |X|^2 over all bins vs time energy
        scale = (np.abs(X0) ** 2).sum() / np.sum(x16 ** 2)
        budget = ecov * 10 ** (-budget_db / 10) * scale
        lo, hi = 0.0, c_full.max()
        for _ in range(60):
            T = (lo + hi) / 2
            if np.minimum(c_full, T).sum() > budget:
                hi = T
            else:
                lo = T
        T = lo
        # fraction of the shift for capped cells: cost ~ s^2, so scale by sqrt(T/c)
        frac = np.where(c_full > T, np.sqrt(T / np.maximum(c_full, 1e-30)), 1.0)
        X = X0.copy()
        y16 = x16.copy()
        for _it in range(iters):
            d, te = cellvals(X)
            # target: the cover's lattice point, moved by frac of the way from the cover value
            target = d0 + frac * s0
            s = target - d
            ga, gb = split(s, te[cells[:, 0]], te[cells[:, 1]])
            g = np.zeros(len(tiles))
            g[cells[:, 0]] += ga; g[cells[:, 1]] += gb
            G = np.ones((ncols, len(FR)))
            gl = 10 ** (g / 20)
            for (b, gr), gv in zip(tiles, gl, strict=False):
                if gv != 1.0:
                    G[gr * L:(gr + 1) * L, bands[b]] *= gv
            y16 = istft(X * G, n16)
            y16[:H] = x16[:H]; y16[(ncols - 1) * H + F:] = x16[(ncols - 1) * H + F:]
            X = stft(y16)
        resid = resample(y16 - x16, R16, RATE)[:len(cover)]
        stego = cover + np.r_[resid, np.zeros(len(cover) - len(resid))]
        snr = snr_db(cover, stego)
        if snr >= snr_target:
            break
        budget_db += snr_target - snr + 0.05
    out = {"cells_per_s": len(cells) / (len(cover) / RATE), "snr": snr}
    import robust as bench
    out["nmr"] = bench.nmr_db(cover, stego, RATE); out["pesq"] = bench.pesq_wb(cover, stego, RATE)
    for ch in channels:
        y, dl = through(stego, RATE, ch)
        Y = stft(resample(y, RATE, R16))
        d, te = cellvals(Y)
        dlr = deltas(te)
        soft = np.cos(2 * np.pi * (d - u01 * dlr) / dlr)
        lvl = 10 * np.log10(np.minimum(te[cells[:, 0]], te[cells[:, 1]]))
        mi1, ber = mutual_info(soft, bits)
        mi2 = mutual_info_lvl(soft, bits, lvl)
        out[ch] = (mi1, mi2, ber, dl)
    return out


def mutual_info_lvl(soft, bits, lvl, nl=4, ns=5):
    """MI with a decoder that knows the cell's level class (4 quantiles) and |soft| (5)."""
    s = 1 - 2 * bits.astype(float)
    ql = np.quantile(lvl, np.linspace(0, 1, nl + 1)); il = np.clip(np.searchsorted(ql, lvl, "right") - 1, 0, nl - 1)
    mag = np.abs(soft)
    mi = 0.0
    for a in range(nl):
        m = il == a
        qs = np.quantile(mag[m], np.linspace(0, 1, ns + 1)); is_ = np.clip(np.searchsorted(qs, mag[m], "right") - 1, 0, ns - 1)
        for b in range(ns):
            mm = is_ == b
            if mm.sum() == 0:
                continue
            p = np.mean(soft[m][mm] * s[m][mm] <= 0)
            mi += m.mean() * mm.mean() * (1 - h2(p))
    return mi


CARRIERS = {
    "celt16_1col": ("bandpair", 1, CELT),       # r2 grid (baseline: disjoint pairs, 8 cells/column)
    "celt16_2col": ("band", 2, CELT),
    "wide3_1col": ("band", 1, [200, 1000, 3000, 8000]),
    "wide3_2col": ("band", 2, [200, 1000, 3000, 8000]),
    "wide3_4col": ("band", 4, [200, 1000, 3000, 8000]),
    "wide5_2col": ("band", 2, [200, 700, 1500, 3000, 5000, 8000]),
    "oct_2col": ("band", 2, [200, 500, 1000, 2000, 4000, 8000]),
    "time_full_1col": ("time", 1, [200, 8000]),
    "time_full_2col": ("time", 2, [200, 8000]),
    "time_4b_1col": ("time", 1, [200, 1000, 2000, 4000, 8000]),
    "time_4b_2col": ("time", 2, [200, 1000, 2000, 4000, 8000]),
    "time_8b_1col": ("time", 1, [200, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000]),
    "time_celt_1col": ("time", 1, CELT),
}

if __name__ == "__main__":
    args = sys.argv[1:]
    deltas = [6.0]
    names = []
    music = False
    for a in args:
        if a == "music":
            music = True
        elif a.startswith("delta="):
            deltas = [tuple(float(t) for t in v.split(":")) if ":" in v else float(v) for v in a[6:].split(",")]
        else:
            names.append(a)
    names = names or list(CARRIERS)
    import robust as bench
    cov = bench.music_cover(30.0) if music else None
    chans = ("none", "opus64", "mp3128") if music else ("none", "opus64", "opus32")
    print(f"| carrier | delta dB | cells/s | SNR dB | NMR dB | PESQ-WB | MI {chans[0]} (lvl) | MI {chans[1]} (lvl) | MI {chans[2]} (lvl) | ceil64 / ceil32 b/s | BER " + "/".join(chans) + " % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for nm in names:
        for dl in deltas:
            t0 = time.time()
            o = run(CARRIERS[nm], delta=dl, cover=cov, channels=chans)
            cps = o["cells_per_s"]
            cols = [f"{o[c][0]:.2f} ({o[c][1]:.2f})" for c in chans]
            c64 = cps * max(o["opus64"][:2])
            ceil32 = f"{cps * max(o['opus32'][:2]):.0f}" if "opus32" in o else "–"
            bers = "/".join(f"{o[c][2]*100:.1f}" for c in chans)
            dls = ":".join(f"{t:g}" for t in dl) if isinstance(dl, tuple) else f"{dl:g}"
            pq = f"{o['pesq']:.2f}" if o["pesq"] is not None else "–"
            print(f"| {nm}{' (music)' if music else ''} | {dls} | {cps:.0f} | {o['snr']:.1f} | {o['nmr']:.1f} | {pq} | " + " | ".join(cols) + f" | {c64:.0f} / {ceil32} | {bers} |", flush=True)
