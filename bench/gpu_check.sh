#!/usr/bin/env bash
# Run bench/gpu_check.py on a GPU machine whose Python already has jax with CUDA, flax and optax
# (this package need not be installed: gpu_check.py falls back to ./src). Elsewhere first:
#   pip install -e . "jax[cuda13]==0.10.2"   (or jax[cuda12]==0.10.2 for a CUDA 12 driver)
# Extra arguments go to gpu_check.py (e.g. --quick, --batches 32,64). Results: $OUT/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" timeout 480 "$PY" bench/gpu_check.py "$@"
