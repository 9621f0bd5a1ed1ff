#!/usr/bin/env bash
# Download, into the ignored carry folder, exactly the wheels the lent GPU machine lacks (its image
# has torch, numpy, scipy, scikit-learn, xarray, typer, pyyaml, pillow, matplotlib, tqdm, ...; see
# /work/.library/device/KINDS.md): zarr, dask, distributed, imbalanced-learn and those of their
# dependencies a plain torch install does not have. Versions are the ones this checkout's .venv
# runs, for CPython 3.12 on x86-64 manylinux (the device's Python).
#
#   benchmarks/fetch_wheels.sh            # -> carry/wheels/*.whl
#   CARRY=other benchmarks/fetch_wheels.sh
#
# The device command installs them with:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site carry/wheels/*.whl && export PYTHONPATH=.:/tmp/site
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=${CARRY:-carry}
PYTHON=${PYTHON:-.venv/bin/python}
DEST="$CARRY/wheels"
# what the project imports that the device image lacks, and their missing dependencies
PACKAGES=(zarr donfig google-crc32c numcodecs dask partd locket distributed tblib tornado zict
          imbalanced-learn sklearn-compat)
mkdir -p "$DEST"
pins=()
for name in "${PACKAGES[@]}"; do
  version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") || {
    echo "error: $name is not installed in $PYTHON's environment; run make install first" >&2; exit 2; }
  pins+=("$name==$version")
done
echo "fetching ${pins[*]}"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "${pins[@]}"
# one version of each: a stale wheel of another version would stop the install on the device
for name in "${PACKAGES[@]}"; do
  stem=$(echo "$name" | tr '-' '_')
  n=$(ls "$DEST" | grep -i -c "^${stem}-" || true)
  if [ "$n" != 1 ]; then echo "error: $DEST holds $n wheels of $name; remove the stale ones" >&2; exit 2; fi
done
du -sh "$DEST"
