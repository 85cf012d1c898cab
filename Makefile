# Two entry points (see README): `make demo` and `make test`. Both create .venv and install
# everything first; torch==2.13.0 is installed on its own first because that spec takes the
# CPU build on this machine's disk instead of a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BASE := $(VENV)/.installed-base
STAMP := $(VENV)/.installed

.PHONY: demo test test-all bench bench-walloc experiments setup clean

setup: $(STAMP)

# the library alone (what the demo needs), then the test extras on top
$(BASE): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .
	touch $(BASE)

$(STAMP): $(BASE)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(BASE)
	$(VENV)/bin/wavecodec demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	cd benchmarks && ../$(PY) wpt_speed.py && ../$(PY) coder_sizes.py && ../$(PY) image_rd.py && ../$(PY) convert_speed.py --copies 16
	cd benchmarks && ../$(PY) audio_rd.py && ../$(PY) beyond_rgb.py && ../$(PY) data_path.py

# The reference architecture (pip walloc 1.2.1) needs diffusers: its own environment. Trains both
# sides with the same recipe and budget (2,000 steps), then evaluates them in one process.
MATCH := --config recipes/rgb-16x.toml --set steps=2000 --set codec.decoder_width=80 --quiet
bench-walloc: $(STAMP)
	$(PYTHON) -m venv .venv-walloc
	.venv-walloc/bin/pip install -q torch==2.13.0
	.venv-walloc/bin/pip install -q -e '.[bench]' walloc==1.2.1 einops diffusers
	$(VENV)/bin/wavecodec train $(MATCH) --run-dir runs/match-80x4 --set codec.name=rgb-16x-80x4
	$(VENV)/bin/wavecodec export runs/match-80x4 -o runs/match-80x4/model.safetensors --fit-batches 32 --force
	$(VENV)/bin/wavecodec train --config recipes/rgb-16x-rate.toml --quiet
	$(VENV)/bin/wavecodec export runs/rgb-16x-rate -o runs/rgb-16x-rate/model.safetensors --name rgb-16x-rate --fit-batches 32 --force
	.venv-walloc/bin/python benchmarks/walloc_reference.py --recipe recipes/rgb-16x.toml --nd 64 --steps 2000 \
		--ours runs/match-80x4/model.safetensors runs/rgb-16x-rate/model.safetensors --our-steps 1 2 4 8 16 24

# Compressed-domain learning experiments (need dataset-fashion-mnist and the training wallpapers).
experiments: $(STAMP)
	$(PY) experiments/_fmnist.py runs/fmnist/png
	$(PY) experiments/fashion_mnist.py
	$(PY) experiments/colorize.py --steps 1000

clean:
	rm -rf $(VENV) .venv-walloc build dist src/*.egg-info .pytest_cache
