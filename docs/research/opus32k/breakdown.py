"""Where the STDM carrier's information lives: per cover-level quartile of cells, the share of
the mark's energy, hard BER and MI (none / opus64 / opus32).
    nice -n 19 python breakdown.py [nb=8] [delta=1.2] [floor=-55]"""
import sys

import common
import numpy as np
import stdm
from common import *
from qim_energy import R16, stft

kw = dict(nb=8, delta=1.2, floor=-55.0)
for a in sys.argv[1:]:
    k, v = a.split("="); kw[k] = float(v) if k != "nb" else int(v)


def speech_floor(seconds, floor_db):
    """bench.speech_cover with a different noise floor (None: no floor)."""
    import subprocess
    import tempfile

    import soundfile as sf
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", f"{d}/s.wav", common.bench.TEXT * 4], check=True)
        x, r = sf.read(f"{d}/s.wav")
    out = resample(x, r, RATE)
    n = int(seconds * RATE)
    out = np.resize(out, n)
    out = out + np.random.default_rng(5).standard_normal(n) * 10 ** (floor_db / 20)
    return out / np.abs(out).max() * 10 ** (-8 / 20)


if __name__ == "__main__":
    cover = speech_floor(30.0, kw["floor"])
    # capture bits/levels: rerun internals via run() with a hook
    o = stdm.run(L=1, nb=kw["nb"], delta=kw["delta"], cover=cover, perceptual=True)
    print(f"floor {kw['floor']} dBFS nb={kw['nb']} delta={kw['delta']}: SNR {o['snr']:.1f} NMR {o['nmr']:.1f} PESQ {o['pesq']:.2f} cells/s {o['cells_per_s']:.0f}")
    for ch in ("none", "opus64", "opus32"):
        mi1, mi2, ber, _ = o[ch]
        print(f"  {ch}: MI {mi1:.2f} (lvl {mi2:.2f}) ceiling {o['cells_per_s']*max(mi1,mi2):.0f} b/s BER {ber*100:.1f}%")
    # mark energy by cover level (16k STFT, per-column/bin block of 8 bins 200-4000 Hz)
    X = stft(resample(cover, RATE, R16)); S = stft(resample(o["stego"], RATE, R16))
    from qim_energy import FR
    kb = np.nonzero((FR >= 200) & (FR < 4000))[0]
    ce = (np.abs(X[:, kb]) ** 2); me = (np.abs(S[:, kb] - X[:, kb]) ** 2)
    colE = 10 * np.log10(ce.sum(1) + 1e-20)
    q = np.percentile(colE, [25, 50, 75])
    print("  column level quartile (of cover 200-4000 Hz energy): share of mark energy, local mark/cover dB")
    for i, (lo, hi) in enumerate(zip([-1e9, *q], [*q, 1e9], strict=False)):
        m = (colE >= lo) & (colE < hi)
        print(f"    Q{i+1} ({lo:6.1f}..{hi:6.1f} dB): {me[m].sum()/me.sum()*100:5.1f}% of mark, mark/cover {10*np.log10(me[m].sum()/ce[m].sum()):6.1f} dB")
