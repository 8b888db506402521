"""The mel -> wav table: pinv / NNLS / refiner x GLA / FGLA / DeGLI, beside librosa.

  python mel_inversion_table.py --out_dir=out/mel_table --n_mels=80
  python mel_inversion_table.py --out_dir=out/mel_table_96 --n_mels=96 --fmin=125 \
      --fmax=7600 --vocoder_row --groups=speech   # + the neural vocoder (the priors' mel)

Held-out clips of the test splits (`make data`, `make speech-data`); writes
OUT_DIR/table.md, table.json and one example wav per group.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import flags

from experiments.studies import mel_table
from commandline import cli_errors

FLAGS = flags.FLAGS
flags.DEFINE_string('out_dir', 'out/mel_table', 'Output folder.')
flags.DEFINE_enum('split', 'test', ['test', 'validation'],
                  'Held-out clips: test (the table), or validation (to choose settings on).')
flags.DEFINE_list('groups', ['speech', 'piano', 'violin'],
                  'Groups of held-out clips to use (speech: out/speech, the others out/data/render).')
flags.DEFINE_integer('n_per_group', 6, 'Clips per group (speech, piano, violin).')
flags.DEFINE_float('duration_s', 3.0, 'Seconds per clip.')
flags.DEFINE_integer('n_mels', 80, 'Mel bands.')
flags.DEFINE_float('fmin', 0.0, 'Lowest mel edge (Hz).')
flags.DEFINE_float('fmax', 8000.0, 'Highest mel edge (Hz).')
flags.DEFINE_list('magnitudes', ['pinv', 'nnls', 'refiner'], 'Magnitude methods.')
flags.DEFINE_list('phases', ['gla', 'fgla', 'degli'],
                  "Phase methods; 'name@a' sets the momentum (e.g. degli@0.9).")
flags.DEFINE_list('n_iters', ['32', '100'], 'Phase iterations.')
flags.DEFINE_boolean('librosa', True, 'Add librosa.feature.inverse.mel_to_audio rows.')
flags.DEFINE_string('refiner', None, 'Refiner folder; default the shipped one.')
flags.DEFINE_string('degli', None, 'DeGLI folder; default the shipped one.')
flags.DEFINE_boolean('vocoder_row', False, 'Add the neural vocoder row (needs its mel: '
                     '--n_mels=96 --fmin=125 --fmax=7600).')
flags.DEFINE_string('vocoder', None, 'Vocoder folder; default the shipped one.')


def main(argv):
  del argv
  known = [g for g, _ in mel_table.split_groups(FLAGS.split)]
  if not FLAGS.groups or set(FLAGS.groups) - set(known):
    from common.errors import ParameterError  # pylint: disable=g-import-not-at-top
    raise ParameterError(f'--groups must name some of {known}, got {FLAGS.groups}')
  config = mel_table.MelTableConfig(
      out_dir=FLAGS.out_dir,
      groups=tuple(g for g in mel_table.split_groups(FLAGS.split) if g[0] in FLAGS.groups),
      n_per_group=FLAGS.n_per_group, duration_s=FLAGS.duration_s,
      n_mels=FLAGS.n_mels, fmin=FLAGS.fmin, fmax=FLAGS.fmax,
      magnitudes=tuple(FLAGS.magnitudes), phases=tuple(FLAGS.phases),
      n_iters=tuple(int(n) for n in FLAGS.n_iters), librosa=FLAGS.librosa,
      refiner=FLAGS.refiner, degli=FLAGS.degli, vocoder_row=FLAGS.vocoder_row,
      vocoder=FLAGS.vocoder)
  mel_table.run(config)


def run():
  cli_errors.run_main(main, 'mel_inversion_table')


if __name__ == '__main__':
  run()
