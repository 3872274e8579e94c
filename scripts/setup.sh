#!/usr/bin/env bash
# Set up Subtone on a Debian/Ubuntu machine: system packages, a virtual environment, the project.
# Idempotent: a second run installs nothing new. Usage: scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: PortAudio for sounddevice, PulseAudio for the virtual microphone in tests,
# steghide for the benchmark's peer, espeak-ng/sox to make a spoken demo secret, RabbitMQ and
# Redis for the stack, docker-compose to validate the compose files offline, binutils (objdump,
# for PyInstaller) and desktop-file-utils to build and check the desktop bundle; Xvfb, the real
# X server the desktop tests render every screen on (tests/desktop/xserver.py).
APT_PACKAGES=(python3-venv libportaudio2 pulseaudio pulseaudio-utils steghide sox espeak-ng
  rabbitmq-server redis-server docker-compose libegl1 libgl1 libxkbcommon0 libfontconfig1
  libdbus-1-3 binutils desktop-file-utils prometheus xvfb
  # what Qt's xcb platform plugin links against; desktop/app/platform_check.py checks for them
  libxcb1 libx11-6 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1
  libxcb-util1 libxcb-xfixes0 libxcb-xkb1 libxkbcommon-x11-0)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
# Re-install only when pyproject.toml changed since the last successful install.
stamp=.venv/.subtone-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[server,desktop,dev]'
  touch "$stamp"
fi

# checkov (tests/deploy/test_checkov.py) pins boto3 and packaging<24, which the project's own
# dependencies outgrow: it gets a virtual environment of its own inside .venv, not the dev extra.
CHECKOV_VERSION=3.3.30
checkov_stamp=.venv/checkov/.subtone-checkov-$CHECKOV_VERSION
if [[ ! -f $checkov_stamp ]]; then
  .venv/bin/python -m venv .venv/checkov
  .venv/checkov/bin/python -m pip install -q "checkov==$CHECKOV_VERSION"
  touch "$checkov_stamp"
fi
