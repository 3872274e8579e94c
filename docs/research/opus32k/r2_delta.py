"""End to end with the project's own r2 code (subtone.robust.embed/extract), only its QIM step
DELTA_DB changed in this process (monkeypatched in every module that imported it; nothing under
the project's code is modified). Full-capacity payload as in bench/robust.py (100 bit/s on 30 s).
    nice -n 19 python r2_delta.py 7 14 20"""
import sys

import numpy as np
import robust as bench
from common import *

import subtone.robust as R
from subtone.robust import capacity, core, embedding, extraction, sync
from subtone.robust.core import RobustError

mods = [m for m in (core, embedding, sync, extraction) if hasattr(m, "DELTA_DB")]
k_pos = bytes(range(32))
print("| DELTA_DB | cover | channel | exact | cell err % | SNR dB | NMR dB | PESQ-WB |")
print("|---|---|---|---|---|---|---|---|")
for dl in [float(a) for a in sys.argv[1:]] or [7.0, 14.0, 20.0]:
    for m in mods:
        m.DELTA_DB = dl
    for cname, make, chans in (("speech", bench.speech_cover, ("none", "opus64", "opus32", "mp3128")),
                               ("music", bench.music_cover, ("none", "opus64", "mp3128"))):
        cover = make(30.0)
        room = capacity(len(cover) / RATE, RATE)
        payload = np.random.default_rng(11).integers(0, 256, room, dtype=np.uint8).tobytes()
        try:
            stego = R.embed(cover, RATE, k_pos, payload)
        except RobustError as e:
            print(f"| {dl:g} | {cname} | (embed) | refused: {e.code} | | | | |", flush=True)
            continue
        snr = snr_db(cover, stego); nmr = bench.nmr_db(cover, stego, RATE)
        pq = bench.pesq_wb(cover, stego, RATE) if cname == "speech" else None
        for ch in chans:
            y, r = channel(ch)((stego.copy(), RATE))
            try:
                ok = "yes" if R.extract(y, r, k_pos) == payload else "WRONG"
            except RobustError as e:
                ok = f"no ({e.code})"
            print(f"| {dl:g} | {cname} | {ch} | {ok} | {bench.cell_errors(y, r, k_pos, payload)} | {snr:.1f} | {nmr:.1f} | {'–' if pq is None else f'{pq:.2f}'} |", flush=True)
