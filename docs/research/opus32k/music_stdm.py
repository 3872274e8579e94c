"""STDM on the bench's music cover (none / opus64 / mp3128).   nice -n 19 python music_stdm.py"""
import robust as bench
import stdm
from common import *

for d, mr in ((0.8, -12.0), (1.0, 0.0)):
    o = stdm.run(L=1, nb=8, delta=d, maxrel=mr, cover=bench.music_cover(30.0), channels=("none", "opus64", "mp3128"))
    print(f"music delta {d} maxrel {mr:g}: SNR {o['snr']:.1f} NMR {o['nmr']:.1f} | " + " | ".join(
        f"{c} MI {o[c][0]:.2f} ({o[c][1]:.2f}) ceil {o['cells_per_s']*max(o[c][:2]):.0f} BER {o[c][2]*100:.1f}%" for c in ("none", "opus64", "mp3128")))
