# The two commands of the README. Each installs what it needs into .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out/demo
PYTEST_ARGS ?=
export OMP_WAIT_POLICY ?= PASSIVE

GPU_CHECK_OUT ?= out/gpu_check

.PHONY: demo test venv colcon-test gpu-check clean

venv:
	@bash tools/bootstrap_venv.sh

demo: venv
	$(VENV)/bin/dgslrm demo --out $(OUT)

test: venv
	$(PY) -m pytest test -q -ra --durations=15 $(PYTEST_ARGS)
	@bash tools/colcon_check.sh

# CUDA tests, gsplat agreement, benchmarks on cuda, a short training chunk -> $(GPU_CHECK_OUT); on a
# machine without CUDA the same steps run on the CPU and the CUDA-only ones are reported as skipped.
gpu-check: venv
	PYTHON=$(PY) bash tools/gpu_check.sh --out $(GPU_CHECK_OUT)

colcon-test: venv
	@bash tools/colcon_check.sh

clean:
	rm -rf build install log out .colcon_ws
