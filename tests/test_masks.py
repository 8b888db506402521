"""inversion.masks: ratio / binary masks, applying them, Wiener filtering."""

import numpy as np
import tensorflow as tf

from inversion import masks
from common.errors import ParameterError


def _mags(seed=0, shape=(3, 2, 5, 7)):
  rng = np.random.default_rng(seed)
  return rng.uniform(0.0, 1.0, shape).astype(np.float32)


def _mixture(seed=1, shape=(2, 5, 7)):
  rng = np.random.default_rng(seed)
  return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


class RatioMaskTest(tf.test.TestCase):

  def test_matches_definition_and_sums_to_one(self):
    v = _mags()
    m = masks.ratio_mask(v, power=2.0)
    self.assertIsInstance(m, np.ndarray)
    self.assertEqual(m.dtype, np.float32)
    expected = v ** 2 / (v ** 2).sum(axis=0, keepdims=True)
    self.assertAllClose(m, expected, rtol=1e-5, atol=1e-6)
    self.assertAllClose(m.sum(axis=0), np.ones(v.shape[1:]), atol=1e-6)

  def test_all_zero_bins_split_equally(self):
    v = _mags()
    v[:, 0, 1, 2] = 0.0
    m = masks.ratio_mask(v, power=1.0)
    self.assertAllClose(m[:, 0, 1, 2], np.full(3, 1.0 / 3.0))
    self.assertTrue(np.isfinite(m).all())

  def test_tensor_in_tensor_out_float64_kept(self):
    v = tf.constant(_mags().astype(np.float64))
    m = masks.ratio_mask(v)
    self.assertIsInstance(m, tf.Tensor)
    self.assertEqual(m.dtype, tf.float64)

  def test_inside_tf_function(self):
    v = _mags()
    fn = tf.function(lambda x: masks.ratio_mask(x, power=2.0))
    self.assertAllClose(fn(tf.constant(v)), masks.ratio_mask(v), atol=1e-6)

  def test_raises_on_negative_magnitudes(self):
    v = _mags()
    v[1, 0, 0, 0] = -0.5
    with self.assertRaisesRegex(ParameterError, 'non-negative.*-0.5'):
      masks.ratio_mask(v)

  def test_raises_on_complex_and_bad_power(self):
    with self.assertRaisesRegex(ParameterError, 'must be real'):
      masks.ratio_mask(_mixture())
    with self.assertRaisesRegex(ParameterError, 'power must be a number > 0, got 0'):
      masks.ratio_mask(_mags(), power=0)


class BinaryMaskTest(tf.test.TestCase):

  def test_matches_definition(self):
    v = _mags()
    m = masks.binary_mask(v, power=1.0, theta=0.5)
    ratio = v / v.sum(axis=0, keepdims=True)
    self.assertAllEqual(m, (ratio >= 0.5).astype(np.float32))
    self.assertEqual(set(np.unique(m)), {0.0, 1.0})

  def test_uses_given_mixture_magnitude(self):
    v = _mags()
    x = np.abs(_mixture())
    m = masks.binary_mask(v, power=2.0, theta=0.3, mixture_mag=x)
    self.assertAllEqual(m, (v ** 2 / x[None] ** 2 >= 0.3).astype(np.float32))

  def test_two_sources_at_half_are_complementary_almost_everywhere(self):
    v = _mags(shape=(2, 4, 6))
    m = masks.binary_mask(v)  # ties (exactly equal) are measure zero here
    self.assertAllEqual(m.sum(axis=0), np.ones((4, 6)))

  def test_raises_on_mismatched_mixture_shape_and_theta(self):
    with self.assertRaisesRegex(ParameterError, r'mixture_mag has shape \(2, 5, 6\)'):
      masks.binary_mask(_mags(), mixture_mag=np.ones((2, 5, 6)))
    with self.assertRaisesRegex(ParameterError, 'theta must be a number >= 0, got -1'):
      masks.binary_mask(_mags(), theta=-1)


class ApplyAndWienerTest(tf.test.TestCase):

  def test_apply_masks_is_elementwise_product(self):
    v, x = _mags(), _mixture()
    m = masks.ratio_mask(v)
    s = masks.apply_masks(m, x)
    self.assertIsInstance(s, np.ndarray)
    self.assertEqual(s.dtype, np.complex64)
    self.assertAllClose(s, m * x[None], atol=1e-6)

  def test_wiener_estimates_sum_to_mixture(self):
    v, x = _mags(), _mixture()
    s = masks.wiener_filter(v, x)
    # float32 masks sum to one within ~1e-7; |X| ~ 1.
    self.assertAllClose(s.sum(axis=0), x, atol=1e-5)
    self.assertAllClose(s, masks.apply_masks(masks.ratio_mask(v), x), atol=1e-7)

  def test_wiener_with_exact_power_is_exact_for_disjoint_sources(self):
    x = _mixture(shape=(4, 6))
    support = np.random.default_rng(3).uniform(size=(4, 6)) > 0.5
    s_true = np.stack([np.where(support, x, 0), np.where(support, 0, x)])
    s = masks.wiener_filter(np.abs(s_true), x)
    self.assertAllClose(s, s_true, atol=1e-6)

  def test_tensor_inputs_inside_tf_function(self):
    v, x = _mags(), _mixture()
    fn = tf.function(lambda a, b: masks.wiener_filter(a, b, power=1.0))
    out = fn(tf.constant(v), tf.constant(x))
    self.assertIsInstance(out, tf.Tensor)
    self.assertAllClose(out, masks.wiener_filter(v, x, power=1.0), atol=1e-6)

  def test_raises_on_mismatched_mixture(self):
    with self.assertRaisesRegex(ParameterError, r'masks\[0\] has shape \(2, 5, 7\).*\(2, 5, 8\)'):
      masks.apply_masks(masks.ratio_mask(_mags()), _mixture(shape=(2, 5, 8)))
    with self.assertRaisesRegex(ParameterError, 'mags\\[0\\] has shape'):
      masks.wiener_filter(_mags(), _mixture(shape=(5, 7)))


if __name__ == '__main__':
  tf.test.main()
