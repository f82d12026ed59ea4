# Two commands: `make demo` and `make test`. Each sets everything up first (a .venv with torch and the project).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.regimescope-installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup browser demo test docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch first (the CPU build pinned here) unless one is already importable, then the project, its test extras, the
# framework extras (so that the integration tests run instead of being skipped), the docs tool (the tests build
# the docs), Optuna and Ray Tune (the sweep's engines: Ray is about 13 s to install and its tests start local
# instances, about a minute of the run). setuptools notes every editable install of a layout without src/
# ("Editable installation. Please be careful with folders ... named as your package"): that information only, and
# no other warning, is silenced.
$(STAMP): $(PY) pyproject.toml
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	PYTHONWARNINGS="ignore:Editable installation" \
		$(PY) -m pip install --quiet -e ".[test,report,lightning,transformers,examples,docs,optuna,ray]"
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

# Two pytest workers: each test runs on one torch thread (tests/conftest.py), so one worker leaves a 2-core CI
# machine's second core idle; a test file's tests stay on one worker, so its module fixtures run once.
test: setup browser
	$(PY) -m pytest -q -n 2 --dist loadfile

# The documentation site (README.md and docs/) into site/, strict: any warning fails (docs/contributing.md).
docs: setup
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) build dist *.egg-info runs site
