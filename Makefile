# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz bench mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/helpline run

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# The long fuzzing run of tests/fuzz (issue 13): FUZZ_SECONDS in all, shared by its tests (about 10 minutes).
FUZZ_SECONDS ?= 600
fuzz: install
	HYPOTHESIS_PROFILE=fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -p no:cacheprovider tests/fuzz $(PYTEST_ARGS)

bench: install
	$(PY) -m tests.perf.bench

# Mutation testing of the safety-critical modules (issue 18), scoped to the fast tests that cover each; not in `make test`.
mutate: install
	$(PY) -m pip install --quiet -e '.[test,mutate]'
	$(PY) -m tests.mutation

clean:
	rm -rf $(VENV) instance .pytest_cache
