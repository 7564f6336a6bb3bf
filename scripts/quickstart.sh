#!/usr/bin/env bash
# Set everything up, list the kernels found on this machine, and run code on one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/demo.sh
