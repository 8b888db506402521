"""Flag checks that fail at start: zero sizes, an output folder that is a file,
and a one-sample NCSN draw."""

import os
import types

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from commandline import cli_errors
from common import checks
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FlagCheckTest(tf.test.TestCase, parameterized.TestCase):

  def test_check_positive_names_the_flag_and_value(self):
    flags = types.SimpleNamespace(batch_size=0, steps=10, grad_clip_norm=None)
    checks.check_positive(flags, 'steps', 'grad_clip_norm')
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      checks.check_positive(flags, 'steps', 'batch_size')

  def test_check_positive_ints_names_the_field_and_value(self):
    config = types.SimpleNamespace(steps=10, batch_size=0, n=np.int64(3), flag=True)
    checks.check_positive_ints(config, 'steps')
    with self.assertRaisesRegex(ParameterError, r'^--batch_size must be a positive int, got 0$'):
      checks.check_positive_ints(config, 'steps', 'batch_size')
    with self.assertRaisesRegex(ParameterError, r'^unet flag must be a positive int, got True$'):
      checks.check_positive_ints(config, 'flag', prefix='unet ', numpy_ints=True)
    with self.assertRaisesRegex(ParameterError, r'^n must be a positive int, got 3$'):
      checks.check_positive_ints(config, 'n', prefix='')
    checks.check_positive_ints(config, 'n', numpy_ints=True)

  def test_model_configs_keep_their_positive_int_messages(self):
    from baselines import convtasnet, oracles, unet  # pylint: disable=g-import-not-at-top
    from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
    from synthesis import encoder  # pylint: disable=g-import-not-at-top
    cases = [
        (lambda: FeatureConfig(hop_length=0), r'^hop_length must be a positive int, got 0$'),
        (lambda: oracles.OracleConfig(n_fft=1.5),
         r'^n_fft must be a positive int, got 1.5$'),
        (lambda: unet.UNetConfig(kernel=0), r'^unet kernel must be a positive int, got 0$'),
        (lambda: convtasnet.ConvTasNetConfig(blocks=-1),
         r'^convtasnet blocks must be a positive int, got -1$'),
        (lambda: encoder.EncoderConfig(gru_units=False),
         r'^synthesis gru_units must be a positive int, got False$'),
    ]
    for build, message in cases:
      with self.assertRaisesRegex(ParameterError, message):
        build()

  def test_output_dir_that_is_a_file_fails(self):
    path = self.create_tempfile('results').full_path
    with self.assertRaisesRegex(ParameterError, rf'--out_dir={path} is a file'):
      checks.check_output_dir(path)
    with self.assertRaisesRegex(ParameterError, 'lies under the file'):
      checks.check_output_dir(os.path.join(path, 'sub'))
    checks.check_output_dir(os.path.join(self.create_tempdir().full_path, 'new', 'dir'))

  @parameterized.named_parameters(
      ('ncsn', 'ncsn.cli', 'NCSNRunConfig'), ('glow', 'flow_models.cli', 'GlowRunConfig'))
  def test_train_batch_size_0_fails_before_loading_data(self, module, config):
    import importlib  # pylint: disable=g-import-not-at-top
    cls = getattr(importlib.import_module(module), config)
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      cls(workdir=self.create_tempdir().full_path, batch_size=0, steps=10, log_every=1,
          eval_every=1, checkpoint_every=1, learning_rate=1e-3)

  def test_basis_out_dir_file_and_batch_size_0_fail_at_start(self):
    from basis.sampler_options import SamplerOptions  # pylint: disable=g-import-not-at-top
    from experiments import basis_sep  # pylint: disable=g-import-not-at-top
    out = self.create_tempfile('out').full_path
    settings = dict(n_mixtures=2, batch_size=2, n_sources=2,
                    sampling=SamplerOptions(step_size=1e-5, steps_per_sigma=1))
    with self.assertRaisesRegex(ParameterError, 'is a file'):
      basis_sep.run(basis_sep.BasisSepConfig(out_dir=out, **settings))
    settings['batch_size'] = 0
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      basis_sep.run(basis_sep.BasisSepConfig(out_dir=self.create_tempdir().full_path,
                                             **settings))


class OneSampleTest(tf.test.TestCase):

  def test_ncsn_sample_mode_draws_a_single_sample(self):
    from ncsn import cli  # pylint: disable=g-import-not-at-top
    out = os.path.join(self.create_tempdir().full_path, 'grid.png')
    samples = cli.sample(cli.NCSNRunConfig(
        mode='sample', prior=os.path.join(ROOT, 'assets', 'priors', 'ncsn_mnist'), out=out,
        n_samples=1, steps_each=1, step_lr=2e-5, seed=0, precision='float32'))
    self.assertEqual(samples.shape[0], 1)
    self.assertTrue(np.all(np.isfinite(samples)))
    self.assertTrue(os.path.exists(out))


if __name__ == '__main__':
  tf.test.main()
