#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, start the standalone stack, hide a spoken
# secret in a generated cover, get it back with the passphrase, and check it.
# Usage: scripts/demo.sh [OUTPUT_DIR]   (default: ./demo-output)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
out=$(realpath -m "${1:-demo-output}")
mkdir -p "$out"

echo "== starting the standalone stack"
subtone standalone up

echo "== making a 60 s cover and a spoken secret"
python - "$out" <<'PY'
import sys
from pathlib import Path
from subtone.stego import wav
out = Path(sys.argv[1])
wav.generate_cover(out / "cover.wav", 60.0, rate=44_100, channels=2, bits=16, seed=7)
PY
text="Meet me at the old lighthouse at nine. Bring the blue notebook."
if command -v espeak-ng >/dev/null; then
  espeak-ng -w "$out/secret.wav" "$text"
else
  echo "(espeak-ng not installed: using a tone as the secret)"
  python -c "import numpy as n,soundfile as s;t=n.arange(48000)/16000;s.write('$out/secret.wav',0.3*n.sin(2*n.pi*440*t),16000)"
fi
umask 077
printf '%s' "lighthouse-$(date +%s)-$RANDOM" > "$out/passphrase.txt"

echo "== encode"
# A run again makes a new cover and passphrase: its stego file replaces the last run's.
subtone encode "$out/cover.wav" "$out/secret.wav" -o "$out/stego.wav" --passphrase-file "$out/passphrase.txt" \
  --force
echo "== decode"
rm -rf "$out/recovered" && mkdir -p "$out/recovered"
subtone decode "$out/stego.wav" -o "$out/recovered" --passphrase-file "$out/passphrase.txt"

echo "== check"
python scripts/check_demo.py "$out"
