"""Bad input at the Python API (issue 12 item 6): waveforms, seeds, resumed settings."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from common.checks import SEED_MAX, check_seed
from common.errors import ParameterError
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform
from training import loop
from tests.test_training_loop import _Run, _dataset


def _windows(n_windows=3, seed=0):
  """``[n_windows, patch_samples]`` float32 noise at -20 dB."""
  n = MelTransform().config.patch_samples
  return 0.1 * np.random.default_rng(seed).standard_normal((n_windows, n)).astype(np.float32)


class WaveformCheckTest(tf.test.TestCase, parameterized.TestCase):
  """``waveform_to_patches`` and the compiled window path agree on bad samples."""

  @parameterized.parameters(np.nan, np.inf, -np.inf)
  def test_non_finite_sample_is_refused_by_both_paths_naming_it(self, value):
    t = MelTransform()
    windows = _windows()
    windows[1, 17] = value
    n = windows.shape[1]
    # Refused, not NaN patches (graph path) or dB-floor patches (XLA path).
    with self.assertRaisesRegex(ParameterError, rf'waveform holds 1 non-finite sample.* at '
                                rf'sample {n + 17}$'):
      t.waveform_to_patches(windows.reshape(-1))
    with self.assertRaisesRegex(ParameterError, rf'waveform holds 1 non-finite sample.*'
                                rf'at sample {n + 17}$'):
      t.waveform_to_patches(tf.constant(windows.reshape(-1)))     # an eager tensor
    with self.assertRaisesRegex(ParameterError, r'windows holds 1 non-finite sample.*'
                                r'at sample 17 of windows\[1\]'):
      t.make_window_fn(chunk=2)(windows)

  def test_count_of_non_finite_samples_is_given(self):
    windows = _windows()
    windows[0, :3] = np.nan
    windows[2, 5] = np.inf
    with self.assertRaisesRegex(ParameterError, r'4 non-finite sample\(s\) of \d+ '
                                r'\(3 NaN, 1 infinite\); first: NaN at sample 0 of '
                                r'waveform\[0\]'):
      MelTransform().waveform_to_unit(windows)

  @parameterized.parameters((np.int16, r'/ 32768'), (np.int32, r'/ 2147483648'),
                            (np.uint8, r'- 128\) / 128'))
  def test_integer_samples_are_refused_with_the_scale(self, dtype, scale):
    t = MelTransform()
    ints = (_windows() * 1000).astype(dtype)
    for call in (lambda: t.waveform_to_patches(ints.reshape(-1)),
                 lambda: t.make_window_fn(chunk=2)(ints),
                 lambda: t.waveform_to_unit(tf.constant(ints)),
                 lambda: t.spectrogram(ints)):
      with self.assertRaisesRegex(ParameterError, rf'dtype {np.dtype(dtype).name}: samples '
                                  rf'must be floating point.*{scale}.*pipeline\.audio'):
        call()

  def test_integer_tensor_is_refused_inside_tf_function(self):
    t = MelTransform()
    ints = tf.zeros([1, t.config.patch_samples], tf.int16)
    with self.assertRaisesRegex(ParameterError, 'dtype int16'):
      tf.function(t.waveform_to_unit, autograph=False)(ints)
    # AutoGraph re-raises exceptions of its own types as a StagingError; the
    # message is kept.
    with self.assertRaisesRegex(Exception, 'dtype int16: samples must be floating point'):
      tf.function(t.waveform_to_unit)(ints)

  def test_tf_function_paths_still_work_on_good_input(self):
    t = MelTransform()
    windows = _windows()
    eager = t.waveform_to_patches(windows.reshape(-1)).numpy()
    traced = tf.function(lambda y: t.waveform_to_patches(y))(
        tf.constant(windows.reshape(-1))).numpy()
    compiled = t.make_window_fn(chunk=2)(windows)
    # Same ops: graph ~exact; XLA fuses STFT, power and log, ~1e-6 of [0, 1].
    self.assertAllClose(traced, eager, atol=1e-6)
    self.assertAllClose(compiled, eager, atol=1e-4)

  def test_symbolic_tensor_values_are_not_checked(self):
    # Documented limit: inside tf.function the values are unknown at trace
    # time, so a NaN passes through the graph path (the module docstring says
    # to check first, as make_window_fn's function does).
    t = MelTransform()
    windows = _windows(1)
    windows[0, 3] = np.nan
    out = tf.function(t.waveform_to_unit)(tf.constant(windows))
    self.assertEqual(out.shape, (1,) + t.config.patch_shape)


class SeedCheckTest(tf.test.TestCase, parameterized.TestCase):
  """Seeds outside int32 are refused where they enter, not aliased."""

  def test_int32_seed_tensors_alias_what_the_check_refuses(self):
    # Why the check exists: TensorFlow wraps the Python int silently.
    self.assertAllEqual(tf.constant([2 ** 32, 11], tf.int32), tf.constant([0, 11], tf.int32))
    with self.assertRaisesRegex(ParameterError, '4294967296'):
      check_seed(2 ** 32)

  @parameterized.parameters(
      (2 ** 32, r'--seed=4294967296 is outside \[0, 2147483647\].* becomes 0 '),
      (2 ** 31, r'--seed=2147483648 is outside .* becomes -2147483648 '),
      (-1, r'--seed=-1 is negative'),
      (1.5, r'--seed must be an int in \[0, 2147483647\], got 1\.5'),
      (True, r'--seed must be an int .* got True'))
  def test_bad_seed_is_refused_naming_flag_and_value(self, seed, message):
    with self.assertRaisesRegex(ParameterError, message):
      check_seed(seed, name='--seed')

  def test_seeds_in_range_pass_as_python_ints(self):
    self.assertEqual(check_seed(np.int64(7)), 7)
    self.assertIsInstance(check_seed(np.int64(7)), int)
    self.assertEqual(check_seed(SEED_MAX), 2 ** 31 - 1)
    self.assertIsNone(check_seed(None, allow_none=True))
    with self.assertRaisesRegex(ParameterError, 'got None'):
      check_seed(None)

  def test_loop_config_refuses_an_aliasing_seed(self):
    with self.assertRaisesRegex(ParameterError, r'seed=4294967296 is outside'):
      loop.LoopConfig(workdir=self.create_tempdir().full_path, seed=2 ** 32)

  def test_library_seams_refuse_an_aliasing_seed(self):
    # BASIS, NCSN sampling, flow sampling and phase retrieval turn seeds into
    # int32 tensors; each refuses 2**32 instead of running seed 0 again.
    import basis  # pylint: disable=g-import-not-at-top
    from flow_models import model as flow_model  # pylint: disable=g-import-not-at-top
    from inversion import phase  # pylint: disable=g-import-not-at-top
    from ncsn import sampling  # pylint: disable=g-import-not-at-top
    prior = basis.GaussianPrior(np.zeros(2, np.float32), variance=np.ones(2, np.float32))
    sep = basis.Separator([prior, prior], sigmas=[1.0, 0.1], steps_per_sigma=1,
                          step_size=1e-3)
    with self.assertRaisesRegex(ParameterError, r'seed=4294967296 is outside'):
      sep(np.zeros([1, 2], np.float32), seed=2 ** 32)
    with self.assertRaisesRegex(ParameterError, r'seed=4294967296 is outside'):
      sampling._as_seed(2 ** 32)  # pylint: disable=protected-access
    with self.assertRaisesRegex(ParameterError, r'seed=4294967296 is outside'):
      flow_model.sample(None, 1, seed=2 ** 32)
    with self.assertRaisesRegex(ParameterError, r'seed=4294967296 is outside'):
      phase.griffin_lim(np.ones([3, 257], np.float32), n_iter=1, seed=2 ** 32,
                        transform=phase.stft_lib.stft_transform(n_fft=512, hop_length=128))

  def test_largest_seed_trains_and_evaluates(self):
    config = loop.LoopConfig(workdir=self.create_tempdir().full_path, total_steps=2,
                             progress=False, eval_every=1, seed=SEED_MAX)
    run = _Run()
    metrics = loop.train(run, _dataset(), config, eval_data=_dataset(repeat=False))
    self.assertEqual(metrics['step'], 2)
    self.assertIn('eval_loss', metrics)
    self.assertLen(set(run.seeds), 2)


if __name__ == '__main__':
  tf.test.main()


class ApiInputTest(tf.test.TestCase, parameterized.TestCase):
  """Issue 29 item 8: Python API inputs that used to give silent wrong results."""

  @parameterized.parameters(('no', "center must be True or False, got 'no'"),
                            (1, 'center must be True or False, got 1'))
  def test_feature_config_refuses_a_center_that_is_not_a_bool(self, value, message):
    with self.assertRaisesRegex(ParameterError, message):
      FeatureConfig(center=value)

  def test_feature_config_refuses_non_numbers(self):
    with self.assertRaisesRegex(ParameterError, "fmin must be a number, got '125'"):
      FeatureConfig(fmin='125')
    with self.assertRaisesRegex(ParameterError, 'amax must be a number, got nan'):
      FeatureConfig(amax=float('nan'))

  def test_empty_waveform_is_refused_not_padded_into_a_frame(self):
    transform = MelTransform(FeatureConfig())
    with self.assertRaisesRegex(ParameterError, r'waveform of shape \(0,\) has no samples'):
      transform.waveform_to_unit(np.zeros(0, np.float32))
    with self.assertRaisesRegex(ParameterError, r'shape \(2, 0\) has no samples'):
      transform.stft(np.zeros((2, 0), np.float32))

  def test_patches_of_other_mel_bands_are_refused(self):
    transform = MelTransform(FeatureConfig())
    patches = np.full((2, 64, 64, 1), 0.5, np.float32)   # 64-mel patches
    with self.assertRaisesRegex(ParameterError, r'have 64 mel bands, this transform 96'):
      transform.patches_to_mel(patches)
    self.assertEqual(transform.patches_to_mel(np.full((2, 96, 64, 1), 0.5)).shape,
                     (2, 64, 96))

  def test_spectrogram_of_other_bins_is_refused(self):
    transform = MelTransform(FeatureConfig())
    with self.assertRaisesRegex(ParameterError, r'has 513 frequency bins, this transform 1025'):
      transform.spectrogram_to_mel(np.ones((3, 513), np.float32))
