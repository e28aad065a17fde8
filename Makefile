# Two commands on a fresh machine: `make run` (the help line, runtime dependencies only) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# One stamp per set of dependencies: `make run` after `make test` installs nothing more, and
# `make test` after `make run` adds only the test extras.
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: install run test fuzz bench mutate clean

$(PY):
	@echo "Installing the help line's dependencies into $(VENV) (first run only, about a minute)…"
	@$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(PY)
	@$(PIP) -e .
	@touch $@

# The test extras include everything `make run` needs.
$(TEST_STAMP): pyproject.toml | $(PY)
	@$(PIP) -e '.[test]'
	@touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

# PORT (`make run PORT=5001`, or in the environment) is read by `helpline run` itself.
run: $(RUN_STAMP)
	@$(VENV)/bin/helpline run

test: $(TEST_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The long fuzzing run of tests/fuzz (issue 13): FUZZ_SECONDS in all, shared by its tests (about 10 minutes).
FUZZ_SECONDS ?= 600
fuzz: $(TEST_STAMP)
	HYPOTHESIS_PROFILE=fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -p no:cacheprovider tests/fuzz $(PYTEST_ARGS)

bench: $(TEST_STAMP)
	$(PY) -m tests.perf.bench

# Mutation testing of the safety-critical modules (issue 18), scoped to the fast tests that cover each; not in `make test`.
mutate: $(TEST_STAMP)
	$(PIP) -e '.[test,mutate]'
	$(PY) -m tests.mutation

clean:
	rm -rf $(VENV) instance .pytest_cache
