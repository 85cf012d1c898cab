# Two entry points (see README): `make demo` and `make test`. Both create .venv and install
# everything first; torch==2.13.0 is installed on its own first because that spec takes the
# CPU build on this machine's disk instead of a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wavecodec demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	cd benchmarks && ../$(PY) wpt_speed.py && ../$(PY) coder_sizes.py && ../$(PY) image_rd.py && ../$(PY) convert_speed.py --copies 16

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
