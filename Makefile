# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# Every step is skipped when its result is already there, so repeating them is cheap.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN_IN ?= data/samples
RUN_OUT ?= out/enhanced
SCALE  ?= 4
PRESET ?= archive-photo

.PHONY: run test bench venv weights samples chromium lock clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -c 'import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "enhance_ops_plugins.pth").write_text("$(CURDIR)/plugins\n")'
	touch $(STAMP)

weights: $(STAMP)
	$(BIN)/python -m enhance_ops fetch-models

samples: $(STAMP)
	$(BIN)/python -m enhance_ops samples $(RUN_IN) > /dev/null

run: weights samples
	$(BIN)/python -m enhance_ops enhance $(RUN_IN) $(RUN_OUT) --preset $(PRESET) --scale $(SCALE) --overwrite \
	  --ledger out/ledger --report out/report.html || [ $$? -eq 1 ]
	@echo "Enhanced images and their .json records: $(CURDIR)/$(RUN_OUT)"
	@echo "Quality ledger (Parquet): $(CURDIR)/out/ledger    Report: $(CURDIR)/out/report.html"

# Headless Chromium checks the HTML report in the tests (Debian package; needs root or sudo).
chromium:
	@command -v chromium >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: weights chromium
	$(BIN)/python -m pytest -q tests

# Speed and quality benchmarks; results in bench/results/*.json, summarised in docs/benchmarks.md.
bench: weights
	$(BIN)/python bench/cpu_inference.py
	$(BIN)/python bench/chain_stages.py
	$(BIN)/python bench/fading_benchmark.py

# Re-resolve requirements.in into the requirements.txt lock, in a scratch virtualenv.
lock:
	rm -rf /tmp/enhance-lock && $(PYTHON) -m venv /tmp/enhance-lock
	/tmp/enhance-lock/bin/pip install --quiet pip==24.3.1
	/tmp/enhance-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Full lock of requirements.in, made by \`make lock\` on CPython 3.11 (Linux x86_64). Do not edit by hand."; \
	  /tmp/enhance-lock/bin/pip freeze --all | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > requirements.txt

clean:
	rm -rf $(VENV) out data include/models/weights
