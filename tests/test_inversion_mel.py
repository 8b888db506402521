"""inversion.mel_to_linear: clipped pseudo-inverse and NNLS."""

import numpy as np
import tensorflow as tf

from inversion import mel_to_linear
from pipeline import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform


def _signal(n_samples=32640, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(n_samples) / 16000
  y = 0.3 * np.sin(2 * np.pi * (200 * t + 400 * t ** 2))
  y += sum(0.1 / k * np.sin(2 * np.pi * 440 * k * t) for k in range(1, 5))
  return (y + 0.01 * rng.standard_normal(n_samples)).astype(np.float32)


class MelToMagnitudeTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.t = MelTransform(FeatureConfig())
    y = np.stack([_signal(seed=0), _signal(seed=1)])
    self.mag = tf.abs(self.t.stft(y))
    self.mel = self.t.spectrogram_to_mel(tf.square(self.mag))  # power mel [2, 64, 96]

  def test_nnls_non_negative_and_fits_at_least_as_well_as_pinv(self):
    pinv = mel_to_linear.mel_to_magnitude(self.mel, method='pinv', transform=self.t)
    nnls = mel_to_linear.mel_to_magnitude(self.mel, method='nnls', transform=self.t)
    self.assertEqual(nnls.shape, (2, 64, 1025))
    self.assertAllGreaterEqual(nnls, 0.0)
    self.assertAllGreaterEqual(pinv, 0.0)
    e_pinv = mel_to_linear.mel_fit_error(self.mel, pinv, transform=self.t)
    e_nnls = mel_to_linear.mel_fit_error(self.mel, nnls, transform=self.t)
    self.assertLessEqual(e_nnls, e_pinv)
    self.assertLess(e_nnls, 0.5 * e_pinv)  # measured far below: NNLS reaches ~1e-3

  def test_pinv_is_nnls_with_zero_steps_and_reuses_mel_transform(self):
    pinv = mel_to_linear.mel_to_magnitude(self.mel, method='pinv', transform=self.t)
    direct = tf.sqrt(self.t.mel_to_spectrogram(self.mel, n_iter=0))
    self.assertAllClose(pinv, direct)
    nnls = mel_to_linear.mel_to_magnitude(self.mel, transform=self.t, n_iter=7)
    self.assertAllClose(nnls, tf.sqrt(self.t.mel_to_spectrogram(self.mel, n_iter=7)))

  def test_numpy_in_numpy_out_and_tf_function(self):
    out = mel_to_linear.mel_to_magnitude(self.mel.numpy(), transform=self.t, n_iter=3)
    self.assertIsInstance(out, np.ndarray)
    fn = tf.function(lambda m: mel_to_linear.mel_to_magnitude(m, transform=self.t, n_iter=3))
    self.assertAllClose(fn(self.mel), out, rtol=1e-5, atol=1e-6)

  def test_magnitude_features_skip_the_square_root(self):
    t1 = MelTransform(FeatureConfig(power=1.0))
    mel = t1.spectrogram_to_mel(self.mag)
    mag = mel_to_linear.mel_to_magnitude(mel, transform=t1)
    self.assertLess(mel_to_linear.mel_fit_error(mel, mag, transform=t1), 1e-2)

  def test_raises_on_bad_input(self):
    with self.assertRaisesRegex(ParameterError, r"unknown magnitude method 'lbfgs'"):
      mel_to_linear.mel_to_magnitude(self.mel, method='lbfgs', transform=self.t)
    with self.assertRaisesRegex(ParameterError, r'mel has 64 bands .*n_mels=96'):
      mel_to_linear.mel_to_magnitude(tf.transpose(self.mel, [0, 2, 1]), transform=self.t)
    with self.assertRaisesRegex(ParameterError, r"n_iter=5 is only for method 'nnls'"):
      mel_to_linear.mel_to_magnitude(self.mel, method='pinv', n_iter=5, transform=self.t)
    with self.assertRaisesRegex(ParameterError, 'non-negative'):
      mel_to_linear.mel_to_magnitude(-self.mel, transform=self.t)


if __name__ == '__main__':
  tf.test.main()
