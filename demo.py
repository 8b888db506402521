"""``make demo``: the shipped piano + violin mixture separated, scored against oracles.

  python demo.py --out_dir=out/demo

Writes out/demo/separation/{piano,violin}.wav (BASIS + Wiener; every method's
estimates are in out/demo/methods/<method>/demo_duet/), out/demo/spectrograms.png,
the metrics table (out/demo/report/results.md, .csv, .json) and
out/demo/report/report.html (players for every method). No download, no root.
MNIST digit separation is its own command: run_basis_sep.py.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import flags

from commandline import cli_errors
from commandline import flag_groups
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('out_dir', 'out/demo', 'Output folder.')
flags.DEFINE_multi_string('prior_dir', None, 'Piano and violin prior folders (default: the '
                          'shipped ones).')
flags.DEFINE_enum('sampler', 'fast', ['fast', 'paper'], 'BASIS sampler: fast (201 score calls '
                  'per source: warm start, 25 steps on 8 levels, Tweedie step) or paper '
                  '(1,000 calls); docs/basis.md.')
flags.DEFINE_integer('steps_per_sigma', None, "Langevin steps per noise level (default: the "
                     "sampler's).")
flags.DEFINE_string('extra_phase', 'misi', 'A second inversion of the same separation '
                    '(an inversion.phase method; empty: none).')
flag_groups.define_precision_flags()


def main(argv):
  if len(argv) > 1:
    raise ParameterError(f'unexpected arguments: {argv[1:]}')
  # Imported here, under the one-line error guard: a Ctrl-C during TensorFlow's
  # import is one line too.
  from experiments import demo  # pylint: disable=g-import-not-at-top
  kwargs = {'prior_dirs': tuple(FLAGS.prior_dir)} if FLAGS.prior_dir else {}
  demo.run(demo.DemoConfig(out_dir=FLAGS.out_dir, sampler=FLAGS.sampler,
                           steps_per_sigma=FLAGS.steps_per_sigma,
                           extra_phase=FLAGS.extra_phase or None,
                           precision=FLAGS.precision, **kwargs))


def run():
  cli_errors.run_main(main, 'demo', resumable=True)


if __name__ == '__main__':
  run()
