# The two README commands: `make demo` (launch the Gradio app on the demo bundle) and `make test` (run the tests).
# Both create or update the virtual environment first, so they work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 7860

.PHONY: env browser demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[all,test]"
	touch $(STAMP)

env: $(STAMP)

# Debian's Chromium drives the browser tests (Playwright with executable_path; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: env
	$(PY) -m toolkit demo --bundle demo --port $(PORT)

lint: env
	$(VENV)/bin/ruff check .

test: env browser lint
	$(PY) -m pytest -q -n 2 --dist loadgroup --run-slow

bench: env
	$(PY) -m toolkit bench --json

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
