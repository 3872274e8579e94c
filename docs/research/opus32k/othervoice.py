"""The chosen STDM settings on other espeak-ng speech covers (other voice, other text), built
like bench.speech_cover (-55 dBFS floor, peak -8 dBFS, 44.1 kHz).
    nice -n 19 python othervoice.py"""
import subprocess
import tempfile

import numpy as np
import soundfile as sf
import stdm
from common import *

TEXT2 = ("Please leave the parcel at the back door if nobody answers. The weather turned cold on "
         "Tuesday and the trains were late again, so the meeting moved to Thursday afternoon. ")


def cover(voice, text, speed, seconds=30.0):
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", f"{d}/s.wav", text * 6], check=True)
        x, r = sf.read(f"{d}/s.wav")
    out = np.resize(resample(x, r, RATE), int(seconds * RATE))
    out = out + np.random.default_rng(5).standard_normal(len(out)) * 10 ** (-55 / 20)
    return out / np.abs(out).max() * 10 ** (-8 / 20)


if __name__ == "__main__":
  for voice, text, sp in (("en-gb+f3", TEXT2, 150), ("en-us+m3", TEXT2, 175)):
    c = cover(voice, text, sp)
    for mr in (-12.0, 0.0):
        o = stdm.run(L=1, nb=8, delta=0.8, maxrel=mr, cover=c)
        cps = o["cells_per_s"]
        print(f"{voice} maxrel {mr:g}: SNR {o['snr']:.1f} NMR {o['nmr']:.1f} PESQ {o['pesq']:.2f} | " + " | ".join(
            f"{ch} MI {o[ch][0]:.2f} ({o[ch][1]:.2f}) ceil {cps*max(o[ch][:2]):.0f} BER {o[ch][2]*100:.1f}%" for ch in ("none", "opus64", "opus32")), flush=True)
