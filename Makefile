# Two commands: `make demo` and `make test`. Each sets everything up first (a .venv with torch and the project).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.regimescope-installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (the CPU build pinned here) unless one is already importable, then the project and its test extras.
$(STAMP): $(PY) pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,report]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/regimescope demo

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info runs
