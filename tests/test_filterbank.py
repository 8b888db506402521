"""The mel filterbank equals librosa's default (Slaney scale and norm)."""

import librosa
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from pipeline import ParameterError
from pipeline.filterbank import hz_to_mel, mel_filterbank, mel_to_hz


class MelFilterbankTest(parameterized.TestCase):

  def test_is_public_at_the_package_top_level(self):
    import pipeline  # pylint: disable=g-import-not-at-top
    self.assertIs(pipeline.mel_filterbank, mel_filterbank)
    fb = pipeline.mel_filterbank(sample_rate=16000, n_fft=2048, n_mels=96, fmin=125.0,
                                 fmax=7600.0)
    self.assertEqual(fb.shape, (1025, 96))   # [n_bins, n_mels], as MelTransform applies it

  @parameterized.parameters(
      # (sample_rate, n_fft, n_mels, fmin, fmax): the reference setting first.
      (16000, 2048, 96, 125.0, 7600.0),
      (22050, 2048, 128, 0.0, None),
      (8000, 512, 40, 20.0, 4000.0),
      (44100, 4096, 256, 30.0, 16000.0),
      (16000, 1024, 80, 0.0, 8000.0),
  )
  def test_matches_librosa_slaney(self, sample_rate, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels,
                          fmin=fmin, fmax=fmax)
    ref = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels,
                              fmin=fmin, fmax=fmax).T
    self.assertEqual(ours.shape, (1 + n_fft // 2, n_mels))
    self.assertEqual(ours.dtype, np.float32)
    # Both are built in float64 and rounded to float32: agree to 1e-6 (spec).
    np.testing.assert_allclose(ours, ref, atol=1e-6, rtol=0)

  def test_is_not_the_htk_filterbank_of_tf_signal(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    ours = mel_filterbank(sample_rate=16000, n_fft=2048, n_mels=96,
                          fmin=125.0, fmax=7600.0)
    htk = tf.signal.linear_to_mel_weight_matrix(96, 1025, 16000, 125.0, 7600.0).numpy()
    self.assertGreater(np.abs(ours - htk).max(), 0.1)

  def test_mel_scale_roundtrip_and_break_point(self):
    f = np.array([0.0, 125.0, 999.0, 1000.0, 1001.0, 7600.0, 11025.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-12)
    self.assertAlmostEqual(float(hz_to_mel(1000.0)), 15.0)  # Slaney break
    np.testing.assert_allclose(hz_to_mel(f), librosa.hz_to_mel(f), rtol=1e-12)

  def test_each_band_has_unit_area_in_hz(self):
    fb = mel_filterbank(sample_rate=16000, n_fft=2048, n_mels=96, fmin=125.0,
                        fmax=7600.0, dtype=np.float64)
    bin_hz = 16000 / 2048
    # Triangles sampled on an 7.8 Hz grid: narrow low bands are coarsely
    # sampled, so allow 20 % there and 2 % for the wide high bands.
    area = fb.sum(axis=0) * bin_hz
    np.testing.assert_allclose(area[48:], 1.0, rtol=0.02)
    np.testing.assert_allclose(area, 1.0, rtol=0.2)

  @parameterized.parameters(
      dict(sample_rate=0, n_fft=2048, n_mels=96, fmin=0.0, fmax=None),
      dict(sample_rate=16000, n_fft=-1, n_mels=96, fmin=0.0, fmax=None),
      dict(sample_rate=16000, n_fft=2048, n_mels=96, fmin=8000.0, fmax=100.0),
      dict(sample_rate=16000, n_fft=2048, n_mels=96, fmin=0.0, fmax=9000.0),
  )
  def test_raises_on_bad_parameters(self, **kwargs):
    with self.assertRaisesRegex(ParameterError, r'\d'):
      mel_filterbank(**kwargs)


if __name__ == '__main__':
  absltest.main()
