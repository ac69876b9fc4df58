#!/usr/bin/env bash
# The scaling table (bench/scaling.py) on a GPU machine: 1, 2 and 4 GPUs where present (fewer are
# skipped), device kind printed. Needs JAX's CUDA build: pip install "jax[cuda12]>=0.10.2,<0.11".
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi -L
python -c "import jax; print('jax', jax.__version__, jax.devices())"
python bench/scaling.py --platform gpu --devices 1 2 4 --rows "${ROWS:-8192}" "$@"
