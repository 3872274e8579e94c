#!/bin/sh
# WAVs written to a pipe by real tools, which cannot seek back to fill in their sizes:
# sox leaves 0x7FFFF000, ffmpeg 0xFFFFFFFF. Regenerate with `sh make.sh` (sox and ffmpeg from apt).
set -eu
cd "$(dirname "$0")"
sox -n -b 16 -t wav - synth 0.05 sine 440 | cat > sox_pcm16_mono.wav
sox -n -b 24 -c 2 -t wav - synth 0.05 sine 440 sine 660 | cat > sox_pcm24_stereo.wav
sox -n -b 32 -t wav - synth 0.05 sine 440 | cat > sox_pcm32_extensible.wav
ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "sine=frequency=440:duration=0.05" \
    -fflags +bitexact -flags:a +bitexact -f wav - | cat > ffmpeg_pcm16_mono.wav
ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i "sine=frequency=440:duration=0.05" \
    -ac 2 -c:a pcm_s24le -fflags +bitexact -flags:a +bitexact -f wav - | cat > ffmpeg_pcm24_stereo.wav
