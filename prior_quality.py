"""Tweedie denoising error per noise level of an exported score prior on held-out patches.

  python prior_quality.py --prior=assets/priors/ncsn_piano --data_dir=out/data/tfr/piano/test
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from commandline import cli_errors
from experiments.studies import prior_quality
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('prior', None, 'Exported NCSN prior folder.', required=True)
flags.DEFINE_string('data_dir', None, 'Held-out TFRecord patch folder.', required=True)
flags.DEFINE_integer('n_examples', 128, 'Patches to probe.')
flags.DEFINE_enum('precision', 'float32', ['float32', 'bfloat16'], 'Network precision.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    rows = prior_quality.run(prior_quality.PriorQualityConfig(
        prior_dir=FLAGS.prior, data_dir=FLAGS.data_dir, n_examples=FLAGS.n_examples,
        precision=FLAGS.precision))
  except ParameterError as e:
    print(f'prior_quality: error: {e}', file=sys.stderr)
    sys.exit(2)
  print(prior_quality.markdown(rows))


def run():
  cli_errors.run_main(main, 'prior_quality')


if __name__ == '__main__':
  run()
