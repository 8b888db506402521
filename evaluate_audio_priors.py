"""Scores the piano + violin priors on held-out mixtures against the oracles.

  python evaluate_audio_priors.py --render_dir=out/data/render/test --n_tracks=10 \
      --out_dir=out/heldout

Lays the rendered test split out as a references folder, separates every
mixture with BASIS (inverted with each --phases method), runs the IBM / IRM /
Wiener oracles and the mixture-as-estimate, and writes the median SDR / SIR /
SAR table, box plots and report.html (out_dir/report). Reruns skip finished
tracks. docs/audio_separation.md has the numbers.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import os
import sys

from absl import app
from absl import flags

from commandline import cli_errors
from experiments import evaluate_tracks
from commandline import flag_groups
from common import compute
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('render_dir', 'out/data/render/test', 'A split rendered by '
                    'render_instruments.py ({mixture,piano,violin}/NNNNN.wav).')
flags.DEFINE_string('references', None, 'Or a references folder (<track>/mixture.wav, '
                    '<track>/<source>.wav) instead of --render_dir.')
flags.DEFINE_integer('n_tracks', 10, 'First N clips of the split.')
flags.DEFINE_string('out_dir', 'out/heldout', 'Output folder.')
flags.DEFINE_multi_string('prior_dir', None, 'One prior per source (default: the shipped basis '
                          'model of the piano-violin task).')
flags.DEFINE_list('phases', ['wiener', 'misi', 'amplitude_mask'], 'Inversion methods.')
flags.DEFINE_enum('magnitude', 'auto', ['auto', 'refiner', 'nnls', 'pinv'],
                  'Mel -> linear magnitude (auto: the shipped refiner where it fits, else NNLS).')
flags.DEFINE_list('oracles', list(evaluate_tracks.DEFAULT_ORACLES), 'Oracle methods.')
flags.DEFINE_enum('sampler', 'fast', ['fast', 'paper'], 'BASIS sampler: fast (201 score calls '
                  'per source: warm start, 25 steps on 8 levels, Tweedie step) or paper '
                  '(1,000 calls); docs/basis.md.')
flags.DEFINE_integer('steps_per_sigma', None, "Langevin steps per noise level (default: the "
                     "sampler's).")
flags.DEFINE_float('step_size', 2e-5, 'BASIS delta.')
flags.DEFINE_integer('batch_size', 8, 'Patches per compiled call.')
flag_groups.define_precision_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    refs = FLAGS.references
    if not refs:
      refs = os.path.join(FLAGS.out_dir, 'references')
      evaluate_tracks.tracks_from_render(FLAGS.render_dir, refs, n_tracks=FLAGS.n_tracks)
    options = {'magnitude': FLAGS.magnitude, 'sampler': FLAGS.sampler,
               'steps_per_sigma': FLAGS.steps_per_sigma, 'step_size': FLAGS.step_size,
               'batch_size': FLAGS.batch_size, 'precision': FLAGS.precision}
    if FLAGS.prior_dir:
      options['prior_dirs'] = tuple(FLAGS.prior_dir)
    specs = tuple(f'basis:phase={p}' for p in FLAGS.phases) + tuple(FLAGS.oracles)
    evaluate_tracks.run(evaluate_tracks.TrackEvalConfig(
        references_dir=refs, out_dir=FLAGS.out_dir, methods=specs, task='piano-violin',
        method_options={'basis': options}))
  except ParameterError as e:
    print(f'evaluate_audio_priors: error: {e}', file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print('\nevaluate_audio_priors: interrupted; rerun the same command to resume',
          file=sys.stderr)
    sys.exit(130)


def run():
  cli_errors.run_main(main, 'evaluate_audio_priors')


if __name__ == '__main__':
  run()
