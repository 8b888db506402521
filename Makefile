# One-word entry points. Each creates the local virtual environment when missing.
#   make demo   install, then run the main job on the shipped demo data
#   make test   install, then run the test suite
#   make data   render piano/violin train/validation/test audio + mel patches from
#               real pieces in several soundfonts (installs what is missing)
#   make speech-data  the voice + noise set (recorded and synthetic voices)
#   make data-fluidr3 the old single-soundfont piano/violin set, for comparison

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out
# The tested versions for the venv's Python (its own when it exists, else PYTHON's):
# constraints.txt on 3.11 (TensorFlow 2.16), constraints-py312.txt on 3.12 and 3.13
# (TensorFlow 2.21); docs/install.md.
CONSTRAINTS := $(shell $$(test -x $(PY) && echo $(PY) || echo $(PYTHON)) -c 'import sys; \
  print("requirements/constraints" + ("-py312" if sys.version_info >= (3, 12) else "") + ".txt")')

.PHONY: install demo test test-fast data bench clean

install: $(STAMP)

$(STAMP): setup.py pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) demo.py --out_dir=$(OUT)/demo

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m 'not slow' tests

# The wheel (shipped assets inside): the flag index first, so that the installed
# commands answer --help before TensorFlow loads (commandline/flag_index.py).
.PHONY: wheel
wheel: $(STAMP)
	$(PY) -m commandline.flag_index
	$(PY) -m pip wheel --no-deps -w dist .
	rm -rf build

# System packages (Debian / Ubuntu), installed with apt-get where missing.
# Rendering: fluidsynth and the General MIDI soundfonts of datagen/soundfonts.py.
RENDER_DEBS := fluidsynth fluid-soundfont-gm fluidr3mono-gm-soundfont \
  musescore-general-soundfont timgm6mb-soundfont csound-soundfont
# Speech: synthetic voices, the G.722 decoder, recorded voices / sounds / music.
SPEECH_DEBS := espeak-ng flite ffmpeg asterisk-core-sounds-en-g722 \
  asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722 sonic-pi-samples \
  asterisk-moh-opsound-g722
# What the test suite uses (.ci/run): the small part of both.
TEST_DEBS := fluidsynth fluid-soundfont-gm timgm6mb-soundfont espeak-ng flite ffmpeg \
  asterisk-core-sounds-fr-g722
define apt_install
@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
  if [ -n "$$missing" ]; then echo "installing" $$missing "(apt-get)"; \
    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
      --no-install-recommends $$missing; fi
endef

.PHONY: system-render-deps system-speech-deps system-test-deps data-deps
system-render-deps:
	$(call apt_install,$(RENDER_DEBS))
system-speech-deps:
	$(call apt_install,$(SPEECH_DEBS))
system-test-deps:
	$(call apt_install,$(TEST_DEBS))

# The data extra (music21, whose corpus ships inside the package).
DATA_STAMP := $(VENV)/.installed-data
$(DATA_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[data]'
	touch $(DATA_STAMP)
data-deps: $(DATA_STAMP) system-render-deps

# Piano/violin data for the mel priors (docs/data.md): real pieces (music21) and
# the generator, several soundfonts, natural level balance, room and EQ; splits
# by work and by soundfont (validation and test timbres never heard in
# training). 8.16 s clips (4 patches), then 96 x 64 mel patches per instrument
# per split. Resumable: finished clips and patch folders are kept.
MUSIC  ?= $(OUT)/music
MUSIC_SPLITS ?= train:1000:1200,validation:2000:120,test:3000:120

data: data-deps
	$(PY) render_music.py --out_dir=$(MUSIC)/render --splits=$(MUSIC_SPLITS) --n_workers=2
	@set -e; for split in $$(echo $(MUSIC_SPLITS) | tr ',' ' '); do split=$${split%%:*}; \
	  for inst in piano violin; do \
	    test -f $(MUSIC)/tfr/$$inst/$$split/metadata.json || \
	      $(PY) wav_to_spec.py --in_dir=$(MUSIC)/render/$$split/$$inst \
	        --out_dir=$(MUSIC)/tfr/$$inst/$$split; \
	  done; \
	done

# The old single-soundfont set (FluidR3_GM, generator melodies, equal levels),
# for comparison (docs/pipeline.md, "Piano and violin training data").
DATA   ?= $(OUT)/data
SPLITS ?= train:1000:900 validation:2000:75 test:3000:75

.PHONY: data-fluidr3
data-fluidr3: $(STAMP) system-render-deps
	@set -e; for spec in $(SPLITS); do \
	  split=$${spec%%:*}; rest=$${spec#*:}; seed=$${rest%%:*}; n=$${rest#*:}; \
	  $(PY) render_instruments.py --out_dir=$(DATA)/render/$$split --n_clips=$$n \
	    --duration_s=8.16 --seed=$$seed --mixture_peak=0.3 --mix_ratio_db=0 --n_workers=2 \
	    --soundfont=/usr/share/sounds/sf2/FluidR3_GM.sf2; \
	  for inst in piano violin; do \
	    test -f $(DATA)/tfr/$$inst/$$split/metadata.json || \
	      $(PY) wav_to_spec.py --in_dir=$(DATA)/render/$$split/$$inst \
	        --out_dir=$(DATA)/tfr/$$inst/$$split; \
	  done; \
	done

# Voice + noise (docs/data.md): recorded voices (Asterisk prompts) and synthetic
# ones over recorded sounds / music and synthetic noise, one mixture per clip at
# an SNR drawn in SPEECH_SNR dB, 4.08 s clips (2 patches); mel TFRecords per
# source. Also the inversion study's espeak-ng set (docs/inversion.md) in
# $(SPEECH). Resumable: finished clip and patch folders are kept.
SPEECH_DATA ?= $(OUT)/speech_data
SPEECH_DATA_SPLITS ?= train:100:600,validation:200:60,test:300:60
SPEECH_SNR ?= -5,5
SPEECH ?= $(OUT)/speech
SPEECH_SPLITS ?= train:100:60,validation:200:20,test:300:20

.PHONY: speech-data speech-study-data
speech-data: $(STAMP) system-speech-deps system-render-deps
	$(PY) make_voice_noise.py --out_dir=$(SPEECH_DATA) --splits=$(SPEECH_DATA_SPLITS) \
	  --snr_range_db=$(SPEECH_SNR) --tfr_dir=$(SPEECH_DATA)/tfr --n_workers=2
	$(MAKE) speech-study-data

speech-study-data: $(STAMP) system-speech-deps system-render-deps
	$(PY) make_speech_noise.py --out_dir=$(SPEECH) --splits=$(SPEECH_SPLITS) \
	  --duration_s=3 --snrs_db=10,0,-10

bench: $(STAMP)
	$(PY) benchmarks/bench_features.py

clean:
	rm -rf $(VENV) $(OUT) build dist *.egg-info
