# One-word entry points. Each creates the local virtual environment when missing.
#   make demo   install, then run the main job on the shipped demo data
#   make test   install, then run the test suite
#   make data   render piano/violin training audio (installs fluidsynth if missing)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: install demo test test-fast data system-render-deps bench clean

install: $(STAMP)

$(STAMP): setup.py requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) demo.py --out_dir=$(OUT)/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not slow' tests

# Rendering needs the Debian packages fluidsynth and fluid-soundfont-gm.
system-render-deps:
	@command -v fluidsynth >/dev/null 2>&1 && test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 || \
	  { echo 'installing fluidsynth + fluid-soundfont-gm (apt-get)'; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq fluidsynth fluid-soundfont-gm; }

data: $(STAMP) system-render-deps
	$(PY) render_instruments.py --out_dir=$(OUT)/instruments --n_clips=200

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
