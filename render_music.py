"""Renders the piano + violin set from real pieces and the generator in several soundfonts.

Writes ``out_dir/<split>/{piano,violin,mixture}/NNNNN.wav``, per-clip
``clips/NNNNN.json`` and ``manifest.json`` per split (see
``datagen.music_set``), with the music21 parse cache in ``out_dir/pieces``.
Needs fluidsynth and the soundfont packages (``make system-render-deps``) and
the ``data`` extra (music21). Resumable: finished clips are kept.

  python render_music.py --out_dir=out/music/render \
      --splits=train:1000:1200,validation:2000:120,test:3000:120

A split is ``name:seed:n_clips[:soundfont+soundfont]``; without soundfonts
train uses fluidr3_gm+fluidr3mono_gm+timgm6mb, validation musescore_general
(the unseen validation timbre), test musescore_general+csound_gmbank.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags
from absl import logging

from commandline import cli_errors
from common.errors import ParameterError
from datagen import music_set, render

_OUT_DIR = flags.DEFINE_string('out_dir', 'out/music/render', 'Folder to write the set to.')
_SPLITS = flags.DEFINE_list('splits', list(music_set.DEFAULT_SPLITS),
                            'name:seed:n_clips[:soundfont+soundfont] per split.')
_DURATION_S = flags.DEFINE_float('duration_s', 8.16, 'Seconds per clip (8.16 s = 4 patches).')
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate of the wavs, Hz.')
_PIECE_SHARE = flags.DEFINE_float('piece_share', 0.7,
                                  'Share of clips from music21 pieces (the rest: the generator).')
_ENSEMBLE_SHARE = flags.DEFINE_float(
    'ensemble_share', 0.5, 'Share of piece clips playing one work\'s violin and piano together.')
_RATIO_RANGE = flags.DEFINE_list('ratio_range_db', ['-18', '18'],
                                 'low,high of the violin-to-piano RMS balance, dB.')
_EQUAL_SHARE = flags.DEFINE_float('equal_share', 0.2, 'Share of clips at a 0 dB balance.')
_PEAK_RANGE = flags.DEFINE_list('mixture_peak_range', ['0.15', '0.45'],
                                'low,high of the mixture peak (log-uniform).')
_ROOM_SHARE = flags.DEFINE_float('room_share', 0.6, 'Share of clips in a synthetic room.')
_EQ_SHARE = flags.DEFINE_float('eq_share', 0.7, 'Share of sources with an EQ.')
_CACHE_DIR = flags.DEFINE_string('cache_dir', None,
                                 'music21 parse cache (default: <out_dir>/pieces).')
_N_WORKERS = flags.DEFINE_integer('n_workers', 2, 'Clips rendered at once.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace clips made with other settings.')


def _floats(flag, values):
  try:
    return tuple(float(v) for v in values)
  except ValueError as e:
    raise ParameterError(f'--{flag} must be two numbers low,high, got {values}') from e


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = music_set.MusicSetConfig(
      out_dir=_OUT_DIR.value, splits=tuple(_SPLITS.value), duration_s=_DURATION_S.value,
      sample_rate=_SAMPLE_RATE.value, piece_share=_PIECE_SHARE.value,
      ensemble_share=_ENSEMBLE_SHARE.value,
      ratio_range_db=_floats('ratio_range_db', _RATIO_RANGE.value),
      equal_share=_EQUAL_SHARE.value,
      mixture_peak_range=_floats('mixture_peak_range', _PEAK_RANGE.value),
      room_share=_ROOM_SHARE.value, eq_share=_EQ_SHARE.value, cache_dir=_CACHE_DIR.value,
      n_workers=_N_WORKERS.value, overwrite=_OVERWRITE.value)
  for split, manifest in music_set.build(config).items():
    s = manifest['summary']
    logging.info('%s: %d clips (%.2f h per source), material %s, balance %s dB, soundfonts %s',
                 split, s['n_clips'], s['hours_per_source'], s['material'], s['ratio_db'],
                 sorted(manifest['soundfonts']))
  return 0


def run():
  cli_errors.run_main(main, 'render_music', resumable=True,
                      expected=(render.RenderDependencyError,))


if __name__ == '__main__':
  run()
