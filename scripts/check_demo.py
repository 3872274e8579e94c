"""Check the demo's result: the recovered recording sounds like the secret that was hidden."""

import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from subtone.stego import codec


def envelope(path: Path, rate: int = 8000) -> np.ndarray:
    data, sr = sf.read(path, dtype="float64", always_2d=True)
    mono = data.mean(axis=1)
    hop = sr // 100  # 10 ms frames
    frames = len(mono) // hop
    return np.sqrt((mono[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1))


def main() -> int:
    out = Path(sys.argv[1])
    secret, stego, cover = out / "secret.wav", out / "stego.wav", out / "cover.wav"
    recovered = [p for p in (out / "recovered").iterdir() if p.is_file()]
    if len(recovered) != 1:
        print(f"FAIL: expected one recovered file, found {recovered}")
        return 1
    a, b = envelope(secret), envelope(recovered[0])
    n = min(len(a), len(b))
    # Opus has codec delay: compare loudness envelopes, allowing a shift of up to 50 ms.
    best = max(np.corrcoef(a[: n - 5], b[s : n - 5 + s])[0, 1] for s in range(6))
    info, cap = codec.read_capacity(cover)
    same_size = cover.stat().st_size == stego.stat().st_size
    print(
        f"cover:      {cover} ({info.duration_seconds:.0f} s, {info.channels} ch, "
        f"{info.bits_per_sample}-bit, holds up to {cap.max_payload_bytes:,} bytes)"
    )
    print(f"secret:     {secret} ({secret.stat().st_size:,} bytes)")
    print(f"stego:      {stego} (same size as the cover: {same_size})")
    print(f"recovered:  {recovered[0]} ({recovered[0].stat().st_size:,} bytes, Opus)")
    print(f"match:      loudness envelope correlation {best:.3f}")
    ok = best > 0.9 and same_size
    print("OK: the secret came back." if ok else "FAIL: the recovered secret does not match.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
