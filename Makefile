# `make run` and `make test` do all set-up themselves on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= default
OUT ?= runs/$(PRESET)
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: run test setup data lint bench clean mutation

run: setup data
	$(VENV)/bin/mistrust run --preset $(PRESET) --out $(OUT)

test: setup
	$(VENV)/bin/pytest

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Fashion-MNIST: Debian's package where we are root with apt; otherwise the run
# itself finds MISTRUST_DATA / --data-root or downloads through torchvision.
data:
	@if [ ! -f $(FASHION) ] && [ -z "$$MISTRUST_DATA" ] && [ "$$(id -u)" = 0 ] \
	    && command -v apt-get >/dev/null; then \
	  echo "installing Debian's dataset-fashion-mnist"; \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) || \
	  echo "apt-get failed; the run will try MISTRUST_DATA or a torchvision download"; \
	fi

# ruff, then the import layers of .importlinter (docs/ARCHITECTURE.md)
lint: setup
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/ruff format --check src tests benchmarks examples
	$(VENV)/bin/lint-imports --no-logo

bench: setup data
	$(PY) benchmarks/run_all.py

# Mutation testing of the protocol modules against the fast protocol tests
# (docs/TESTING.md). Narrow it with e.g. MUTATE='mistrust.pipeline.evaluate*'; JOBS=1 runs one
# mutant at a time (the default is one per CPU). Each mutant runs in a process forked from
# mutmut's, which has used OpenMP threads: one thread keeps a forked child from waiting
# forever on the parent's thread pool (a timeout instead of a result).
JOBS ?=
MUTATE ?= mistrust.pipeline.evaluate* mistrust.data.evalsets* mistrust.data.perturb* \
	mistrust.data.splits* mistrust.pipeline.posthoc* mistrust.present.results* mistrust.present.tables* \
	mistrust.study.reference*
mutation: setup
	rm -rf mutants
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run $(if $(JOBS),--max-children $(JOBS)) $(foreach m,$(MUTATE),'$(m)')
	$(VENV)/bin/mutmut results

clean:
	rm -rf runs .pytest_cache mutants
