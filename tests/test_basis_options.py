"""BASIS in fewer calls: schedule shapes, warm start, Tweedie step, hard constraint.

Every option must still land on the closed-form posterior mean of a Gaussian
problem; the hard constraint must hold exactly (three sources with full
covariances: tests/test_basis.py); the calls study must resume.
"""

import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from basis import DbPowerSum, GaussianPrior, Separator, separate
from basis.mixing import mix_mean, mix_sum, project_onto_mixture, split_mixture
from basis.sampler import parse_level_steps, sampler_settings
from experiments.studies import basis_calls
from pipeline import ParameterError

SIGMAS = np.geomspace(1.0, 0.01, 10)
UNEVEN = [0, 0, 40, 60, 80, 100, 100, 100, 100, 100]


def _problem(dim=6, seed=0):
  rng = np.random.default_rng(seed)
  mu = rng.uniform(0, 1, (2, dim))
  var = rng.uniform(0.01, 0.2, (2, dim))
  x = mu + np.sqrt(var) * rng.standard_normal((2, dim))
  return mu, var, x[0] + x[1]


class OptionsLandOnThePosteriorMeanTest(tf.test.TestCase, parameterized.TestCase):
  """x_k ~ N(mu_k, diag v_k), m = x_1 + x_2 (as tests/test_basis.py), for each option."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.mu, cls.var, cls.m = _problem()
    cls.chains = 4000
    cls.priors = [GaussianPrior(cls.mu[0], variance=cls.var[0]),
                  GaussianPrior(cls.mu[1], variance=cls.var[1])]
    cls.mix = np.tile(cls.m[None], (cls.chains, 1)).astype(np.float32)

  @parameterized.named_parameters(
      ('uneven_steps', dict(steps_per_sigma=UNEVEN)),
      ('warm_start', dict(start_sigma=SIGMAS[3])),
      ('denoise', dict(denoise=True)),
      ('hard', dict(constraint='hard')),
      ('hard_denoise', dict(constraint='hard', denoise=True)),
      ('all_at_once', dict(constraint='hard', denoise=True, start_sigma=SIGMAS[2],
                           steps_per_sigma=UNEVEN, step_size=6e-5)),
  )
  def test_chain_mean_matches_closed_form_posterior_mean(self, options):
    options = dict(dict(steps_per_sigma=100, step_size=3e-5), **options)
    xs = separate(self.mix, self.priors, sigmas=SIGMAS, seed=1, **options).numpy()
    mu, var, m = self.mu, self.var, self.m
    post_mean = mu[0] + var[0] / (var[0] + var[1]) * (m - mu[0] - mu[1])
    post_sd = np.sqrt(var[0] * var[1] / (var[0] + var[1]))
    tol = 4 * post_sd / np.sqrt(self.chains) + 0.01 * post_sd   # as tests/test_basis.py
    np.testing.assert_array_less(np.abs(xs[0].mean(0) - post_mean), tol)
    np.testing.assert_array_less(np.abs(xs[1].mean(0) - (m - post_mean)), tol)
    if options.get('constraint') == 'hard':
      # The mixture holds to float32 rounding, chain by chain.
      np.testing.assert_allclose(xs.sum(0), self.mix, atol=2e-6)

  def test_hard_constraint_with_mean_mixing_keeps_the_mean(self):
    prior = GaussianPrior(np.full(5, 0.5), variance=np.full(5, 0.05))
    mix = np.random.default_rng(0).uniform(0.2, 0.8, (16, 5)).astype(np.float32)
    xs = separate(mix, [prior, prior], sigmas=SIGMAS[:4], steps_per_sigma=5, mixing='mean',
                  constraint='hard', denoise=True).numpy()
    np.testing.assert_allclose(xs.mean(0), mix, atol=2e-6)


class ScheduleTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.prior = GaussianPrior(np.zeros(3), variance=np.ones(3))

  def test_a_uniform_list_is_the_int_schedule_and_counts_calls(self):
    a = Separator([self.prior, self.prior], sigmas=SIGMAS[:3], steps_per_sigma=4)
    b = Separator([self.prior, self.prior], sigmas=SIGMAS[:3], steps_per_sigma=[4, 4, 4])
    self.assertAllEqual(a(np.ones((2, 3)), seed=3), b(np.ones((2, 3)), seed=3))
    self.assertEqual(a.calls_per_source, 12)
    c = Separator([self.prior, self.prior], sigmas=SIGMAS[:3], steps_per_sigma=[0, 2, 5],
                  denoise=True)
    self.assertEqual(c.calls_per_source, 8)
    self.assertEqual(c.settings()['calls_per_source'], 8)
    levels = []
    c(np.ones((2, 3)), progress=lambda i, s: levels.append(i))
    self.assertEqual(levels, [1, 2])   # a level with 0 steps is skipped
    _, traj = c(np.ones((2, 3)), return_trajectory=True)
    self.assertEqual(traj.shape[0], 2)

  def test_warm_start_skips_the_levels_above_and_starts_near_the_split(self):
    sep = Separator([self.prior, self.prior], sigmas=SIGMAS, steps_per_sigma=1,
                    start_sigma=float(SIGMAS[4]))
    self.assertEqual(sep.active_levels, list(range(4, 10)))
    self.assertEqual(sep.calls_per_source, 6)
    start = sep.warm_start(tf.fill([500, 3], 2.0), seed=0).numpy()
    self.assertAllClose(start.mean(axis=(1, 2)), [1.0, 1.0], atol=0.02)   # m / 2 each
    self.assertAllClose(start.std(), SIGMAS[4], rtol=0.05)

  def test_split_mixture_inverts_each_mixing(self):
    m = tf.constant(np.random.default_rng(1).uniform(0.3, 0.9, (4, 6)), tf.float32)
    db = DbPowerSum(-100.0, 20.0)
    for mixing in (mix_sum, mix_mean, db):
      split = split_mixture(mixing, m, 3)
      self.assertAllClose(mixing(tf.stack([split] * 3)), m, atol=1e-5)
    xs = tf.random.uniform([2, 4, 6])
    for mixing in (mix_sum, mix_mean):
      self.assertAllClose(mixing(project_onto_mixture(mixing, m, xs)), m, atol=1e-6)

  def test_clear_errors(self):
    priors = [self.prior, self.prior]
    cases = [
        (dict(start_sigma=0.5), 'not a level of the schedule'),
        (dict(start_sigma=float('nan')), 'start_sigma must be a positive number'),
        (dict(steps_per_sigma=[1, 2]), 'lists 2 levels, the schedule has 10'),
        (dict(steps_per_sigma=[0] * 10), 'no Langevin steps'),
        (dict(steps_per_sigma=[1] * 9 + [-1]), 'ints >= 0'),
        (dict(steps_per_sigma=[0] * 5 + [1] * 5, start_sigma=float(SIGMAS[7])),
         None),   # fine: levels 7-9 run
        (dict(steps_per_sigma=[1] * 5 + [0] * 5, start_sigma=float(SIGMAS[7])),
         'no Langevin steps'),
        (dict(constraint='exact'), 'constraint must be one of'),
        (dict(constraint='hard', mixing=DbPowerSum(-100.0, 20.0)), 'needs a linear mixing'),
    ]
    for kwargs, message in cases:
      if message is None:
        Separator(priors, sigmas=SIGMAS, **kwargs)
        continue
      with self.assertRaisesRegex(ParameterError, message, msg=str(kwargs)):
        Separator(priors, sigmas=SIGMAS, **kwargs)
    warm = Separator(priors, sigmas=SIGMAS, steps_per_sigma=1, start_sigma=float(SIGMAS[5]))
    with self.assertRaisesRegex(ParameterError, 'exclude each other'):
      warm(np.ones((2, 3)), init='normal')
    odd = Separator(priors, sigmas=SIGMAS, steps_per_sigma=1, start_sigma=float(SIGMAS[5]),
                    mixing=lambda xs: tf.reduce_max(xs, axis=0))
    with self.assertRaisesRegex(ParameterError, 'no split'):
      odd(np.ones((2, 3)))


class SamplerTest(tf.test.TestCase):

  def test_presets_and_overrides(self):
    paper = sampler_settings('paper', mixing=mix_mean)
    self.assertEqual((paper.steps_per_sigma, paper.step_size, paper.constraint, paper.denoise),
                     (100, 3e-5, 'likelihood', False))
    fast = sampler_settings('fast', mixing=mix_mean)
    self.assertEqual((fast.steps_per_sigma, fast.constraint, fast.denoise),
                     (20, 'hard', True))
    mel = sampler_settings('fast', mixing=DbPowerSum(-100.0, 20.0))
    self.assertEqual((mel.constraint, mel.start_level, mel.steps_per_sigma, mel.denoise),
                     ('likelihood', 2, 25, True))   # the power sum is not linear
    kwargs = mel.separator_kwargs(SIGMAS)
    self.assertEqual(kwargs['start_sigma'], SIGMAS[2])
    self.assertNotIn('start_level', kwargs)
    self.assertIsNone(fast.separator_kwargs(SIGMAS)['start_sigma'])
    with self.assertRaisesRegex(ParameterError, 'outside the schedule'):
      sampler_settings('fast', mixing=mix_mean, start_level=10).separator_kwargs(SIGMAS)
    flow = sampler_settings('fast', mixing=mix_mean, prior_kind='flow', steps_per_sigma=7)
    self.assertEqual((flow.step_size, flow.steps_per_sigma, flow.constraint), (3e-6, 7,
                                                                               'likelihood'))
    with self.assertRaisesRegex(ParameterError, 'unknown sampler'):
      sampler_settings('slow', mixing=mix_mean)

  def test_level_steps_flag_parsing(self):
    self.assertIsNone(parse_level_steps(None))
    self.assertEqual(parse_level_steps(['0', ' 2', '25']), (0, 2, 25))
    for bad in (['1', '-1'], ['1', 'x'], ['2.5']):
      with self.assertRaisesRegex(ParameterError, 'comma list of ints >= 0'):
        parse_level_steps(bad)


class CallsStudyTest(tf.test.TestCase):

  def test_level_steps_spend_the_budget(self):
    for calls in (10, 11, 57, 200, 1000):
      for profile in basis_calls.PROFILES:
        for start, denoise in ((0, False), (3, True)):
          if calls - denoise < 10 - start:
            continue
          steps = basis_calls.level_steps_for(calls, 10, start_level=start, denoise=denoise,
                                              profile=profile)
          self.assertLen(steps, 10)
          self.assertEqual(sum(steps) + denoise, calls)
          self.assertEqual(steps[:start], [0] * start)
          self.assertGreater(min(steps[start:]), 0)
    front = basis_calls.level_steps_for(150, 10, profile='front')
    self.assertGreater(front[0], front[-1])
    with self.assertRaisesRegex(ParameterError, 'cannot give each'):
      basis_calls.level_steps_for(5, 10)

  def test_cells_score_resume_and_report(self):
    rng = np.random.default_rng(0)
    prior = GaussianPrior(np.full((4, 4, 1), 0.5), variance=np.full((4, 4, 1), 0.05))
    sources = rng.uniform(0.2, 0.8, (2, 6, 4, 4, 1)).astype(np.float32)
    out = self.create_tempdir().full_path
    rows = {'basis': basis_calls.ROWS['basis'], 'hard': basis_calls.ROWS['hard_6e-5_denoise']}
    cells = [('basis', 10), ('hard', 11), ('basis', 20)]
    logs = []
    first = basis_calls.run_cells([prior, prior], SIGMAS, sources, cells, out_dir=out,
                                  score=basis_calls.psnr_per_mixture, batch_size=4,
                                  rows=rows, log=logs.append)
    self.assertEqual([c['calls_per_source'] for c in first], [10, 11, 20])
    for c in first:
      self.assertLen(c['per_mixture'], 6)
      self.assertTrue(np.isfinite(c['mean']))
    again = basis_calls.run_cells([prior, prior], SIGMAS, sources, cells, out_dir=out,
                                  score=basis_calls.psnr_per_mixture, batch_size=4,
                                  rows=rows, log=logs.append)
    self.assertEqual(sum('done before' in line for line in logs), 3)
    self.assertEqual([c['mean'] for c in again], [c['mean'] for c in first])
    # Another study identity recomputes instead of reusing.
    basis_calls.run_cells([prior, prior], SIGMAS, sources, cells[:1], out_dir=out,
                          score=basis_calls.psnr_per_mixture, batch_size=4, rows=rows,
                          identity={'other': 1}, log=logs.append)
    self.assertEqual(sum('done before' in line for line in logs), 3)
    with open(os.path.join(out, 'cells', 'basis@10.json')) as f:
      self.assertEqual(json.load(f)['identity'], {'other': 1})
    text = basis_calls.table(first, reference=12.0)
    self.assertIn('| basis |', text)
    self.assertIn('no separation', text)
    png = os.path.join(out, 'plot.png')
    basis_calls.plot(png, first, reference=12.0)
    self.assertGreater(os.path.getsize(png), 1000)

  def test_config_rejects_unknown_rows_and_small_budgets(self):
    with self.assertRaisesRegex(ParameterError, 'unknown row'):
      basis_calls.CallStudyConfig(out_dir='x', curve_rows=('nope',))
    with self.assertRaisesRegex(ParameterError, 'budgets must be >= 10'):
      basis_calls.CallStudyConfig(out_dir='x', budgets=(5,))
    config = basis_calls.CallStudyConfig(out_dir='x', budgets=(100, 50), option_budgets=(50,))
    cells = config.cells()
    self.assertEqual(cells[0], ('basis', 50))
    self.assertEqual(len(cells), len(set(cells)))


if __name__ == '__main__':
  tf.test.main()
