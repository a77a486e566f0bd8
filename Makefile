# bayesmix: `make demo` and `make test` are the two entry points; both
# bootstrap .venv on first use with a Python >= 3.12 (scripts/find-python.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BAMBI_VENV := .venv-bambi
BAMBI_STAMP := $(BAMBI_VENV)/.installed
export MPLBACKEND := Agg

.PHONY: demo test lint typecheck pytest notebooks docs venv clean bench bench-env

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		interp=$$(scripts/find-python.sh) || exit 1; \
		echo "creating $(VENV) with $$interp"; \
		"$$interp" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m bayesmix.cli demo

lint: $(STAMP)
	$(VENV)/bin/ruff check bayesmix tests scripts
	$(VENV)/bin/ruff format --check bayesmix tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy bayesmix

# The calibration tests (marker sbc) run after the rest, outside xdist: their Dask LocalCluster
# takes both cores itself, and one cluster serves them all.
pytest: $(STAMP)
	$(PY) -m pytest -n 2 -m "not sbc" --durations=15
	$(PY) -m pytest -p no:xdist -m sbc --durations=10

notebooks: $(STAMP)
	BAYESMIX_FAST=1 $(PY) scripts/run-notebooks.py notebooks

docs: $(STAMP)
	$(VENV)/bin/sphinx-build -b html docs docs/_build/html

test: lint typecheck pytest notebooks
	BAYESMIX_FAST=1 $(VENV)/bin/sphinx-build -E -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) $(BAMBI_VENV) docs/_build .cache .pytest_cache .mypy_cache .ruff_cache

# The speed benchmark against bambi 0.21 (issue 5). bambi runs in its own environment,
# with every package but formulae pinned to the versions in .venv.
bench-env: $(BAMBI_STAMP)

$(BAMBI_STAMP): $(STAMP) benchmarks/requirements-bambi.txt
	@if [ ! -x $(BAMBI_VENV)/bin/python ]; then \
		interp=$$(scripts/find-python.sh) || exit 1; \
		"$$interp" -m venv $(BAMBI_VENV) || exit 1; \
	fi
	$(PY) -m pip freeze --exclude-editable | grep -viE '^(formulae|bayesmix)==' > $(BAMBI_VENV)/constraints.txt
	$(BAMBI_VENV)/bin/python -m pip install --quiet -c $(BAMBI_VENV)/constraints.txt -r benchmarks/requirements-bambi.txt
	touch $(BAMBI_STAMP)

bench: $(STAMP) $(BAMBI_STAMP)
	mkdir -p benchmarks/results
	BAMBI_PYTHON=$(BAMBI_VENV)/bin/python $(PY) benchmarks/speed_vs_bambi.py --timeout 900 \
		--out benchmarks/results/speed_vs_bambi.json --markdown benchmarks/results/speed_vs_bambi.md
