"""Level-normalised scoring (issue 23 item 3): the shifted prior, the level measure, the
level split of the warm start and the option."""

import numpy as np
import pytest
import tensorflow as tf

from basis.mixing import DbPowerSum
from basis.priors import GaussianPrior
from common.errors import ParameterError
from experiments.basis_separator import (DEFAULT_PRIOR_DIRS, BasisOptions, BasisSeparator,
                                         LevelShiftedPrior, LevelSplitSeparator,
                                         patch_levels_db, track_level_db)
from pipeline.config import FeatureConfig

FEATURES = FeatureConfig()
SPAN_DB = FEATURES.db_range[1] - FEATURES.db_range[0]


class LevelShiftedPriorTest(tf.test.TestCase):

  def test_shifted_score_is_the_score_of_the_shifted_gaussian(self):
    # N(mu, v) scored at x + d is N(mu - d, v): -(x + d - mu) / (v + sigma^2).
    mu, var, offset = 0.6, 0.01, 20.0 / SPAN_DB
    prior = LevelShiftedPrior(GaussianPrior(np.full((4, 3, 1), mu), variance=var))
    prior.set_offset(offset)
    x = tf.random.stateless_uniform((2, 4, 3, 1), (1, 2))
    for sigma in (1.0, 0.1, 0.01):
      expected = -(x + offset - mu) / (var + sigma ** 2)
      self.assertAllClose(prior.score(x, sigma), expected, rtol=1e-5, atol=1e-5)  # float32

  def test_one_offset_per_patch(self):
    prior = LevelShiftedPrior(GaussianPrior(np.zeros((2, 2, 1)), variance=0.0))
    prior.set_offset([0.1, 0.2, 0.3])
    x = tf.zeros((3, 2, 2, 1))
    # variance 0: the score is -(x + offset) / sigma^2
    self.assertAllClose(prior.score(x, 1.0)[:, 0, 0, 0], [-0.1, -0.2, -0.3])
    # a shorter batch (the separator's one-example check) uses the first offsets
    self.assertAllClose(prior.score(x[:1], 1.0)[:, 0, 0, 0], [-0.1])

  def test_offset_zero_is_the_prior_and_attributes_pass_through(self):
    inner = GaussianPrior(np.zeros((2, 2, 1)), variance=1.0)
    prior = LevelShiftedPrior(inner)
    x = tf.ones((1, 2, 2, 1))
    self.assertAllEqual(prior.score(x, 0.5), inner.score(x, 0.5))
    self.assertEqual(prior.event_shape, inner.event_shape)

  def test_offset_is_read_by_a_compiled_step(self):
    prior = LevelShiftedPrior(GaussianPrior(np.zeros((1, 1, 1)), variance=0.0))
    step = tf.function(lambda x: prior.score(x, 1.0))
    x = tf.zeros((1, 1, 1, 1))
    first = float(step(x)[0, 0, 0, 0])
    prior.set_offset(0.5)                     # no retrace: the variable is read at run time
    self.assertAllClose([first, float(step(x)[0, 0, 0, 0])], [0.0, -0.5])


class LevelMeasureTest(tf.test.TestCase):

  def test_a_gain_adds_to_the_level_above_the_floor(self):
    rng = np.random.default_rng(0)
    image = rng.uniform(0.3, 0.7, size=(96, 150, 1)).astype(np.float32)
    gained = image + np.float32(-12.0 / SPAN_DB)
    self.assertAllClose(track_level_db(gained, FEATURES), track_level_db(image, FEATURES) - 12.0,
                        atol=1e-3)                        # float32 unit values

  def test_patch_levels_of_a_constant_image(self):
    image = np.full((2, 96, 130, 1), 0.5, np.float32)     # -40 dB everywhere
    levels = patch_levels_db(image, FEATURES)
    self.assertEqual(levels.shape, (2, 3))                # 64 + 64 + 2 frames
    self.assertAllClose(levels, np.full((2, 3), -40.0), atol=1e-3)


class LevelSplitTest(tf.test.TestCase):

  def test_level_split_sums_to_the_mixture(self):
    mixing = DbPowerSum.from_features(FEATURES)
    priors = [GaussianPrior(np.zeros((4, 4, 1)), variance=1.0) for _ in range(2)]
    sep = LevelSplitSeparator(priors, sigmas=[1.0, 0.01], steps_per_sigma=1, mixing=mixing,
                              start_sigma=0.01)
    sep.set_start_shares([0.0, -20.0], SPAN_DB)
    mixture = tf.fill((3, 4, 4, 1), 0.7)
    xs = sep.warm_start(mixture, seed=0)
    noise_free = xs - 0.01 * tf.random.stateless_normal(
        xs.shape, tf.constant([0, 0x3A37], tf.int32))
    self.assertAllClose(mixing(noise_free), mixture, atol=1e-5)
    # the second source 20 dB below the first
    self.assertAllClose((noise_free[0] - noise_free[1]) * SPAN_DB, tf.fill((3, 4, 4, 1), 20.0),
                        atol=1e-3)

  def test_no_shares_is_the_equal_split(self):
    priors = [GaussianPrior(np.zeros((2, 2, 1)), variance=1.0) for _ in range(2)]
    mixing = DbPowerSum.from_features(FEATURES)
    sep = LevelSplitSeparator(priors, sigmas=[1.0, 0.01], steps_per_sigma=1, mixing=mixing,
                              start_sigma=0.01)
    sep.set_start_shares(None, SPAN_DB)
    self.assertAllEqual(sep.start_shift, [0.0, 0.0])


class LevelOptionTest(tf.test.TestCase):

  def test_raises_on_unknown_level_mode(self):
    with self.assertRaisesRegex(ParameterError, "level_normalise must be one of.*'always'"):
      BasisOptions(level_normalise='always')

  def test_raises_on_non_finite_prior_level(self):
    with self.assertRaisesRegex(ParameterError, 'prior_level_db must be finite'):
      BasisOptions(prior_level_db=float('nan'))


class LevelSeparatorTest(tf.test.TestCase):

  def _separator(self, **options):
    # One Langevin step per level: the plumbing, not the quality.
    opts = BasisOptions(steps_per_sigma=1, check_step=False, magnitude='pinv',
                        precision='float32', **options)
    return BasisSeparator(DEFAULT_PRIOR_DIRS, ('piano', 'violin'), options=opts, log=None)

  def test_off_keeps_the_identity_of_earlier_separations(self):
    ident = self._separator().identity()['options']
    for name in ('level_normalise', 'level_passes', 'level_start', 'prior_level_db'):
      self.assertNotIn(name, ident)

  @pytest.mark.slow     # two separations of a 1 s mixture: about 14 s on a shared 2-core CPU
  def test_estimate_measures_levels_then_separates_again(self):
    sep = self._separator(level_normalise='estimate')
    mixture = 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    out = sep.separate(mixture, 16000)
    self.assertEqual({k: v.shape for k, v in out.items()},
                     {'piano': (16000,), 'violin': (16000,)})
    self.assertLen(sep.stats['source_levels_db'], 1)       # levels before the second pass
    self.assertEqual(sep.stats['n_patches'], 1)             # counted once, not per pass
    offsets = [float(p.offset.numpy()[0]) for p in sep.separator.priors]
    self.assertNotAllClose(offsets, [0.0, 0.0])

  def test_given_needs_levels(self):
    sep = self._separator(level_normalise='given')
    with self.assertRaisesRegex(ParameterError, 'needs set_source_levels'):
      sep.separate(np.full(16000, 0.1, np.float32), 16000)
    with self.assertRaisesRegex(ParameterError, 'one finite level per source'):
      sep.set_source_levels([0.0])


if __name__ == '__main__':
  tf.test.main()
