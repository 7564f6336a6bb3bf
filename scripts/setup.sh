#!/usr/bin/env bash
# Create .venv from scratch and install every package (editable) plus the test peers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q \
  -e packages/core -e packages/provider-spec -e packages/provider-pyimport \
  -e packages/provider-conda -e packages/provider-gateway -e "packages/wrapper-kernel[plot,repl]" \
  -e packages/jupyter-bridge \
  -r requirements-test.txt
# Jupyter Enterprise Gateway (a test peer of the gateway provider) pins jupyter_client<7,
# jupyter_server<2 and pyzmq<25, which cannot share .venv: it gets a venv of its own.
if [ ! -x .venv-eg/bin/jupyter-enterprisegateway ]; then
  "$PYTHON" -m venv .venv-eg
  .venv-eg/bin/python -m pip install -q --upgrade pip
  .venv-eg/bin/python -m pip install -q "jupyter-enterprise-gateway>=3.2,<4"
fi

# The JupyterLab browser test (tests/jupyter_bridge/e2e) drives Debian's Chromium: install it
# when it is missing and we can (root with apt); Playwright's own browser download cannot work here.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get install -y -qq chromium >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
