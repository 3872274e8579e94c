"""STDM carrier through the other channels of the bench and with a sync error; and on music.
    nice -n 19 python checks.py"""
import robust as bench
import stdm
from common import *

P = dict(L=1, nb=8, delta=0.8, maxrel=-12.0)
chs = ("none", "opus64", "opus32", "mp3128", "r48", "gain-6", "delay0.5", "delay1", "delay2.76", "delay5.5")
o = stdm.run(**P, channels=chs)
print(f"speech {P}: cells/s {o['cells_per_s']:.0f} SNR {o['snr']:.1f} NMR {o['nmr']:.1f} PESQ {o['pesq']:.2f}")
for ch in chs:
    mi1, mi2, ber, dl = o[ch]
    print(f"  {ch:10s} MI {mi1:.2f} (lvl {mi2:.2f}) ceiling {o['cells_per_s']*max(mi1, mi2):4.0f} b/s  BER {ber*100:4.1f}%  delay found {dl}")
m = bench.music_cover(30.0)
o = stdm.run(**P, cover=m, channels=("none", "opus64", "mp3128"))
print(f"music {P}: SNR {o['snr']:.1f} NMR {o['nmr']:.1f}")
for ch in ("none", "opus64", "mp3128"):
    mi1, mi2, ber, dl = o[ch]
    print(f"  {ch:10s} MI {mi1:.2f} (lvl {mi2:.2f}) ceiling {o['cells_per_s']*max(mi1, mi2):4.0f} b/s  BER {ber*100:4.1f}%")
