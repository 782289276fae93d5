# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Every step is skipped when its result is already there, so repeating them is cheap.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SCALE  ?= 4
PRESET ?= archive-photo
# the night to run (default: yesterday, UTC) and an optional folder of your own scans
DATE   ?=
RUN_IN ?=

.PHONY: run standalone test bench bench-gpu venv weights chromium services imagemagick lock clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -c 'import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "enhance_ops_plugins.pth").write_text("$(CURDIR)/plugins\n")'
	touch $(STAMP)

weights: $(STAMP)
	$(BIN)/python -m enhance_ops fetch-models

# One night of the real pipeline: SeaweedFS on loopback, the sample scans (or RUN_IN) in
# incoming/<DATE>/, the nightly DAG through `airflow dags test`, results copied to out/archive/.
run: weights
	$(BIN)/python -m enhance_ops nightly-demo --out out --preset $(PRESET) --scale $(SCALE) \
	  $(if $(DATE),--date $(DATE)) $(if $(RUN_IN),--scans $(RUN_IN))

# The Airflow UI (airflow standalone) over the same DAG and a local S3 server; Ctrl-C stops it.
standalone: weights
	$(BIN)/python -m enhance_ops standalone --out out $(if $(DATE),--date $(DATE))

# Headless Chromium checks the HTML report in the tests (Debian package; needs root or sudo).
chromium:
	@command -v chromium >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# PostgreSQL and Redis for the distributed (Celery) test (Debian packages; needs root or sudo).
services:
	@{ command -v redis-server >/dev/null && command -v initdb >/dev/null; } || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server postgresql >/dev/null; }

# ImageMagick writes the Photoshop documents the tests read (Debian package; needs root or sudo). Debian
# names its command convert-im6.q16 too: another `convert` may stand first on the PATH.
imagemagick:
	@{ command -v convert-im6.q16 >/dev/null || command -v magick >/dev/null; } || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq imagemagick >/dev/null; }

test: weights chromium services imagemagick
	$(BIN)/python -m pytest -q tests

# Speed and quality benchmarks; results in bench/results/*.json, their tables in bench/results/tables.md,
# summarised in docs/benchmarks.md.
bench: weights imagemagick
	$(BIN)/python bench/cpu_inference.py
	$(BIN)/python bench/bf16_ends.py
	$(BIN)/python bench/reference_paths.py
	$(BIN)/python bench/chain_stages.py
	$(BIN)/python bench/preset_throughput.py
	$(BIN)/python bench/shard_overlap.py
	$(BIN)/python bench/shard_overlap.py --side 256
	$(BIN)/python bench/large_scan_memory.py
	$(BIN)/python bench/large_scan_memory.py --shard 3 --megapixels 20 --presets fidelity
	$(BIN)/python bench/large_scan_memory.py --pages 4 --megapixels 10 --presets fidelity
	$(BIN)/python bench/tile_assembly.py
	$(BIN)/python bench/tile_stretch.py
	$(BIN)/python bench/colour_conversion.py
	$(BIN)/python bench/delivery_space.py
	$(BIN)/python bench/lpips_precision.py
	$(BIN)/python bench/text_pages.py
	$(BIN)/python bench/dithered_pages.py
	$(BIN)/python bench/screened_prints.py
	$(BIN)/python bench/fading_benchmark.py
	$(BIN)/python bench/dark_levels.py
	$(BIN)/python bench/even_cards.py
	$(BIN)/python bench/damage_found.py
	$(BIN)/python bench/master_decoding.py
	$(BIN)/python bench/photoshop_reading.py
	$(BIN)/python bench/derivative_encoding.py
	$(BIN)/python bench/plot.py
	$(BIN)/python bench/tables.py

# The CUDA paths, on a machine with a GPU and torch's CUDA build (README, GPU workers);
# results in bench/results/gpu_inference.json, summarised in docs/benchmarks.md.
bench-gpu: weights
	$(BIN)/python bench/gpu_inference.py --compile

# Re-resolve requirements.in into the requirements.txt lock, in a scratch virtualenv.
lock:
	rm -rf /tmp/enhance-lock && $(PYTHON) -m venv /tmp/enhance-lock
	/tmp/enhance-lock/bin/pip install --quiet pip==24.3.1
	/tmp/enhance-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Full lock of requirements.in, made by \`make lock\` on CPython 3.11 (Linux x86_64). Do not edit by hand."; \
	  /tmp/enhance-lock/bin/pip freeze --all | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > requirements.txt

clean:
	rm -rf $(VENV) out data include/models/weights
