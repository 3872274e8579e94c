"""Waveform carrier: normalised spread-transform dither modulation (STDM) in the 16 kHz
working mix. A cell = a block of STFT coefficients (L columns x nb bins inside [f1, f2));
its value f = Re<u, X> / ||X|| (u: keyed random unit vector, optionally shaped by |X|), which
is gain invariant; binary dithered QIM on f with step delta; water-filling SNR budget;
the change is added along u, then a few STFT/ISTFT iterations correct the leakage.

    nice -n 19 python stdm.py [L=2] [nb=16] [f1=200] [f2=4000] [delta=0.3] [shape=0|1] [seconds=30]
"""
import sys

import numpy as np
from common import *
from qim_energy import FR, R16, F, H, istft, stft


def run(L=2, nb=16, f1=200, f2=4000, delta=0.3, shape=0.0, seconds=30.0, snr_target=30.0,
        iters=5, gate=0, maxrel=0.0, orth=0, perceptual=True, bits_in=None, channels=("none", "opus64", "opus32"), seed=1, cover=None, extra_channels=()):
    cover = speech(seconds) if cover is None else cover
    x16 = resample(cover, RATE, R16)
    n16 = len(x16)
    X0 = stft(x16)
    ncols = len(X0)
    kb = np.nonzero((f1 <= FR) & (f2 > FR))[0]
    kb = kb[: (len(kb) // nb) * nb]
    nbands = len(kb) // nb
    ng = (ncols - 2) // L  # leave first/last column alone
    rng = np.random.default_rng(seed)
    ncell = ng * nbands
    bits = rng.integers(0, 2, ncell)
    if bits_in is not None:  # the caller's (coded) bits, one per cell
        bits = np.asarray(bits_in[:ncell]).astype(np.int64)
    dither = rng.uniform(0, delta, ncell)
    # random phases/signs per coefficient (keyed): block layout [group, L, band, nb]
    U = np.exp(2j * np.pi * rng.random((ng, L, nbands, nb)))
    colsl = slice(1, 1 + ng * L)

    def block(X):
        return X[colsl][:, kb].reshape(ng, L, nbands, nb)

    def feat(X, mag=None):
        B = block(X)
        a = np.abs(B) if mag is None else mag
        u = U * (a ** shape if shape else 1.0)
        un = np.sqrt((np.abs(u) ** 2).sum(axis=(1, 3), keepdims=True)) + 1e-30
        u = u / un
        nx = np.sqrt((np.abs(B) ** 2).sum(axis=(1, 3))) + 1e-30
        f = np.real((np.conj(u) * B).sum(axis=(1, 3))) / nx
        return f.reshape(-1), u, nx.reshape(-1)

    f0, _u0, n0 = feat(X0)
    off = dither + bits * delta / 2
    s0 = off + delta * np.round((f0 - off) / delta) - f0
    c_full = s0 ** 2 * n0 ** 2
    if gate:  # leave the quietest `gate` percent of cells unmarked (budget goes to the rest)
        lv = 20 * np.log10(n0)
        off_cells = lv < np.percentile(lv, gate)
        s0 = np.where(off_cells, 0.0, s0)
        c_full = np.where(off_cells, 0.0, c_full)
    if maxrel:  # no cell's change above maxrel dB of the cell's own energy (partial move)
        lim = n0 ** 2 * 10 ** (maxrel / 10)
        s0 = np.where(c_full > lim, s0 * np.sqrt(lim / np.maximum(c_full, 1e-30)), s0)
        c_full = np.minimum(c_full, lim)
    scale = (np.abs(X0) ** 2).sum() / np.sum(x16 ** 2)
    ecov = np.sum(cover ** 2) * R16 / RATE
    budget_db = snr_target + 0.5
    for _attempt in range(6):
        budget = ecov * 10 ** (-budget_db / 10) * scale
        lo, hi = 0.0, c_full.max()
        for _ in range(60):
            T = (lo + hi) / 2
            if np.minimum(c_full, T).sum() > budget:
                hi = T
            else:
                lo = T
        frac = np.where(c_full > lo, np.sqrt(lo / np.maximum(c_full, 1e-30)), 1.0)
        target = f0 + frac * s0
        mag0 = np.abs(block(X0))  # shape the pattern by the cover (decoder uses |Y|)
        X = X0.copy()
        for _it in range(iters):
            f, u, nx = feat(X, mag0 if shape else None)
            s = (target - f) * nx
            D = u * s.reshape(ng, 1, nbands, 1) if not orth else u * np.ones((ng, 1, nbands, 1))
            if orth:  # per-bin change orthogonal to the bin itself (a phase rotation): band energies
                B = block(X)  # move only at second order, so the r2 band-ratio carrier is left alone
                D = D - np.real(D * np.conj(B)) / (np.abs(B) ** 2 + 1e-30) * B
                got = np.real((np.conj(u) * D).sum(axis=(1, 3)))  # projection actually achieved
                got = got.reshape(-1)
                D = D * (s / np.where(np.abs(got) > 1e-30, got, 1e-30)).reshape(ng, 1, nbands, 1)
            Xn = X.copy()
            sub = Xn[colsl]
            sub[:, kb] += D.reshape(ng * L, nbands * nb)
            Xn[colsl] = sub
            y16 = istft(Xn, n16)
            y16[:H] = x16[:H]
            y16[(ncols - 1) * H + F:] = x16[(ncols - 1) * H + F:]
            X = stft(y16)
        resid = resample(y16 - x16, R16, RATE)[: len(cover)]
        stego = cover + np.r_[resid, np.zeros(len(cover) - len(resid))]
        snr = snr_db(cover, stego)
        if snr >= snr_target:
            break
        budget_db += snr_target - snr + 0.1
    out = {"cells_per_s": ncell / (len(cover) / RATE), "snr": snr, "stego": stego, "cover": cover}
    if perceptual:
        import robust as bench
        out["nmr"] = bench.nmr_db(cover, stego, RATE)
        out["pesq"] = bench.pesq_wb(cover, stego, RATE)
    def soft_of(y):
        Y = stft(resample(y, RATE, R16))
        f, _, ny = feat(Y)
        return np.cos(2 * np.pi * (f - dither) / delta), 20 * np.log10(ny)
    out["soft_of"] = soft_of
    out["ncell"] = ncell

    def probe(y):
        """MI / BER of a received signal already aligned and at RATE."""
        from qim_energy import mutual_info_lvl
        Y = stft(resample(y, RATE, R16))
        f, _, ny = feat(Y)
        soft = np.cos(2 * np.pi * (f - dither) / delta)
        mi1, ber = mutual_info(soft, bits)
        return mi1, mutual_info_lvl(soft, bits, 20 * np.log10(ny)), ber
    out["probe"] = probe
    for ch in tuple(channels) + tuple(extra_channels):
        y, dl = through(stego, RATE, ch)
        Y = stft(resample(y, RATE, R16))
        f, _, ny = feat(Y)
        soft = np.cos(2 * np.pi * (f - dither) / delta)
        lvl = 20 * np.log10(ny)
        from qim_energy import mutual_info_lvl
        mi1, ber = mutual_info(soft, bits)
        mi2 = mutual_info_lvl(soft, bits, lvl)
        out[ch] = (mi1, mi2, ber, dl)
        q = np.percentile(20 * np.log10(n0), [25, 50, 75]); iq = np.searchsorted(q, 20 * np.log10(n0))
        sg = 1 - 2 * bits
        out[ch + "_q"] = [(mutual_info(soft[iq == i], bits[iq == i])[0], np.mean(soft[iq == i] * sg[iq == i] <= 0)) for i in range(4)]
    return out


if __name__ == "__main__":
    kw = {}
    for a in sys.argv[1:]:
        k, v = a.split("=")
        kw[k] = [float(t) if "." in t or k in ("delta", "shape", "seconds", "maxrel") else int(t) for t in v.split(",")]
    import itertools
    keys = list(kw)
    print("| L | nb | band Hz | delta | shape | gate % | maxrel dB | orth | seed | cells/s | SNR dB | NMR dB | PESQ-WB | MI none (lvl) | MI opus64 (lvl) | MI opus32 (lvl) | ceil64 / ceil32 b/s | BER none/64/32 % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for combo in itertools.product(*[kw[k] for k in keys]):
        p = dict(zip(keys, combo, strict=False))
        o = run(**p)
        q = dict(L=2, nb=16, f1=200, f2=4000, delta=0.3, shape=0.0, gate=0, maxrel=0.0, orth=0, seed=1); q.update(p)
        cps = o["cells_per_s"]
        cols = [f"{o[c][0]:.2f} ({o[c][1]:.2f})" for c in ("none", "opus64", "opus32")]
        c64 = cps * max(o["opus64"][:2]); c32 = cps * max(o["opus32"][:2])
        bers = "/".join(f"{o[c][2]*100:.1f}" for c in ("none", "opus64", "opus32"))
        print(f"| {q['L']} | {q['nb']} | {q['f1']}-{q['f2']} | {q['delta']:g} | {q['shape']:g} | {q['gate']} | {q['maxrel']:g} | {q['orth']} | {q['seed']} | {cps:.0f} | {o['snr']:.1f} | {o['nmr']:.1f} | {o['pesq']:.2f} | "
              + " | ".join(cols) + f" | {c64:.0f} / {c32:.0f} | {bers} |", flush=True)
        if "-q" in sys.argv[0:0] or True:
            print("<!-- opus32 MI/BER by cover level quartile Q1..Q4: " + ", ".join(f"{m:.2f}/{b*100:.0f}%" for m, b in o["opus32_q"]) + " -->", flush=True)
