# Two entry points that work on a fresh clone: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ganad-installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup demo test data browser bench-classic docs clean

setup: $(STAMP) data browser

# torch is pinned to the CPU wheel that lies on this machine's disk; a bare
# `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q "torch==2.13.0" -e ".[test]"
	touch $(STAMP)

# Fashion-MNIST from Debian when apt is available; tests that need it skip otherwise.
data:
	@if [ ! -f $(FMNIST) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
		|| echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will skip"; \
	fi

# Chromium from Debian when apt is available, for tests/test_browser.py (it skips otherwise).
browser:
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "note: could not install chromium; browser tests will skip"; \
	fi

demo: setup
	$(VENV)/bin/ganad demo --out demo-report

test: setup
	$(PY) -m pytest -q -x --durations=10

# docs/parameters.md: every model's parameter table, generated from the code
# (tests/test_parameter_tables.py fails when it is stale).
docs: $(STAMP)
	$(PY) -m ganad.describe --markdown > docs/parameters.md.tmp && mv docs/parameters.md.tmp docs/parameters.md

bench-classic: setup
	$(VENV)/bin/ganad bench --models kde ocsvm iforest gmm --data fashion-mnist --protocol one-class --seeds 1

clean:
	rm -rf $(VENV) demo-report .pytest_cache
