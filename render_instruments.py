"""Renders piano / violin training audio and their mixtures with fluidsynth.

Writes ``out_dir/{piano,violin,mixture}/NNNNN.wav`` and
``out_dir/manifest.json`` (see ``datagen.render``). Needs the Debian packages
``fluidsynth`` and ``fluid-soundfont-gm``; ``make data`` installs them and runs
this script.

  python render_instruments.py --out_dir=out/instruments --n_clips=200

The training data of the mel priors (``make data`` renders all three splits;
docs/pipeline.md, "Piano and violin training data"), e.g. the train split:

  python render_instruments.py --out_dir=out/data/render/train --n_clips=900
      --duration_s=8.16 --seed=1000 --mixture_peak=0.3
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags
from absl import logging

from commandline import cli_errors
from datagen import render

_OUT_DIR = flags.DEFINE_string('out_dir', 'out/instruments',
                               'Folder to write the data set to.')
_N_CLIPS = flags.DEFINE_integer('n_clips', 200, 'Number of clips.',
                                lower_bound=1)
_DURATION_S = flags.DEFINE_float('duration_s', 4.0, 'Seconds per clip.')
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000,
                                    'Sample rate of the wavs, Hz.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the whole data set.',
                             lower_bound=0)
_MIX_RATIO_DB = flags.DEFINE_float(
    'mix_ratio_db', 0.0, 'Violin level relative to piano (RMS), dB.')
_MIXTURE_PEAK = flags.DEFINE_float(
    'mixture_peak', 0.9, 'Peak absolute sample of each mixture. The training '
    'data use 0.3: at 0.9, 0.4-1.2 % of the mel bins reach the 20 dB feature '
    'ceiling (docs/pipeline.md, "Piano and violin training data").')
_DUET = flags.DEFINE_bool(
    'duet', True, 'Violin plays over the piano\'s tempo, key and chords.')
_SUBTYPE = flags.DEFINE_string('subtype', 'FLOAT',
                               'WAV subtype: FLOAT (exact sums) or PCM_16.')
_N_WORKERS = flags.DEFINE_integer('n_workers', 2,
                                  'Clips rendered at once.', lower_bound=1)
_SOUNDFONT = flags.DEFINE_string(
    'soundfont', None, 'General MIDI .sf2 file (default: $BASIS_SOUNDFONT, '
    'then the usual places, FluidR3_GM first).')
_KEEP_MIDI = flags.DEFINE_bool('keep_midi', False,
                               'Also keep the MIDI files in out_dir/midi/.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace an existing data set in out_dir.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  manifest = render.render_dataset(
      _OUT_DIR.value, n_clips=_N_CLIPS.value, duration_s=_DURATION_S.value,
      sample_rate=_SAMPLE_RATE.value, seed=_SEED.value,
      mix_ratio_db=_MIX_RATIO_DB.value, mixture_peak=_MIXTURE_PEAK.value,
      duet=_DUET.value, subtype=_SUBTYPE.value, n_workers=_N_WORKERS.value,
      soundfont=_SOUNDFONT.value, keep_midi=_KEEP_MIDI.value,
      overwrite=_OVERWRITE.value)
  clips = manifest['clips']
  logging.info(
      '%d clips of %.2f s at %d Hz in %s (soundfont %s, fluidsynth %s); '
      'violin/piano ratio %.2f dB; mean RMS piano %.1f dBFS, violin %.1f dBFS',
      len(clips), manifest['duration_s'], manifest['sample_rate'],
      _OUT_DIR.value, manifest['synth']['soundfont']['path'],
      manifest['synth']['fluidsynth_version'], manifest['mix_ratio_db'],
      sum(c['piano']['rms_dbfs'] for c in clips) / len(clips),
      sum(c['violin']['rms_dbfs'] for c in clips) / len(clips))
  return 0


def run():
  cli_errors.run_main(main, 'render_instruments', expected=(render.RenderDependencyError,))


if __name__ == '__main__':
  run()
