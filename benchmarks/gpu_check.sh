#!/usr/bin/env bash
# The prepared GPU check of issue 9 (fits in 8 minutes on one H200): prepare CIFAR-10-LT (rho = 100),
# time g, the warm f and a few deferred epochs of ERM, DRS and M2m at full resolution and batch,
# translations/s of the reference and the library on the GPU, bf16 autocast's accept decisions
# against fp32's; writes gpu_check.json (and translate_speed_bs*.json) into $OUT.
#
#   benchmarks/gpu_check.sh              # on the lent machine: carry/ holds wheels/ and cifar10-jpg.tar.gz
#   benchmarks/gpu_check.sh --dry-run    # here or in CI: the same code on the CPU at tiny sizes (< 60 s idle)
#
# Needs only PYTHONPATH=. plus the carried wheels (benchmarks/fetch_wheels.sh); docs/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-carry}
DRY=0
EXTRA=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    *) EXTRA+=("$arg") ;;
  esac
done
if [ "$DRY" = 1 ]; then
  PYTHON=${PYTHON:-.venv/bin/python}
  OUT_DIR=${OUT:-runs/gpu_check_dry}
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
  PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" benchmarks/gpu_check.py check --dry-run \
    --out "$OUT_DIR" --work "$WORK" "${EXTRA[@]+"${EXTRA[@]}"}"
  exit
fi
PYTHON=${PYTHON:-python3}
OUT_DIR=${OUT:?set OUT to the folder that comes back (the device tool sets it)}
if ls "$CARRY"/wheels/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$CARRY"/wheels/*.whl
  export PYTHONPATH=".:/tmp/site"
else
  echo "warning: no wheels in $CARRY/wheels (benchmarks/fetch_wheels.sh); using what is installed" >&2
  export PYTHONPATH="."
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
set -o pipefail
"$PYTHON" benchmarks/gpu_check.py check --out "$OUT_DIR" --work /tmp/m2m-gpu-check \
  --archive "$CARRY/cifar10-jpg.tar.gz" --threads 16 "${EXTRA[@]+"${EXTRA[@]}"}" 2>&1 | tee "$OUT_DIR/gpu_check.log"
