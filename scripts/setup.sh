#!/usr/bin/env bash
# Create .venv from scratch and install the five packages (editable) plus the test peers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q \
  -e packages/core -e packages/provider-spec -e packages/provider-pyimport \
  -e packages/provider-conda -e "packages/wrapper-kernel[plot]" \
  -e packages/jupyter-bridge \
  -r requirements-test.txt
