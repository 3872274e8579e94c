"""End to end on the STDM carrier: payload bits -> the project's rate-1/4 K=7 convolutional code
(subtone/robust/_fec.py) -> each coded bit on `rep` cells (keyed interleaver), 1/16 of cells pilots
-> embed at SNR >= 30 dB -> channel -> LLRs per (level quartile x |soft| quintile) bin estimated
from the pilots only -> Viterbi -> exact? No sync search: the known alignment (integer lag by
cross-correlation, as in the MI study).
    nice -n 19 python e2e_stdm.py [bps=100] [maxrel=-12] [delta=0.8] [seed=1]"""
import sys
from pathlib import Path as _Path
ROOT = _Path(__file__).resolve().parents[3]  # the repository

import numpy as np

sys.path.insert(0, str(ROOT))
import stdm
from common import *

from subtone.robust._fec import conv_decode, conv_encode

kw = dict(bps=100.0, maxrel=-12.0, delta=0.8, seed=1, seconds=30.0, voice="")
for a in sys.argv[1:]:
    k, v = a.split("="); kw[k] = v if k == "voice" else float(v)
seconds = kw["seconds"]
cov = None
if kw["voice"]:  # another espeak-ng voice and text (othervoice.py)
    import othervoice
    cov = othervoice.cover(kw["voice"], othervoice.TEXT2, 175 if "m3" in kw["voice"] else 150, seconds)
probe_run = stdm.run(L=1, nb=8, delta=kw["delta"], maxrel=kw["maxrel"], channels=(), perceptual=False, seconds=seconds, cover=cov)
ncell = probe_run["ncell"]
rng = np.random.default_rng(1000 + int(kw["seed"]))
pilot = rng.permutation(ncell) % 16 == 0
data_idx = np.nonzero(~pilot)[0]
nmsg = int(kw["bps"] * seconds)
msg = rng.integers(0, 2, nmsg)
coded = conv_encode(msg)
ncoded = len(coded)
rep = len(data_idx) / ncoded
perm = rng.permutation(len(data_idx))
owner = np.arange(len(data_idx)) % ncoded  # each data cell carries coded bit owner[...]
owner = owner[perm]
cell_bits = np.zeros(ncell, dtype=np.int64)
pilot_bits = rng.integers(0, 2, pilot.sum())
cell_bits[pilot] = pilot_bits
cell_bits[data_idx] = coded[owner]
o = stdm.run(L=1, nb=8, delta=kw["delta"], maxrel=kw["maxrel"], channels=(), perceptual=True,
             seconds=seconds, bits_in=cell_bits, seed=int(kw["seed"]), cover=cov)
print(f"payload {kw['bps']:g} bit/s ({nmsg} bits), {ncell} cells ({o['cells_per_s']:.0f}/s), "
      f"{ncoded} coded bits, {rep:.2f} cells per coded bit; SNR {o['snr']:.2f} dB NMR {o['nmr']:.1f} PESQ {o['pesq']:.2f}")
for ch in ("none", "opus64", "opus32", "mp3128"):
    y, dl = through(o["stego"], RATE, ch)
    soft, lvl = o["soft_of"](y)
    # LLR table from the pilots: 4 level quartiles x 5 |soft| quintiles
    ql = np.quantile(lvl, [0.25, 0.5, 0.75]); il = np.searchsorted(ql, lvl)
    qs = np.quantile(np.abs(soft), [0.2, 0.4, 0.6, 0.8]); is_ = np.searchsorted(qs, np.abs(soft))
    b = il * 5 + is_
    sg = 1 - 2 * cell_bits
    wrong = (soft * sg <= 0)
    llr = np.zeros(ncell)
    for k in range(20):
        m = (b == k) & pilot
        p = (wrong[m].sum() + 1) / (m.sum() + 2)
        llr[b == k] = np.sign(soft[b == k]) * np.log((1 - p) / p)
    acc = np.zeros(ncoded)
    np.add.at(acc, owner, llr[data_idx])
    dec = conv_decode(acc)
    nerr = int(np.sum(dec != msg))
    raw = np.mean(wrong[data_idx])
    print(f"  {ch:7s} cell BER {raw*100:.1f}%  coded-bit BER after combining {np.mean((acc <= 0) != (coded == 1))*100:.1f}%  "
          f"payload bit errors {nerr}/{nmsg} -> {'EXACT' if nerr == 0 else 'fail'}", flush=True)
