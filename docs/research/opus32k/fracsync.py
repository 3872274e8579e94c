"""Is the Opus channel's delay an integer at 44.1 kHz? Scan fractional delays after the integer
cross-correlation alignment and read the STDM carrier's MI.   nice -n 19 python fracsync.py"""
import stdm
from common import *

o = stdm.run(L=1, nb=8, delta=0.8, maxrel=-12.0, channels=(), perceptual=False)
for ch in ("opus64", "opus32"):
    y, d = through(o["stego"], RATE, ch)
    row = []
    for fd in (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0):
        yy, _ = through(y, RATE, f"delay{fd}")
        mi1, mi2, ber = o["probe"](yy)
        row.append(f"{fd:+.2f}: {mi2:.3f}")
    print(ch, "int delay", d, " | ".join(row))
