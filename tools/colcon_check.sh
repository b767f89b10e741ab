#!/usr/bin/env bash
# A real `colcon build` + `colcon test` of the package in a throwaway workspace, so packaging
# mistakes (missing data files, entry points, package.xml) fail CI rather than a robot.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
VENV=${VENV:-.venv}
ws=$(mktemp -d "${TMPDIR:-/tmp}/dgslrm_colcon.XXXXXX")
trap 'rm -rf "$ws"' EXIT
mkdir -p "$ws/src/dgslrm_ros"
# Copy the tracked tree only (what a clone has), not the venv or build outputs.
git ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$ws/src/dgslrm_ros")
export PATH="$root/$VENV/bin:$PATH"
cd "$ws"
echo "[colcon] build in $ws"
colcon build --packages-select dgslrm_ros --event-handlers console_cohesion- > build.log 2>&1 || { cat build.log; exit 1; }
share=install/dgslrm_ros/share/dgslrm_ros
for f in package.xml launch/dgslrm.launch.py config/dgslrm.yaml config/dgslrm.rviz; do
  [[ -f "$share/$f" ]] || { echo "[colcon] install space lacks share/dgslrm_ros/$f"; exit 1; }
done
if [[ -d "$root/dgslrm_ros/checkpoints/small" ]]; then
  for f in model.safetensors config.json; do
    [[ -f "$share/checkpoints/small/$f" ]] || { echo "[colcon] install space lacks the shipped checkpoint $f"; exit 1; }
  done
fi
for exe in dgslrm dgslrm_node; do
  [[ -x install/dgslrm_ros/lib/dgslrm_ros/$exe ]] || { echo "[colcon] no executable lib/dgslrm_ros/$exe (ros2 run would fail)"; exit 1; }
done
echo "[colcon] test (packaging tests against the built package)"
colcon test --packages-select dgslrm_ros --event-handlers console_cohesion- \
  --pytest-args -m packaging -p no:cacheprovider > test.log 2>&1 || { cat test.log; exit 1; }
colcon test-result --verbose --test-result-base build/dgslrm_ros || { cat test.log; exit 1; }
echo "[colcon] build + test OK"
