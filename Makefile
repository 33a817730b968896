# Two entry points: `make demo` and `make test`. Both build .venv from a bare python3.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PLUGINS := plugins/dubu plugins/csc_social plugins/sbsys plugins/dagster

.PHONY: demo test lint types unit venv bench clean

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(addprefix -e ,$(PLUGINS))
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/bridge demo

lint: $(STAMP)
	$(BIN)/ruff check --no-cache src plugins tests benchmarks

types: $(STAMP)
	$(BIN)/mypy src/bridge plugins/sbsys/src/bridge_sbsys plugins/dubu/src/bridge_dubu plugins/csc_social/src/bridge_csc_social plugins/dagster/src/bridge_dagster

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint types unit

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) bridge-demo .pytest_cache .mypy_cache .ruff_cache
