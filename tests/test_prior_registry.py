"""The prior registry: a folder names its kind; one adapter + one entry adds a kind."""

import json
import os

import numpy as np
import tensorflow as tf

from basis import registry
from basis.sampler import sampler_settings
from basis.mixing import mix_sum
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRIORS = os.path.join(ROOT, 'assets', 'priors')


class ConstantScore:
  """A toy kind's adapter: the score of N(center, I) smoothed by sigma."""

  def __init__(self, folder):
    with open(os.path.join(folder, 'toy.json'), encoding='utf-8') as f:
      self.metadata = json.load(f)
    self.center = float(self.metadata['center'])
    self.event_shape = (2, 2, 1)
    self.sigmas = np.asarray([1.0, 0.1])
    self.features = None

  def score(self, x, sigma):
    return -(x - self.center) / (1.0 + tf.square(tf.cast(sigma, tf.float32)))


class PriorRegistryTest(tf.test.TestCase):

  def test_shipped_folders_name_their_kinds(self):
    self.assertEqual(registry.kind_of(os.path.join(PRIORS, 'ncsn_piano')).name, 'ncsn')
    self.assertEqual(registry.kind_of(os.path.join(PRIORS, 'glow_mnist_family')).name,
                     'flow_family')
    with self.assertRaisesRegex(ParameterError, 'glow_mnist is not a prior folder of any '
                                'registered kind'):
      registry.kind_of(os.path.join(PRIORS, 'glow_mnist'))       # one flow, not a family

  def test_loaded_priors_expose_sigmas_shape_and_features(self):
    prior, kind = registry.load_prior(os.path.join(PRIORS, 'ncsn_piano'))
    self.assertEqual(kind.init, 'uniform')
    self.assertEqual(prior.event_shape, (96, 64, 1))
    self.assertEqual(prior.features.n_mels, 96)
    self.assertLen(prior.sigmas, 10)
    self.assertEqual(prior.metadata['model'], 'ncsn')
    mnist, _ = registry.load_prior(os.path.join(PRIORS, 'ncsn_mnist'))
    self.assertIsNone(mnist.features)
    family, kind = registry.load_prior(os.path.join(PRIORS, 'glow_mnist_family'), kind='flow')
    self.assertEqual((kind.name, kind.init), ('flow_family', 'normal'))
    self.assertEqual(family.event_shape, (28, 28, 1))
    self.assertIsNone(family.features)

  def test_a_folder_of_another_kind_is_refused_naming_the_right_flag(self):
    with self.assertRaisesRegex(ParameterError, 'holds a ncsn prior, not a flow_family prior '
                                r'\(--prior_kind=ncsn loads it\)'):
      registry.load_prior(os.path.join(PRIORS, 'ncsn_mnist'), kind='flow')
    with self.assertRaisesRegex(ParameterError, "unknown prior kind 'gan'; registered kinds"):
      registry.get_kind('gan')
    with self.assertRaisesRegex(ParameterError, 'does not exist'):
      registry.kind_of(os.path.join(PRIORS, 'nowhere'))

  def test_the_sampler_takes_the_step_size_from_the_kind(self):
    sigmas = np.geomspace(1, 0.01, 10)
    ncsn = sampler_settings('paper', mixing=mix_sum, prior_kind='ncsn')
    flow = sampler_settings('fast', mixing=mix_sum, prior_kind='flow_family')
    self.assertEqual(ncsn.step_size, 3e-5)
    self.assertEqual((flow.step_size, flow.steps_per_sigma), (3e-6, 100))   # fast not measured
    self.assertIsNone(flow.separator_kwargs(sigmas)['start_sigma'])

  def test_a_new_kind_is_one_adapter_and_one_entry(self):
    tmp = self.create_tempdir().full_path
    with open(os.path.join(tmp, 'toy.json'), 'w') as f:
      json.dump({'kind': 'toy_gauss', 'center': 0.5}, f)
    kind = registry.register_kind(registry.PriorKind(
        name='toy_gauss', marker='toy.json', matches=lambda d: d.get('kind') == 'toy_gauss',
        load=lambda folder, dtype: ConstantScore(folder), init='uniform',
        paper_step_size=1e-4))
    self.addCleanup(registry._KINDS.pop, 'toy_gauss')     # pylint: disable=protected-access
    prior, found = registry.load_prior(tmp)
    self.assertIs(found, kind)
    self.assertEqual(sampler_settings('paper', mixing=mix_sum,
                                      prior_kind='toy_gauss').step_size, 1e-4)
    # BASIS runs with it: two toy sources under the exact mixture constraint.
    from basis import Separator  # pylint: disable=g-import-not-at-top
    sep = Separator([prior, prior], sigmas=np.geomspace(1, 0.1, 3), mixing=mix_sum,
                    steps_per_sigma=5, step_size=1e-3, constraint='hard')
    est = np.asarray(sep(np.ones((1, 2, 2, 1), np.float32), seed=0))
    self.assertTrue(np.all(np.isfinite(est)))
    self.assertAllClose(est.sum(axis=0), np.ones((1, 2, 2, 1)), atol=1e-5)
    with self.assertRaisesRegex(ParameterError, 'already registered'):
      registry.register_kind(kind)


if __name__ == '__main__':
  tf.test.main()
