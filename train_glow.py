"""Trains a normalizing-flow prior (Glow or RealNVP), samples, exports, and
fine-tunes a noise-conditioned family of flows for BASIS.

  python train_glow.py --dataset=mnist --workdir=runs/glow_mnist
  python train_glow.py --model=realnvp --dataset=mnist --workdir=runs/rnvp_mnist
  python train_glow.py --mode=export --workdir=runs/glow_mnist --prior=priors/glow_mnist
  python train_glow.py --mode=sample --prior=priors/glow_mnist --out=grid.png
  python train_glow.py --mode=finetune_noise --init_from=priors/glow_mnist \
      --workdir=priors/glow_mnist_family --steps_per_sigma=2000
  python train_glow.py --mode=finetune_noise --init_from=priors/glow_mnist \
      --init_family=priors/glow_mnist_family --score_matching_weight=100 \
      --workdir=priors/glow_mnist_family_dsm --steps_per_sigma=500

Rerunning a train (or finetune_noise) command with the same --workdir
resumes. Metrics report train/test bits per dimension. --prior is a prior
folder (alias --prior_dir). The flags map onto flow_models.cli.GlowRunConfig;
see docs/flows.md.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from flow_models import cli
from commandline import cli_errors
from commandline import flag_groups


def define_flags(fv=flags.FLAGS):
  flag_groups.define_training_flags(
      modes=cli.GlowRunConfig.MODES, datasets=cli.GlowRunConfig.DATASETS, flag_values=fv,
      help={'workdir': 'Run folder; finetune_noise: the family folder.',
            'sigma_max': 'finetune_noise: largest noise level.',
            'sigma_min': 'finetune_noise: smallest noise level.',
            'num_levels': 'finetune_noise: number of (geometric) levels.'})
  flags.DEFINE_enum('model', 'glow', ['glow', 'realnvp'], 'Flow architecture.', flag_values=fv)
  # Architecture (unset: the model's defaults; levels: 3 or what the image allows).
  for name, text in (('levels', 'Multi-scale levels (2x2 squeezes).'),
                     ('steps_per_level', 'Flow steps per level (Glow K; RealNVP couplings '
                                         'per mask type).'),
                     ('hidden_channels', 'Width of the coupling networks.'),
                     ('res_blocks', 'RealNVP: residual blocks per coupling network.')):
    flags.DEFINE_integer(name, None, text, flag_values=fv)
  flags.DEFINE_enum('coupling', None, ['affine', 'additive'], 'Coupling type.', flag_values=fv)
  flags.DEFINE_boolean('learn_top', None, 'Glow: learned top prior.', flag_values=fv)
  flags.DEFINE_boolean('split_prior', None, 'Glow: conditional prior at factor-out.',
                       flag_values=fv)
  flags.DEFINE_enum('preprocessing', None, ['shift', 'logit'], 'x - 0.5 or logit.',
                    flag_values=fv)
  flags.DEFINE_float('logit_alpha', None, 'Squashing of logit preprocessing.', flag_values=fv)
  flags.DEFINE_enum('optimizer', 'adamax', ['adamax', 'adam'], 'Optimiser.', flag_values=fv)
  flags.DEFINE_integer('warmup_steps', 200, 'Linear learning-rate warm-up steps.',
                       flag_values=fv)
  flags.DEFINE_integer('eval_batches', 8, 'Test batches per evaluation.', flag_values=fv)
  flags.DEFINE_boolean('summary', False, 'Print every trainable variable before training.',
                       flag_values=fv)
  flags.DEFINE_float('temperature', 0.7, 'Latent standard deviation of sample grids.',
                     flag_values=fv)
  flags.DEFINE_integer('n_grid', 36, 'Samples in the preview grid at each evaluation.',
                       flag_values=fv)
  flags.DEFINE_integer('steps_per_sigma', 1000, 'finetune_noise: steps per noise level.',
                       flag_values=fv)
  flags.DEFINE_float('score_matching_weight', 0.0,
                     'finetune_noise: adds this times the denoising score-matching loss '
                     'mean((z + sigma grad log p)^2) to the bits/dim (0: likelihood only). '
                     'BASIS uses only the score; see docs/flows.md.', flag_values=fv)
  flags.DEFINE_string('init_family', None,
                      'finetune_noise: start each level from this family\'s member of the '
                      'same sigma (it must have the levels asked for) instead of the level '
                      'below; --init_from still names the clean prior.', flag_values=fv)
  flags.adopt_module_key_flags(flag_groups, flag_values=fv)   # --help lists them


def to_config(fv=flags.FLAGS) -> cli.GlowRunConfig:
  return flag_groups.config_from_flags(cli.GlowRunConfig, fv, command=' '.join(sys.argv))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cli.run(to_config())


def run():
  define_flags()
  cli_errors.run_main(main, 'train_glow', resumable=True)


if __name__ == '__main__':
  run()
