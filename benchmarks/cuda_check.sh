#!/usr/bin/env bash
# The checks that need a GPU, in one go (CI has none): the CUDA tests, what S seeds cost
# against one, the side-by-side speed table, and the BatchNorm study end to end.
#   bash benchmarks/cuda_check.sh [OUT_DIR]      # from the repository root, rlcheck importable
set -uo pipefail
OUT=${1:-rlcheck-cuda-check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
$PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" || exit 2
timeout 240 $PY -m pytest -p no:cacheprovider -o addopts="" tests/test_cuda.py -q 2>&1 | tee "$OUT/pytest.log" | tail -3
timeout 150 $PY benchmarks/speed.py --device cuda --seed-sweep 1,5,25 --threads 1 2>&1 | tee "$OUT/sweep.log"
timeout 150 $PY -m rlcheck --device cuda --out "$OUT/study" 2>&1 | tail -30 | tee "$OUT/study.log"
