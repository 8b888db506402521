# One-word entry points. Each creates the local virtual environment when missing.
#   make demo   install, then run the main job on the shipped demo data
#   make test   install, then run the test suite
#   make data   render piano/violin train/validation/test audio + mel patches
#               (installs fluidsynth if missing)

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

# Piano/violin data for the mel priors (docs/pipeline.md, "Piano and violin
# training data"): split:seed:clips, 8.16 s clips (4 patches) at mixture peak
# 0.3; then 96 x 64 mel patches per instrument per split. Finished parts are
# kept (render reuses a complete set; a patch folder with metadata.json is done).
DATA   ?= $(OUT)/data
SPLITS ?= train:1000:900 validation:2000:75 test:3000:75

data: $(STAMP) system-render-deps
	@set -e; for spec in $(SPLITS); do \
	  split=$${spec%%:*}; rest=$${spec#*:}; seed=$${rest%%:*}; n=$${rest#*:}; \
	  $(PY) render_instruments.py --out_dir=$(DATA)/render/$$split --n_clips=$$n \
	    --duration_s=8.16 --seed=$$seed --mixture_peak=0.3 --mix_ratio_db=0 --n_workers=2; \
	  for inst in piano violin; do \
	    test -f $(DATA)/tfr/$$inst/$$split/metadata.json || \
	      $(PY) wav_to_spec.py --in_dir=$(DATA)/render/$$split/$$inst \
	        --out_dir=$(DATA)/tfr/$$inst/$$split; \
	  done; \
	done

# Speech needs the Debian package espeak-ng (datagen/speech.py).
.PHONY: system-speech-deps speech-data
system-speech-deps:
	@command -v espeak-ng >/dev/null 2>&1 || \
	  { echo 'installing espeak-ng (apt-get)'; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq espeak-ng; }

# Speech + noise mixtures at input SNR 10, 0, -10 dB (docs/inversion.md, "The
# study"): 3 s clips, noise white / pink / babble / rendered instruments (so
# fluidsynth is installed too). Resumable: finished clip folders are kept.
SPEECH ?= $(OUT)/speech
SPEECH_SPLITS ?= train:100:60,validation:200:20,test:300:20

speech-data: $(STAMP) system-speech-deps system-render-deps
	$(PY) make_speech_noise.py --out_dir=$(SPEECH) --splits=$(SPEECH_SPLITS) \
	  --duration_s=3 --snrs_db=10,0,-10

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
