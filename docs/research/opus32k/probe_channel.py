"""What opus(32)/opus(64) actually produce on the speech cover: bitrate, mode, delay, spectrum."""
import numpy as np
from common import *

x = speech(30.0)
r = RATE
print("cover: %.1f s at %d Hz" % (len(x) / r, r))
# cover spectrum in bands
f = np.fft.rfftfreq(len(x), 1 / r)
P = np.abs(np.fft.rfft(x)) ** 2
tot = P.sum()
for lo, hi in [(0, 1000), (1000, 3000), (3000, 8000), (8000, 9600), (9600, 11025), (11025, 12000), (12000, 22050)]:
    m = (f >= lo) & (f < hi)
    print(f"  {lo:5d}-{hi:5d} Hz: {10*np.log10(P[m].sum()/tot):7.1f} dB of total")
for k in (32, 64):
    data = opus_bytes(x, r, k)
    c, n, nb = opus_modes(data)
    print(f"opus({k}): {len(data)*8/(len(x)/r)/1000:.1f} kbit/s file, {nb*8/(n*0.02)/1000:.1f} kbit/s packets (if 20 ms), packets={n}")
    for key, v in sorted(c.items(), key=lambda kv: -kv[1]):
        print("   ", key, v)
    y, d = through(x, r, f"opus{k}")
    print(f"   delay (samples @44.1k) = {d}, SNR codec vs input = {snr_db(x, y):.1f} dB")
    Y = np.abs(np.fft.rfft(y)) ** 2
    for lo, hi in [(7000, 8000), (8000, 9600), (9600, 11025), (11025, 12000), (12000, 16000)]:
        m = (f >= lo) & (f < hi)
        print(f"     out/in energy {lo}-{hi}: {10*np.log10(Y[m].sum()/P[m].sum()):6.1f} dB")
