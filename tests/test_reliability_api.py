"""Bad input at the Python API (issue 12 item 6): waveforms, seeds, resumed settings."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from pipeline.errors import ParameterError
from pipeline.transforms import MelTransform


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


if __name__ == '__main__':
  tf.test.main()
