"""``make demo``: the main job on shipped data (no download, no root).

  python demo.py --out_dir=out/demo
"""

from absl import app
from absl import flags

from pipeline import demo

FLAGS = flags.FLAGS
flags.DEFINE_string('out_dir', 'out/demo', 'Output folder.')
flags.DEFINE_boolean('separate', True, 'Also separate MNIST pairs with the shipped prior.')
flags.DEFINE_integer('n_mixtures', 8, 'MNIST pairs to separate.')
flags.DEFINE_integer('steps_per_sigma', 100, 'Langevin steps per level.')
flags.DEFINE_string('prior_dir', None, 'NCSN prior folder (default: the shipped one).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  demo.run(FLAGS.out_dir, separate_mnist=FLAGS.separate, n_mixtures=FLAGS.n_mixtures,
           steps_per_sigma=FLAGS.steps_per_sigma, prior_dir=FLAGS.prior_dir)


def run():
  app.run(main)


if __name__ == '__main__':
  run()
