#!/usr/bin/env bash
# Set everything up, list the kernels found on this machine, and run code on one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== kernel-mgmt list"
.venv/bin/kernel-mgmt list
echo "== kernel-mgmt run pyimport/kernel -c 'print(6 * 7)'"
.venv/bin/kernel-mgmt run pyimport/kernel -c 'import sys; print(6 * 7, "from", sys.executable)'
