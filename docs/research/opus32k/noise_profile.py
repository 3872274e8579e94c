"""Codec distortion per band on the speech cover (16 kHz working mix, STFT 512/256):
NSR = sum|Y-X|^2 / sum|X|^2 per band (waveform noise), and the std of the change of
10log10 tile energy (energy noise) for tiles of various sizes."""
import itertools

import numpy as np
from common import *

x = speech(30.0)
x16 = resample(x, RATE, 16000)
F, H = 512, 256
w = np.sqrt(np.hanning(F + 1)[:F])
def stft(s):
    n = (len(s) - F) // H + 1
    idx = np.arange(F)[None] + H * np.arange(n)[:, None]
    return np.fft.rfft(s[idx] * w, axis=1)
X = stft(x16)
fr = np.fft.rfftfreq(F, 1 / 16000)
E = np.abs(X) ** 2
loud = E.sum(1) > 1e-3 * np.median(E.sum(1)[E.sum(1) > 0]) * 10  # crude activity
act = E.sum(1) > np.quantile(E.sum(1), 0.3)
print("active columns:", act.mean())
edges = [0, 250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000]
for ch in ("opus32", "opus64", "mp3128"):
    y, d = through(x, RATE, ch)
    Y = stft(resample(y, RATE, 16000))
    print(f"== {ch} delay {d}")
    print("band        NSR(dB, active cols)   std dB of tile energy change: 1col 2col 4col")
    for lo, hi in itertools.pairwise(edges):
        m = (fr >= lo) & (fr < hi)
        nsr = 10 * np.log10((np.abs(Y - X)[act][:, m] ** 2).sum() / (E[act][:, m].sum()))
        out = []
        for L in (1, 2, 4):
            n = (len(X) // L) * L
            ex = E[:n, m].sum(1).reshape(-1, L).sum(1)
            ey = (np.abs(Y[:n, m]) ** 2).sum(1).reshape(-1, L).sum(1)
            a = act[:n].reshape(-1, L).all(1)
            dd = 10 * np.log10(ey[a] + 1e-12) - 10 * np.log10(ex[a] + 1e-12)
            out.append(f"{np.std(dd):5.2f}")
        print(f"{lo:5d}-{hi:5d}  {nsr:7.1f}                 " + " ".join(out))
