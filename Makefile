# Two commands: `make demo` and `make test`. Each sets everything up first (a .venv with torch and the project).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.regimescope-installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup browser demo test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (the CPU build pinned here) unless one is already importable, then the project, its test extras and
# the framework extras, so that the integration tests run instead of being skipped. Optuna (seconds to install) is
# in; Ray Tune (a 240 MB install, a minute to start a local instance) is not: `pip install -e ".[ray]"` runs its test.
$(STAMP): $(PY) pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,report,lightning,transformers,examples,optuna]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/regimescope demo

# Debian's chromium for the dashboard's browser tests (CI runs as root); where it cannot be installed those tests
# are skipped with the reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium could not be installed: the dashboard's browser tests will be skipped"

test: setup browser
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info runs
