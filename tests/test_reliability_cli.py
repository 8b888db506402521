"""Flag checks that fail at start: zero sizes, an output folder that is a file,
and a one-sample NCSN draw."""

import os
import types

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from pipeline import cli_errors
from pipeline.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FlagCheckTest(tf.test.TestCase, parameterized.TestCase):

  def test_check_positive_names_the_flag_and_value(self):
    flags = types.SimpleNamespace(batch_size=0, steps=10, grad_clip_norm=None)
    cli_errors.check_positive(flags, 'steps', 'grad_clip_norm')
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      cli_errors.check_positive(flags, 'steps', 'batch_size')

  def test_output_dir_that_is_a_file_fails(self):
    path = self.create_tempfile('results').full_path
    with self.assertRaisesRegex(ParameterError, rf'--out_dir={path} is a file'):
      cli_errors.check_output_dir(path)
    with self.assertRaisesRegex(ParameterError, 'lies under the file'):
      cli_errors.check_output_dir(os.path.join(path, 'sub'))
    cli_errors.check_output_dir(os.path.join(self.create_tempdir().full_path, 'new', 'dir'))

  @parameterized.named_parameters(
      ('ncsn', 'ncsn.cli'), ('glow', 'flow_models.cli'))
  def test_train_batch_size_0_fails_before_loading_data(self, module):
    import importlib  # pylint: disable=g-import-not-at-top
    cli = importlib.import_module(module)
    flags = types.SimpleNamespace(workdir=self.create_tempdir().full_path, batch_size=0,
                                  steps=10, log_every=1, eval_every=1, checkpoint_every=1,
                                  learning_rate=1e-3)
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      cli.train_from_flags(flags)

  def test_basis_out_dir_file_and_batch_size_0_fail_at_start(self):
    from basis import cli  # pylint: disable=g-import-not-at-top
    out = self.create_tempfile('out').full_path
    flags = types.SimpleNamespace(step_size=1e-5, n_mixtures=2, batch_size=2,
                                  steps_per_sigma=1, n_sources=2, out_dir=out)
    with self.assertRaisesRegex(ParameterError, 'is a file'):
      cli.run_from_flags(flags)
    flags.out_dir, flags.batch_size = self.create_tempdir().full_path, 0
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be > 0, got 0'):
      cli.run_from_flags(flags)


class OneSampleTest(tf.test.TestCase):

  def test_ncsn_sample_mode_draws_a_single_sample(self):
    from ncsn import cli  # pylint: disable=g-import-not-at-top
    out = os.path.join(self.create_tempdir().full_path, 'grid.png')
    flags = types.SimpleNamespace(
        prior=os.path.join(ROOT, 'assets', 'priors', 'ncsn_mnist'), out=out, n_samples=1,
        steps_each=1, step_lr=2e-5, seed=0, precision='float32', bfloat16=None)
    samples = cli.sample_from_flags(flags)
    self.assertEqual(samples.shape[0], 1)
    self.assertTrue(np.all(np.isfinite(samples)))
    self.assertTrue(os.path.exists(out))


if __name__ == '__main__':
  tf.test.main()
