"""Annealed Langevin dynamics against an analytic Gaussian score."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from ncsn.sampling import annealed_langevin, langevin_step_sizes, make_sampler
from ncsn.schedules import NoiseSchedule
from common.errors import ParameterError

SIGMAS = NoiseSchedule(1.0, 0.01, 10).sigmas.astype(np.float32)   # original NCSN
MU = np.array([0.2, 0.4, 0.6, 0.8], np.float32)                   # target mean per dim
S = 0.1                                                           # target std


def gaussian_score(x, labels):
  """Score of N(MU, S^2) smoothed by level ``labels``: -(x - mu) / (S^2 + sigma^2)."""
  var = S ** 2 + tf.square(tf.gather(tf.constant(SIGMAS), labels))
  return -(x - MU) / var[:, None]


def exact_chain_moments(mean0, var0, step_lr=2e-5, n_steps_each=100):
  """Mean and variance of the discretised chain itself (it is linear-Gaussian).

  With alpha_i and a_i = alpha_i / (S^2 + sigma_i^2), one step is
  x <- (1 - a_i) x + a_i mu + sqrt(2 alpha_i) z, so
  m <- (1 - a) m + a mu and v <- (1 - a)^2 v + 2 alpha.

  Returns:
    ``(means [num_levels, 4], variances [num_levels])`` after each level.
  """
  sig = SIGMAS.astype(np.float64)
  m, v = np.full(4, mean0, np.float64), float(var0)
  means, variances = [], []
  for sigma in sig:
    alpha = step_lr * sigma ** 2 / sig[-1] ** 2
    a = alpha / (S ** 2 + sigma ** 2)
    for _ in range(n_steps_each):
      m = (1 - a) * m + a * MU
      v = (1 - a) ** 2 * v + 2 * alpha
    means.append(m)
    variances.append(v)
  return np.array(means), np.array(variances)


class AnnealedLangevinGaussianTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # 20000 chains x 4 dims, U[0, 1] start (mean 0.5, variance 1/12), the
    # original setting: eps 2e-5, T = 100, sigmas 1 -> 0.01 over 10 levels.
    cls.x0 = tf.random.stateless_uniform([20000, 4], [0, 1])
    kw = dict(n_steps_each=100, step_lr=2e-5, seed=[3, 4])
    raw, traj = tf.function(lambda x0: annealed_langevin(
        gaussian_score, x0, SIGMAS, denoise=False, return_trajectory=True, **kw))(cls.x0)
    cls.raw, cls.traj = raw.numpy(), traj.numpy()
    cls.denoised = tf.function(lambda x0: annealed_langevin(
        gaussian_score, x0, SIGMAS, denoise=True, **kw))(cls.x0).numpy()

  def test_samples_match_the_noise_smoothed_target(self):
    mean, var = self.raw.mean(0), self.raw.var(0)
    target_var = S ** 2 + SIGMAS[-1] ** 2           # N(mu, s^2 + sigma_L^2)
    # Mean: std error 0.1 / sqrt(20000) = 7e-4; 4e-3 is > 5 std.
    self.assertAllClose(mean, MU, atol=4e-3)
    # Variance: 100 steps at the last levels do not fully forget the larger
    # variance of the earlier levels; the exact chain is 2.8% above the
    # target (see the next test). Std error of a variance over 20000 chains:
    # sqrt(2 / 20000) = 1%. 7% covers bias + 4 std.
    self.assertAllClose(var, np.full(4, target_var), rtol=0.07)

  def test_samples_match_the_exact_moments_of_the_discretised_chain(self):
    means, variances = exact_chain_moments(0.5, 1 / 12)
    self.assertAllClose(means[-1], MU, atol=1e-6)   # the start is forgotten
    self.assertBetween(variances[-1] / (S ** 2 + SIGMAS[-1] ** 2), 1.02, 1.04)
    # Only sampling error is left: 1% per dimension, 5% is 5 std.
    self.assertAllClose(self.raw.var(0), np.full(4, variances[-1]), rtol=0.05)

  def test_trajectory_follows_the_exact_moments_level_by_level(self):
    self.assertEqual(self.traj.shape, (10, 20000, 4))
    self.assertAllEqual(self.traj[-1], self.raw)    # no denoising in this run
    means, variances = exact_chain_moments(0.5, 1 / 12)
    # The variance falls from 1.12 (level 1) to 0.0104; the std error of a
    # variance estimate is 1%, and 40 of them (10 levels x 4 dims) are
    # compared, so 6% (6 std) rather than 5%; no level showed a bias (seen:
    # max 2-4% over several seeds, of both signs). The mean's std error is
    # <= sqrt(1.12 / 20000) = 7.5e-3, so 0.04 is > 5 std.
    self.assertAllClose(self.traj.var(axis=1), np.tile(variances[:, None], (1, 4)),
                        rtol=0.06)
    self.assertAllClose(self.traj.mean(axis=1), means, atol=0.04)

  def test_denoising_step_applies_tweedie(self):
    # x + sigma_L^2 s(x, L) = mu + k (x - mu), k = S^2 / (S^2 + sigma_L^2),
    # applied to the same chains (same seed): exact up to float32 rounding.
    k = S ** 2 / (S ** 2 + SIGMAS[-1].astype(np.float64) ** 2)
    self.assertAllClose(self.denoised, MU + k * (self.raw - MU), atol=1e-5)
    # So the variance shrinks to ~S^2 (k^2 (S^2 + sigma_L^2) = 0.99 S^2) plus
    # the chain's 2.8% excess; 7% as above.
    self.assertAllClose(self.denoised.var(0), np.full(4, S ** 2), rtol=0.07)
    self.assertAllClose(self.denoised.mean(0), MU, atol=4e-3)


class AnnealedLangevinApiTest(tf.test.TestCase, parameterized.TestCase):

  def test_step_sizes_follow_sigma_squared(self):
    alphas = langevin_step_sizes(SIGMAS, 2e-5).numpy()
    self.assertAllClose(alphas, 2e-5 * (SIGMAS / SIGMAS[-1]) ** 2, rtol=1e-6)
    self.assertAllClose(alphas[[0, -1]], [0.2, 2e-5], rtol=1e-5)

  def test_same_seed_same_samples_other_seed_differs(self):
    x0 = tf.random.stateless_uniform([16, 4], [0, 2])
    kw = dict(n_steps_each=5, step_lr=2e-5)
    a = annealed_langevin(gaussian_score, x0, SIGMAS, seed=7, **kw)
    b = annealed_langevin(gaussian_score, x0, SIGMAS, seed=7, **kw)
    c = annealed_langevin(gaussian_score, x0, SIGMAS, seed=8, **kw)
    d = annealed_langevin(gaussian_score, x0, SIGMAS, seed=[7, 0], **kw)
    self.assertAllEqual(a, b)
    self.assertAllEqual(a, d)      # an int seed s means [s, 0]
    self.assertNotAllClose(a, c)

  def test_trajectory_of_images_and_same_samples_as_without_it(self):
    x0 = tf.random.stateless_uniform([6, 2, 3, 1], [0, 3])
    score = lambda x, labels: -(x - 0.5) / (0.01 + tf.reshape(
        tf.gather(tf.constant(SIGMAS), labels) ** 2, [-1, 1, 1, 1]))
    kw = dict(n_steps_each=3, seed=5)
    x, traj = annealed_langevin(score, x0, SIGMAS, return_trajectory=True, **kw)
    self.assertEqual(traj.shape, (10, 6, 2, 3, 1))      # [num_levels, batch, ...]
    self.assertEqual(traj.dtype, tf.float32)
    self.assertAllEqual(x, annealed_langevin(score, x0, SIGMAS, **kw))
    # The trajectory stops before the final denoising step.
    self.assertAllClose(x, traj[-1] + SIGMAS[-1] ** 2 * score(traj[-1], [9] * 6),
                        atol=1e-6)

  def test_make_sampler_clips_to_the_unit_interval_and_is_reproducible(self):
    sample = make_sampler(gaussian_score, SIGMAS, n_steps_each=2, denoise=False)
    x0 = tf.random.stateless_uniform([256, 4], [0, 4])
    out = sample(x0, tf.constant([1, 2]))
    self.assertAllInRange(out, 0.0, 1.0)
    self.assertAllEqual(out, sample(x0, tf.constant([1, 2])))
    self.assertNotAllClose(out, sample(x0, tf.constant([1, 3])))
    raw = annealed_langevin(gaussian_score, x0, SIGMAS, n_steps_each=2,
                            denoise=False, seed=[1, 2]).numpy()
    self.assertTrue(np.any((raw < 0) | (raw > 1)), 'clip never exercised')
    self.assertAllClose(out, np.clip(raw, 0, 1), atol=1e-6)

  def test_score_sees_the_current_level_index(self):
    seen = []

    def score(x, labels):
      seen.append(labels)
      return tf.zeros_like(x)

    # Eager: tf.while_loop runs the body in Python, once per step.
    annealed_langevin(score, tf.zeros([2, 1]), SIGMAS[:3], n_steps_each=2,
                      denoise=True)
    self.assertEqual([l.numpy().tolist() for l in seen],
                     [[0, 0], [0, 0], [1, 1], [1, 1], [2, 2], [2, 2], [2, 2]])

  @parameterized.named_parameters(
      ('zero_steps', dict(n_steps_each=0), 'n_steps_each .* got 0'),
      ('fractional_steps', dict(n_steps_each=2.5), 'n_steps_each .* got 2.5'),
      ('zero_lr', dict(step_lr=0.0), 'step_lr .* got 0.0'),
      ('negative_lr', dict(step_lr=-1e-5), 'step_lr .* got -1e-05'),
      ('nan_lr', dict(step_lr=float('nan')), 'step_lr .* got nan'),
  )
  def test_raises_on_bad_arguments(self, kwargs, regex):
    with self.assertRaisesRegex(ParameterError, regex):
      annealed_langevin(gaussian_score, tf.zeros([2, 4]), SIGMAS, **kwargs)
