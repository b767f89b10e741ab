#!/usr/bin/env bash
# GPU readiness in one command: the CUDA tests, the gsplat agreement test, `dgslrm bench` on cuda
# (renderer, model per preset, node, ROS messages) and a short training chunk, every figure and log into
# one output folder, a PASS/FAIL/SKIP table at the end (also in OUT/summary.txt).
#
#   tools/gpu_check.sh [--out DIR] [--smoke]        (or: make gpu-check GPU_CHECK_OUT=DIR)
#
# Without CUDA every step still runs on the CPU where it can (benchmarks, training) and the CUDA-only
# steps are reported as SKIP, so the script is exercised on every machine and cannot rot. --smoke runs
# the cheapest version of each step (the test suite runs it on CPU). Exit status 1 if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=out/gpu_check
SMOKE=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (expected --out DIR or --smoke)" >&2; exit 2 ;;
  esac
done
PY=${PYTHON:-python}
if [[ -x .venv/bin/python && -z "${PYTHON:-}" ]]; then PY=.venv/bin/python; fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: > "$OUT/summary.txt"
FAILED=0

CUDA=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if [[ "$CUDA" == 1 ]]; then
  DEVICE=cuda
  "$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}')" > "$OUT/device.txt"
else
  DEVICE=cpu
  "$PY" -c "import torch; print(f'no CUDA: CPU ({torch.get_num_threads()} threads), torch {torch.__version__}')" > "$OUT/device.txt"
fi
echo "[gpu_check] $(cat "$OUT/device.txt"); output in $OUT"

# step NAME NEEDS_CUDA(0|1) COMMAND...: runs COMMAND with its log in OUT/NAME.log, records the outcome.
step() {
  local name=$1 needs_cuda=$2; shift 2
  if [[ "$needs_cuda" == 1 && "$CUDA" != 1 ]]; then
    printf '%-20s SKIP  no CUDA device\n' "$name" | tee -a "$OUT/summary.txt"
    return
  fi
  echo "[gpu_check] $name: $*"
  local start=$SECONDS
  if "$@" > "$OUT/$name.log" 2>&1; then
    printf '%-20s PASS  %4d s  %s\n' "$name" $((SECONDS - start)) "$OUT/$name.log" | tee -a "$OUT/summary.txt"
  else
    FAILED=1
    printf '%-20s FAIL  %4d s  %s\n' "$name" $((SECONDS - start)) "$OUT/$name.log" | tee -a "$OUT/summary.txt"
    tail -n 20 "$OUT/$name.log" | sed 's/^/    /'
  fi
}

QUICK=()
[[ "$SMOKE" == 1 ]] && QUICK=(--quick)
# Only the files that hold GPU tests: collecting the whole suite imports rclpy and rosbags, which a bare
# GPU image (torch + CUDA, no ROS) lacks, and one collection error stops pytest.
mapfile -t GPU_TEST_FILES < <(grep -rlE 'pytest\.mark\.gpu' test --include='test_*.py' | sort)
step cuda_tests 1 "$PY" -m pytest "${GPU_TEST_FILES[@]}" -m gpu -q -ra -p no:cacheprovider --junitxml "$OUT/cuda_tests.xml"
step gsplat_agreement 1 "$PY" -m pytest test/render/test_gsplat_agreement.py -q -ra -p no:cacheprovider
if [[ "$SMOKE" == 1 ]]; then  # the cheapest real run of the benchmark command
  step bench 0 "$PY" -m dgslrm_ros.cli.main bench --ros --quick --device "$DEVICE" --json "$OUT/bench.json"
else
  step bench 0 "$PY" -m dgslrm_ros.cli.main bench --renderer --model --node --ros "${QUICK[@]}" --device "$DEVICE" \
    --json "$OUT/bench.json"
fi
if [[ "$SMOKE" == 1 ]]; then
  TRAIN=(--preset tiny --steps 1 --batch-size 1 --image-size 32 --perceptual none)
else
  TRAIN=(--preset small --steps 50 --batch-size 2 --eval-every 50 --eval-scenes 2)
fi
step train_chunk 0 "$PY" -m dgslrm_ros.cli.main train "${TRAIN[@]}" --device "$DEVICE" --workers 0 --no-progress \
  --out "$OUT/train"

echo "[gpu_check] summary ($OUT/summary.txt):"
cat "$OUT/summary.txt"
exit $FAILED
