"""Trains an NCSN score prior (or samples from a trained one).

  python train_ncsn.py --dataset=mnist --workdir=runs/ncsn_mnist
  python train_ncsn.py --dataset=melspec --data_dir=out/piano_tfr --workdir=runs/piano
  python train_ncsn.py --mode=sample --prior=assets/priors/ncsn_mnist --out=grid.png
  python train_ncsn.py --mode=export --workdir=runs/ncsn_mnist --prior=assets/priors/ncsn_mnist

Rerunning a train command with the same --workdir resumes from its newest
checkpoint. --prior is a prior folder (alias --prior_dir). The flags map onto
ncsn.cli.NCSNRunConfig; see docs/ncsn.md.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from ncsn import cli
from commandline import cli_errors
from commandline import flag_groups


def define_flags(fv=flags.FLAGS):
  flag_groups.define_training_flags(
      modes=cli.NCSNRunConfig.MODES, datasets=cli.NCSNRunConfig.DATASETS, flag_values=fv,
      help={'dataset': 'Training data (audio: folders of wav/flac/ogg/mp3 streamed by '
                       'tensorflow-io).', 'learning_rate': 'Adam learning rate.',
            'n_samples': 'Samples to draw (sample mode; preview grid: 36).'})
  flags.DEFINE_multi_string('eval_data_dir', None, 'melspec: held-out patch folder(s) for the '
                            'eval loss (all their records; e.g. the validation split). '
                            'Default: the 10 % test share of --data_dir.', flag_values=fv)
  flags.DEFINE_enum('variant', 'v1', ['v1', 'v2'], 'v1: level-conditional; v2: s(x)/sigma.',
                    flag_values=fv)
  flags.DEFINE_enum('arch', 'refinenet', ['refinenet', 'unet'], 'Score network: refinenet '
                    '(NCSN) or unet (CPU-sized, downsamples early; docs/ncsn.md).',
                    flag_values=fv)
  flags.DEFINE_integer('ngf', 32, 'Base width (RefineNet: original MNIST 64, audio 192; '
                       'U-Net: width at 1/2 resolution).', flag_values=fv)
  flags.DEFINE_list('channel_mult', ['1', '2', '2', '4'], 'U-Net: width per resolution '
                    '(1/2, 1/4, ...) in units of ngf.', flag_values=fv)
  flags.DEFINE_integer('num_res_blocks', 1, 'U-Net: residual blocks per resolution.',
                       flag_values=fv)
  flags.DEFINE_boolean('v2_schedule', False, 'Choose sigma_max and levels from the data '
                       '(NCSNv2).', flag_values=fv)
  flag_groups.define_precision_flags(fv)
  flags.DEFINE_integer('steps_each', 100, 'Langevin steps per level (sample mode).',
                       flag_values=fv)
  flags.DEFINE_float('step_lr', 2e-5, 'Langevin eps.', flag_values=fv)
  flags.DEFINE_integer('grid_steps_each', 20, 'Langevin steps per level for previews.',
                       flag_values=fv)
  flags.adopt_module_key_flags(flag_groups, flag_values=fv)   # --help lists them


def to_config(fv=flags.FLAGS) -> cli.NCSNRunConfig:
  return flag_groups.config_from_flags(cli.NCSNRunConfig, fv, command=' '.join(sys.argv))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cli.run(to_config())


def run():
  define_flags()
  cli_errors.run_main(main, 'train_ncsn', resumable=True)


if __name__ == '__main__':
  run()
