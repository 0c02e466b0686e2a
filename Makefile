# Two commands do everything on a fresh machine (Python 3.11 as python3):
#   make demo   set up .venv and anonymize the bundled example into out/
#   make test   set up .venv, check lint, format, types and import layers, and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test check clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip check
	touch $@

demo: setup
	$(VENV)/bin/lookalike anonymize examples/group.jpg -o out --overwrite --report out/report.json
	@echo "anonymized image: out/group.jpg   per-face report: out/report.json"

# lint, format, types and the import layers (pyproject.toml), then the tests
check: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: check
	$(PY) -m pytest

clean:
	rm -rf $(VENV) out .pytest_cache
