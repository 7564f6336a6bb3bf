#!/usr/bin/env bash
# The main job, once set up: list the kernels found here and run code on one.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== kernel-mgmt list"
.venv/bin/kernel-mgmt list
echo "== kernel-mgmt run pyimport/kernel -c 'print(6 * 7)'"
.venv/bin/kernel-mgmt run pyimport/kernel -c 'import sys; print(6 * 7, "from", sys.executable)'
