"""Noise schedules: the geometric NCSN sequence and the NCSNv2 data-driven choice."""

import numpy as np
from absl.testing import parameterized
from scipy import stats
from scipy.spatial import distance

from ncsn import schedules
from ncsn.schedules import NoiseSchedule
from common.errors import ParameterError


def _coverage(gamma, dim):
  """NCSNv2 technique 2: overlap of adjacent levels for ratio ``gamma``."""
  a = np.sqrt(2 * dim) * (gamma - 1)
  return stats.norm.cdf(a + 3 * gamma) - stats.norm.cdf(a - 3 * gamma)


class NoiseScheduleTest(parameterized.TestCase):

  @parameterized.parameters((1.0, 0.01, 10), (50.0, 0.01, 232), (2.0, 1.0, 2),
                            (0.3, 0.29, 7))
  def test_geometric_with_exact_endpoints_and_length(self, sigma_max, sigma_min,
                                                     num_levels):
    schedule = NoiseSchedule(sigma_max, sigma_min, num_levels)
    sigmas = schedule.sigmas
    self.assertEqual(sigmas.shape, (num_levels,))
    self.assertEqual(sigmas.dtype, np.float64)
    # float64 geomspace: endpoints and ratios exact to a few ulp.
    np.testing.assert_allclose(sigmas[[0, -1]], [sigma_max, sigma_min], rtol=1e-12)
    ratios = sigmas[:-1] / sigmas[1:]
    np.testing.assert_allclose(ratios, schedule.ratio, rtol=1e-10)
    self.assertTrue(np.all(np.diff(sigmas) < 0), 'levels must strictly decrease')
    self.assertGreater(schedule.ratio, 1.0)

  def test_ncsn_v1_is_the_original_setting(self):
    schedule = schedules.ncsn_v1()
    self.assertEqual((schedule.sigma_max, schedule.sigma_min, schedule.num_levels),
                     (1.0, 0.01, 10))
    # Ratio of the original: (1 / 0.01) ** (1 / 9) = 1.6681.
    self.assertAlmostEqual(schedule.ratio, 100 ** (1 / 9), places=12)

  def test_dict_roundtrip(self):
    schedule = NoiseSchedule(3.0, 0.02, 17)
    again = NoiseSchedule.from_dict(schedule.to_dict())
    self.assertEqual(again, schedule)
    np.testing.assert_array_equal(again.sigmas, schedule.sigmas)

  @parameterized.named_parameters(
      ('min_above_max', dict(sigma_max=0.1, sigma_min=1.0), 'sigma_min=1.0'),
      ('min_equals_max', dict(sigma_max=1.0, sigma_min=1.0), 'sigma_max=1.0'),
      ('min_zero', dict(sigma_min=0.0), 'sigma_min=0.0'),
      ('min_negative', dict(sigma_min=-0.5), 'sigma_min=-0.5'),
      ('one_level', dict(num_levels=1), 'num_levels .* got 1'),
      ('fractional_levels', dict(num_levels=2.5), 'num_levels .* got 2.5'),
  )
  def test_raises_on_bad_arguments_naming_the_value(self, kwargs, regex):
    with self.assertRaisesRegex(ParameterError, regex):
      NoiseSchedule(**kwargs)


class NcsnV2ScheduleTest(parameterized.TestCase):

  def test_sigma_max_is_the_largest_pairwise_distance(self):
    rng = np.random.default_rng(0)
    data = rng.uniform(size=(40, 3, 4, 2))    # images [n, h, w, c]
    schedule = schedules.ncsn_v2(data, sigma_min=0.01)
    expected = distance.pdist(data.reshape(40, -1)).max()
    # The library uses |a|^2 + |b|^2 - 2ab in float64: ~1e-12 relative.
    self.assertAlmostEqual(schedule.sigma_max, expected, delta=1e-9 * expected)
    self.assertEqual(schedule.sigma_min, 0.01)

  def test_subsampled_estimate_is_deterministic_and_a_lower_bound(self):
    rng = np.random.default_rng(1)
    data = rng.normal(size=(300, 5))
    true_max = distance.pdist(data).max()
    a = schedules.ncsn_v2(data, max_pairs=20, seed=3)
    b = schedules.ncsn_v2(data, max_pairs=20, seed=3)
    self.assertEqual(a, b)
    self.assertLessEqual(a.sigma_max, true_max * (1 + 1e-12))

  @parameterized.parameters(100, 784, 3072)
  def test_ratio_gives_the_minimal_number_of_levels_with_half_coverage(self, dim):
    data = np.zeros((2, dim))
    data[1, 0] = 20.0                         # max distance 20
    schedule = schedules.ncsn_v2(data, sigma_min=0.01)
    self.assertAlmostEqual(schedule.sigma_max, 20.0, places=9)
    # Technique 2: adjacent levels overlap with probability >= ~0.5 ...
    self.assertGreaterEqual(_coverage(schedule.ratio, dim), 0.5 - 1e-6)
    # ... and one level fewer would leave a gap (coverage below 0.5).
    fewer = NoiseSchedule(20.0, 0.01, schedule.num_levels - 1)
    self.assertLess(_coverage(fewer.ratio, dim), 0.5)

  def test_low_dimensional_data_caps_the_ratio_at_two(self):
    # For D = 10 the coverage stays above 0.5 up to gamma ~ 3.5; the bisection
    # searches gamma in (1, 2], so the ratio is capped at 2 (more levels than
    # the formula asks for, never fewer).
    data = np.zeros((2, 10))
    data[1, 0] = 20.0
    schedule = schedules.ncsn_v2(data, sigma_min=0.01)
    self.assertLessEqual(schedule.ratio, 2.0)
    self.assertGreater(schedule.ratio, 1.9)
    self.assertGreaterEqual(_coverage(schedule.ratio, 10), 0.5)

  def test_more_dimensions_need_more_levels(self):
    counts = []
    for dim in (4, 64, 784, 3072, 12288):
      data = np.zeros((2, dim))
      data[1, 0] = 10.0
      counts.append(schedules.ncsn_v2(data).num_levels)
    self.assertTrue(np.all(np.diff(counts) > 0), counts)

  def test_dim_argument_overrides_the_example_size(self):
    data = np.zeros((2, 4))
    data[1, 0] = 10.0
    self.assertEqual(schedules.ncsn_v2(data, dim=3072).num_levels,
                     schedules.ncsn_v2(np.pad(data, ((0, 0), (0, 3068)))).num_levels)

  @parameterized.parameters((3072, 50.0, 232), (12288, 90.0, 500), (27648, 140.0, 788))
  def test_level_count_close_to_the_published_configs(self, dim, sigma_max, published):
    # Song & Ermon (2020) configs: CIFAR-10 (3072 dims) sigma_1 = 50 with 232
    # levels, CelebA 64x64 90 / 500, LSUN church 96x96 140 / 788. Their ratios
    # give a coverage of ~0.567, not exactly 0.5, so the formula as stated in
    # the paper yields ~5% fewer levels (220, 473, 743); 10% bounds that.
    data = np.zeros((2, dim))
    data[1, 0] = sigma_max
    levels = schedules.ncsn_v2(data, sigma_min=0.01).num_levels
    self.assertLessEqual(levels, published)
    self.assertGreater(levels, 0.9 * published)

  def test_raises_on_a_single_example(self):
    with self.assertRaisesRegex(ParameterError, 'at least 2 examples, got 1'):
      schedules.ncsn_v2(np.zeros((1, 3)))

  def test_raises_when_data_spread_is_below_sigma_min(self):
    data = np.array([[0.0, 0.0], [0.0, 0.001]])      # max distance 0.001
    with self.assertRaisesRegex(ParameterError, 'sigma_min < sigma_max'):
      schedules.ncsn_v2(data, sigma_min=0.01)
