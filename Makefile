# Two front-door targets: `make run` (set up + upscale the bundled sample) and `make test`.
# Set-up is idempotent: the venv is rebuilt only when pyproject.toml changes.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.srlab-installed

.PHONY: run test lint setup clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,opencv,web,tune,onnx]'
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/srlab demo

lint: $(STAMP)
	$(BIN)/ruff check src tests

test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q -x --durations=10

clean:
	rm -rf $(VENV)
