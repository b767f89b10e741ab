# The two commands of the README. Each installs what it needs into .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
OUT ?= out/demo
PYTEST_ARGS ?=
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test venv colcon-test clean

venv:
	@bash tools/bootstrap_venv.sh

demo: venv
	$(VENV)/bin/dgslrm demo --out $(OUT)

test: venv
	$(PY) -m pytest test -q -ra --durations=15 $(PYTEST_ARGS)
	@bash tools/colcon_check.sh

colcon-test: venv
	@bash tools/colcon_check.sh

clean:
	rm -rf build install log out .colcon_ws
