"""Coexistence: the project's r2 band-ratio carrier (subtone.robust.embed, its SNR budget
monkeypatched in this process only) plus the STDM carrier on top, total SNR >= 30 dB against the
original cover. Reports r2's decode (exact?) and cell errors, and STDM's MI, per channel.
    nice -n 19 python coexist.py [r2_snr_db=35.3] [stdm_share ...]"""
import sys

import numpy as np
import robust as bench
import stdm
from common import *

from subtone.robust import capacity, embed, embedding, extract
from subtone.robust.core import RobustError

r2_budget = float(sys.argv[1]) if len(sys.argv) > 1 else 35.3
ORTH = int(sys.argv[2]) if len(sys.argv) > 2 else 0
cover = speech(30.0)
k_pos = bytes(range(32))
room = capacity(len(cover) / RATE, RATE)
payload = np.random.default_rng(11).integers(0, 256, room, dtype=np.uint8).tobytes()
embedding.SNR_DB = r2_budget
s1 = embed(cover, RATE, k_pos, payload)
snr1 = snr_db(cover, s1)
# STDM budget so that the total is 30 dB (noise energies add if uncorrelated), then corrected
t = -10 * np.log10(10 ** -3.0 - 10 ** (-snr1 / 10)) if snr1 > 30.05 else None
if t is None:
    print(f"r2 alone already at {snr1:.1f} dB: no room"); sys.exit()
for _ in range(3):
    o = stdm.run(L=1, nb=8, delta=0.8, maxrel=-12.0, orth=ORTH, cover=s1, snr_target=t, channels=(), perceptual=False)
    tot = snr_db(cover, o["stego"])
    if tot >= 30.0:
        break
    t += 30.0 - tot + 0.05
s2 = o["stego"]
print(f"orth={ORTH}; r2 budget {r2_budget} -> r2 SNR {snr1:.1f} dB; STDM target {t:.1f} dB; total SNR {tot:.2f} dB; "
      f"NMR {bench.nmr_db(cover, s2, RATE):.1f} PESQ {bench.pesq_wb(cover, s2, RATE):.2f}; payload {room} B ({room*8/30:.0f} bit/s)")
print("| channel | r2 alone: exact / cell err % | r2 + STDM: exact / cell err % | STDM MI (lvl) | STDM ceiling b/s |")
print("|---|---|---|---|---|")
for ch in ("none", "opus64", "opus32", "mp3128"):
    res = []
    for s in (s1, s2):
        y, r = channel(ch)((s.copy(), RATE))
        try:
            ok = "yes" if extract(y, r, k_pos) == payload else "WRONG"
        except RobustError as e:
            ok = f"no ({e.code})"
        res.append(f"{ok} / {bench.cell_errors(y, r, k_pos, payload)}")
    y, _ = through(s2, RATE, ch)
    mi1, mi2, ber = o["probe"](y)
    print(f"| {ch} | {res[0]} | {res[1]} | {mi1:.2f} ({mi2:.2f}) | {o['cells_per_s']*max(mi1, mi2):.0f} |", flush=True)
