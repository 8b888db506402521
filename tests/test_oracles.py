"""Oracle separators: IBM, IRM, Wiener and MWF in the STFT and mel domains."""

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from baselines import oracles
from evaluation import si_sdr
from inversion import masks
from pipeline import FeatureConfig
from pipeline import ParameterError

SR = 16000


def _tones(n_channels=None):
  t = np.arange(SR) / SR
  s = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1250 * t)])
  s = s.astype(np.float32)
  if n_channels:
    # Different panning per source (identical rank-1 spatial images would
    # make the MWF's mixture covariance singular).
    pans = np.array([[1.0, 0.5], [0.4, 0.9]], np.float32)
    s = s[:, np.newaxis, :] * pans[:, :, np.newaxis]     # [2, 2, n]
  return s


def _inner(x):
  """Drops the first/last 2048 samples (edge frames only half-filled)."""
  return x[..., 2048:-2048]


class OracleTest(parameterized.TestCase):

  @parameterized.parameters('IBM1', 'IBM2', 'IRM1', 'IRM2', 'Wiener', 'MWF', 'IBM1-mel',
                            'IRM1-mel', 'IRM2-mel')
  def test_separates_two_tones(self, spec):
    s = _tones()
    est = oracles.separate(s, s.sum(axis=0), sample_rate=SR,
                           config=oracles.parse_method(spec))
    self.assertEqual(est.shape, s.shape)
    self.assertEqual(est.dtype, np.float32)
    # Tones 800 Hz apart fall in different bins (and mel bands): near perfect.
    # Measured: > 120 dB in the STFT domain, > 40 dB in the mel domain.
    floor = 30.0 if spec.endswith('-mel') else 60.0
    self.assertGreater(si_sdr(_inner(est), _inner(s)).min(), floor)

  def test_stereo_tones(self):
    s = _tones(n_channels=2)
    for spec in ('IBM1', 'IRM2', 'MWF', 'IRM2-mel'):
      est = oracles.separate(s, s.sum(axis=0), sample_rate=SR,
                             config=oracles.parse_method(spec))
      self.assertEqual(est.shape, (2, 2, SR))
      self.assertGreater(si_sdr(_inner(est), _inner(s), axis=(-2, -1)).min(), 30.0, spec)

  def test_irm_alpha_2_equals_the_wiener_filter(self):
    s = _tones() + 0.05 * np.random.RandomState(0).standard_normal((2, SR)).astype(np.float32)
    mix = s.sum(axis=0)
    est = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('IRM2'))
    transform = oracles.stft_transform(SR, 2048, 1024)
    x = transform.stft(mix).numpy()
    mags = np.abs(transform.stft(s).numpy())
    expected = transform.istft(masks.wiener_filter(mags, x, power=2.0), length=SR).numpy()
    np.testing.assert_allclose(est, expected, atol=1e-6)   # float32 round-off
    wiener = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('Wiener'))
    np.testing.assert_array_equal(wiener, est)

  def test_mono_mwf_is_the_wiener_filter(self):
    rng = np.random.RandomState(1)
    s = (0.1 * rng.standard_normal((3, SR))).astype(np.float32)
    mix = s.sum(axis=0)
    mwf = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('MWF'))
    irm2 = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('IRM2'))
    np.testing.assert_allclose(mwf, irm2, atol=1e-5)

  def test_soft_masks_sum_to_the_mixture(self):
    rng = np.random.RandomState(2)
    s = (0.1 * rng.standard_normal((2, SR))).astype(np.float32)
    mix = s.sum(axis=0)
    est = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('IRM1'))
    np.testing.assert_allclose(est.sum(axis=0), mix, atol=1e-5)

  def test_mwf_uses_the_spatial_image(self):
    # Two white noises with the same spectrum, panned to different sides:
    # only the spatial covariance tells them apart.
    rng = np.random.RandomState(3)
    mono = (0.1 * rng.standard_normal((2, SR))).astype(np.float32)
    pans = np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)
    s = mono[:, np.newaxis, :] * pans[:, :, np.newaxis]   # [2, 2, n]
    mix = s.sum(axis=0)
    mwf = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('MWF'))
    irm = oracles.separate(s, mix, sample_rate=SR, config=oracles.parse_method('IRM2'))
    score_mwf = si_sdr(_inner(mwf), _inner(s), axis=(-2, -1)).min()
    score_irm = si_sdr(_inner(irm), _inner(s), axis=(-2, -1)).min()
    self.assertGreater(score_mwf, 30.0)                   # exact inversion of the panning
    self.assertGreater(score_mwf, score_irm + 10.0)

  def test_spatial_covariance_normalised_per_frequency(self):
    # A source louder in one band than another: the per-frequency trace keeps
    # both bands' spatial covariances at trace n_channels, so the filter is
    # invariant to the source's spectral shape (the reference code's
    # whole-array trace is not).
    rng = np.random.RandomState(4)
    y = rng.standard_normal((2, 2, 40, 9)) + 1j * rng.standard_normal((2, 2, 40, 9))
    x = y.sum(axis=0)
    scaled = y.copy()
    scaled[0, :, :, 3] *= 100.0                       # boost one bin of source 0
    out = oracles.multichannel_wiener(y, x)
    np.testing.assert_allclose(out.sum(axis=0), x, atol=1e-8)   # gains sum to identity
    out_scaled = oracles.multichannel_wiener(scaled, scaled.sum(axis=0))
    np.testing.assert_allclose(out_scaled[..., [0, 1, 2, 4]],
                               oracles.multichannel_wiener(
                                   scaled[..., [0, 1, 2, 4]],
                                   scaled.sum(axis=0)[..., [0, 1, 2, 4]]), atol=1e-8)

  def test_names(self):
    self.assertEqual(oracles.parse_method('ibm1').name, 'IBM1')
    self.assertEqual(oracles.parse_method('IRM2-mel').name, 'IRM2-mel')
    self.assertEqual(oracles.parse_method('IBM1', theta=0.3).name, 'IBM1-theta0.3')
    self.assertEqual(oracles.parse_method('MWF').name, 'MWF')
    self.assertEqual(oracles.parse_method('Wiener').alpha, 2.0)

  def test_raises_on_bad_input(self):
    with self.assertRaisesRegex(ParameterError, "unknown oracle 'XYZ'"):
      oracles.parse_method('XYZ')
    with self.assertRaisesRegex(ParameterError, "MWF runs in the 'stft' domain only"):
      oracles.parse_method('MWF-mel')
    with self.assertRaisesRegex(ParameterError, 'hop_length=2048 must be at most'):
      oracles.OracleConfig(hop_length=2048)
    s = _tones()
    with self.assertRaisesRegex(ParameterError, 'differ in channels or length'):
      oracles.separate(s, s.sum(axis=0)[:-1], sample_rate=SR, config=oracles.OracleConfig())
    config = oracles.OracleConfig(domain='mel', features=FeatureConfig(sample_rate=22050))
    with self.assertRaisesRegex(ParameterError, 'for 22050 Hz but the audio is at 16000 Hz'):
      oracles.separate(s, s.sum(axis=0), sample_rate=SR, config=config)


if __name__ == '__main__':
  absltest.main()
