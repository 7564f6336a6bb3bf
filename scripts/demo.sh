#!/usr/bin/env bash
# The main job, once set up: list the kernels found here and run code on one.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== kernel-mgmt list"
.venv/bin/kernel-mgmt list
# Each command is echoed exactly as it runs (the code also says which Python ran it).
code='import sys; print(6 * 7, "from", sys.executable)'
echo "== kernel-mgmt run pyimport/kernel -c '$code'"
.venv/bin/kernel-mgmt run pyimport/kernel -c "$code"
