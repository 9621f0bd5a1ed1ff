# Two entry points for a fresh machine: `make run` (the pipeline on the embedded default) and
# `make test` (the test suite). Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the releases these machines serve from local disk; any version
# the pyproject range allows works elsewhere.
TORCH := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean mutation

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro
	@echo; PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/m2m-pipeline report --which best_val
	@echo; PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/m2m-pipeline report --which last
	@echo; PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/m2m-pipeline report --ablations

test: install
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q

# Mutation testing of the core rules (by hand, not in CI: tens of minutes). One mutmut child and one
# thread, for a shared CPU; MODULES="acceptance plan" limits it to some modules (see docs/testing.md).
MODULES ?=
mutation: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/mutation.py \
		--max-children 1 --threads 1 $(if $(MODULES),--modules $(MODULES))

clean:
	rm -rf runs pools metrics plots reports predictions data/prepared
