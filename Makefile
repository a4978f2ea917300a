# Two front-door targets: `make run` (set up + upscale the bundled sample) and `make test`.
# Set-up is idempotent: the venv is (re)built only when pyproject.toml or the lock changes.
#
# Versions: requirements.lock pins every package of every extra (dev, opencv, web, tune, onnx)
# at the version the suite was last run with, each with its sha256 hashes, so a fresh machine
# installs what was tested, not whatever the index serves that day. pyproject.toml keeps the
# honest ranges. torch is the one package outside the lock: `pip install torch==2.13.0` takes
# the CPU build that lies on this machine's disk (a lock pin would point at PyPI's multi-GB
# CUDA build); it goes in first without its dependencies, which the lock pins (pip check and
# tools/lockfile.py check verify the result). `make lock` is the one deliberate refresh.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.srlab-installed
LOCK := requirements.lock
# installed --no-deps after the lock: packages whose declared dependencies must stay out
NODEPS := requirements-nodeps.lock
TORCH := torch==2.13.0
PIP_VERSION := 26.3
# pip-compile runs in its own venv so that pip-tools and its dependencies stay out of .venv
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
# `make lock` moves every pin to the newest release pyproject.toml admits; `make lock
# LOCK_FLAGS=` keeps the current pins and only adds or drops what pyproject.toml changed
LOCK_FLAGS ?= --upgrade

.PHONY: run test lint setup lock check-lock clean

$(STAMP): pyproject.toml $(LOCK) $(NODEPS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q pip==$(PIP_VERSION)
	$(BIN)/pip install -q --no-deps $(TORCH)
	$(BIN)/pip install -q --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps --require-hashes -r $(NODEPS)
	$(BIN)/python tools/lockfile.py extras | xargs -r $(BIN)/pip uninstall -q -y
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python tools/lockfile.py pipcheck
	$(BIN)/python tools/lockfile.py check
	touch $(STAMP)

setup: $(STAMP)

# pip freeze of .venv == the lock (plus torch and srlab itself), nothing more, nothing less
check-lock: $(STAMP)
	$(BIN)/python tools/lockfile.py check

# Refresh the lock on purpose: resolve pyproject.toml's ranges (all extras) with pip-compile
# (pip-tools, hashes generated), then run `make test` and commit the lock with what it tested.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || ($(PY) -m venv $(LOCK_VENV) \
		&& $(LOCK_VENV)/bin/pip install -q pip==$(PIP_VERSION) $(PIP_TOOLS))
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile -q $(LOCK_FLAGS) \
		--all-extras --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --unsafe-package torch -o $(LOCK) pyproject.toml
	echo "# (torch: installed before this file by make, pip install --no-deps $(TORCH);" \
	     "its dependencies are pinned above)" >> $(LOCK)
	$(LOCK_VENV)/bin/python tools/lockfile.py nodeps
	@if grep -qiE '^(nvidia|triton|cuda)' $(LOCK); then \
		echo "$(LOCK) pins CUDA packages: torch resolved to PyPI's CUDA build, not the" \
		     "CPU file on disk (is /opt/wheels in pip's find-links?)" >&2; exit 1; fi

run: $(STAMP)
	$(BIN)/srlab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q -rs --durations=10

clean:
	rm -rf $(VENV)

# Mutation testing, not in CI (tens of minutes on 2 cores): mutmut ([tool.mutmut] in
# pyproject.toml) writes mutants of metrics, resize and tiling under mutants/, runs the tests
# that reach each one and lists the survivors; a rerun keeps the verdicts of unchanged code.
.PHONY: mutate
mutate: $(STAMP)
	nice -n 15 $(BIN)/mutmut run --max-children 1
	$(BIN)/mutmut results
