#!/usr/bin/env bash
# Set up everything and run every check: lint, types, and the whole test suite on real services.
# Usage: scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
ruff check .
ruff format --check .
mypy
lint-imports
exec pytest "$@"
