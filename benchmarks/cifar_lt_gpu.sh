#!/usr/bin/env bash
# The full 200-epoch CIFAR-LT-10 (rho = 100) runs of one seed on the lent GPU: g, the warm f, ERM,
# DRS, M2m, then the LDAM warm-up, LDAM-DRW and LDAM-M2m while time is left. Every job resumes
# from its run folder, so the runs of a seed go on over several 10-minute device commands:
# the run folders travel as carry/state/seed<S>.tar.part-* and come back in $OUT the same way.
#
#   benchmarks/cifar_lt_gpu.sh --seed 0 [--budget 540]     # on the lent machine (docs/gpu.md)
#   benchmarks/cifar_lt_gpu.sh --dry-run                   # CPU, tiny data, 2 epochs
#
# After a call: copy the returned seed<S>.tar.part-* files into carry/state/ (replacing the old
# ones) and call again until cifar_lt_gpu_seed<S>.json lists every job with metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-carry}
SEED=0
BUDGET=540
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) SEED=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    *) echo "error: unknown argument $1 (use --seed S, --budget SECONDS, --dry-run)" >&2; exit 2 ;;
  esac
done
case "$SEED$BUDGET" in *[!0-9]*) echo "error: --seed and --budget take non-negative integers" >&2; exit 2 ;; esac

RUNS=$(mktemp -d)
WORK=$(mktemp -d)
trap 'rm -rf "$RUNS" "$WORK"' EXIT
if [ "$DRY" = 1 ]; then
  PYTHON=${PYTHON:-.venv/bin/python}
  OUT_DIR=${OUT:-runs/cifar_lt_gpu_dry}
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
  export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
  ARGS=(--dry-run)
else
  PYTHON=${PYTHON:-python3}
  OUT_DIR=${OUT:?set OUT to the folder that comes back (the device tool sets it)}
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$CARRY"/wheels/*.whl
  export PYTHONPATH=".:/tmp/site"
  ARGS=(--archive "$CARRY/cifar10-jpg.tar.gz" --threads 16)
fi
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
# the state of earlier calls
if ls "$CARRY/state/seed$SEED.tar.part-"* >/dev/null 2>&1; then
  cat "$CARRY/state/seed$SEED.tar.part-"* | tar xf - -C "$RUNS"
  echo "resumed from $(ls "$CARRY/state/seed$SEED.tar.part-"* | wc -l) part(s): $(ls "$RUNS/seed$SEED" | tr '\n' ' ')"
fi
# SIGINT at the budget: the job stops between two Python statements and releases its locks; the
# epoch in progress is lost, every finished epoch is in last.pt
status=0
timeout --signal=INT "$BUDGET" "$PYTHON" benchmarks/gpu_check.py full --runs "$RUNS" --seed "$SEED" \
  --out "$OUT_DIR" --work "$WORK" "${ARGS[@]}" 2>&1 | tee "$OUT_DIR/cifar_lt_gpu_seed$SEED.log" || status=$?
# finished f runs keep their metrics, not their weights; g and the warm runs stay for later jobs
for run in "$RUNS/seed$SEED"/*/; do
  name=$(basename "$run")
  case "$name" in g|warm|warm-ldam) continue ;; esac
  if [ -f "$run/metrics.json" ]; then rm -f "$run"/*.pt; fi
done
tar cf - -C "$RUNS" "seed$SEED" | split -b 15m - "$OUT_DIR/seed$SEED.tar.part-"
ls -la "$OUT_DIR"
exit $status
