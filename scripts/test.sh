#!/usr/bin/env bash
# Run the whole test suite (sets up .venv first when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
