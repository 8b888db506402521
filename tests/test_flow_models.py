"""Whole Glow / RealNVP flows and the flow-family BASIS prior.

Tiny models (8 x 8 or 4 x 4 images, two levels, width 8) keep every test
well under a second or two.
"""

from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from basis import GaussianPrior, separate
from basis.flow_prior import FlowFamilyPrior
from flow_models import model as model_lib
from flow_models import utils
from flow_models.actnorm import ActNorm
from flow_models.glow import GlowConfig, build_glow
from flow_models.realnvp import RealNVPConfig, build_realnvp
from common.errors import ParameterError

tfb = tfp.bijectors
tfd = tfp.distributions

GLOW = GlowConfig(levels=2, steps_per_level=2, hidden_channels=8)
RNVP = RealNVPConfig(levels=2, steps_per_level=1, hidden_channels=8, res_blocks=1)
SHAPE = (8, 8, 1)


def _build(kind, shape=SHAPE, dtype=tf.float32, **overrides):
  if kind == 'glow':
    return build_glow(GlowConfig(**dict(GLOW.to_dict(), **overrides)), shape, dtype=dtype)
  return build_realnvp(RealNVPConfig(**dict(RNVP.to_dict(), **overrides)), shape, dtype=dtype)


def _data(shape, seed, dtype=np.float32):
  """Digit-like fixed data in (0.02, 0.98): smooth blobs plus a little noise."""
  rng = np.random.default_rng(seed)
  n, h, w, c = shape
  yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
  centres = rng.uniform(0.3, 0.7, (n, 2, 1, 1))
  blob = np.exp(-((yy - centres[:, 0])**2 + (xx - centres[:, 1])**2) * 20)
  x = 0.1 + 0.8 * blob[..., None] + 0.05 * rng.standard_normal((n, h, w, c))
  return np.clip(x, 0.02, 0.98).astype(dtype)


def _trained_like(kind, shape=SHAPE, dtype=tf.float32, scale=0.05, seed=0):
  """A flow after data-dependent init with every weight moved off its init."""
  dist = _build(kind, shape, dtype)
  model_lib.initialize(dist, _data((16,) + shape, seed=seed, dtype=dtype.as_numpy_dtype))
  rng = np.random.default_rng(seed + 1)
  for v in dist.trainable_variables:
    v.assign(v + tf.constant(scale * rng.standard_normal(v.shape), v.dtype))
  return dist


def _standard_normal_log_prob(y):
  return np.sum(-0.5 * y**2 - 0.5 * np.log(2 * np.pi), axis=(1, 2, 3))


class FlowModelTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('glow_shift', 'glow', 'shift', 'affine'),
      ('glow_logit', 'glow', 'logit', 'affine'),
      ('glow_additive', 'glow', 'shift', 'additive'),
      ('realnvp_logit', 'realnvp', 'logit', 'affine'),
      ('realnvp_shift', 'realnvp', 'shift', 'affine'))
  def test_identity_couplings_give_the_base_density_plus_preprocessing(
      self, kind, pre, coupling):
    # Freshly built: couplings, priors and ActNorms are identities and each
    # 1x1 conv is a rotation, so log p(x) = log N(pre(x); 0, I) + log|pre'(x)|.
    dist = _build(kind, dtype=tf.float64, preprocessing=pre, coupling=coupling)
    x = _data((3,) + SHAPE, seed=1, dtype=np.float64)
    if pre == 'shift':
      want = _standard_normal_log_prob(x - 0.5)
    else:
      a = 0.05
      u = a + (1 - 2 * a) * x
      want = _standard_normal_log_prob(np.log(u / (1 - u))) + np.sum(
          np.log(1 - 2 * a) - np.log(u * (1 - u)), axis=(1, 2, 3))
    self.assertAllClose(dist.log_prob(x), want, atol=1e-9, rtol=1e-10)

  @parameterized.parameters('glow', 'realnvp')
  def test_whole_model_roundtrip_batched_unbatched_eager_compiled(self, kind):
    dist = _trained_like(kind)
    flow = model_lib.normalizing_flow(dist)
    fwd, inv = tf.function(flow.forward), tf.function(flow.inverse)
    for shape in ((4,) + SHAPE, SHAPE):
      x = _data((4,) + SHAPE, seed=2)[:shape[0]] if len(shape) == 4 else _data(
          (1,) + SHAPE, seed=2)[0]
      for f, g, mode in ((flow.forward, flow.inverse, 'eager'), (fwd, inv, 'tf.function')):
        z = f(tf.constant(x))
        self.assertEqual(z.shape[-1], np.prod(SHAPE))
        back = g(tf.constant(z.numpy()))
        # float32 through ~100 layers: 1e-4 absolute on values in [0, 1].
        self.assertAllClose(back, x, atol=1e-4, rtol=0, msg=f'{kind} {mode} {shape}')

  @parameterized.parameters('glow', 'realnvp')
  def test_log_prob_equals_base_of_latent_plus_autodiff_slogdet_float64(self, kind):
    shape = (4, 4, 1)
    dist = _trained_like(kind, shape, tf.float64, scale=0.1)
    flow = model_lib.normalizing_flow(dist)
    x = tf.constant(_data((2,) + shape, seed=3, dtype=np.float64))
    with tf.GradientTape() as tape:
      tape.watch(x)
      z = flow.forward(x)
    jac = tape.batch_jacobian(z, x).numpy().reshape(2, 16, 16)
    sign, logdet = np.linalg.slogdet(jac)
    self.assertAllEqual(sign != 0, [True, True])
    want = np.sum(-0.5 * z.numpy()**2 - 0.5 * np.log(2 * np.pi), axis=-1) + logdet
    # float64 everywhere: 1e-8 is loose by orders of magnitude.
    self.assertAllClose(dist.log_prob(tf.constant(x.numpy())), want, atol=1e-8, rtol=1e-10)

  @parameterized.parameters('glow', 'realnvp')
  def test_initialize_standardises_the_input_of_every_actnorm(self, kind):
    dist = _build(kind)
    x = _data((32,) + SHAPE, seed=4)
    self.assertFalse(model_lib.is_initialized(dist))
    model_lib.initialize(dist, x)
    self.assertTrue(model_lib.is_initialized(dist))
    outputs = []
    original = ActNorm._forward  # pylint: disable=protected-access

    def recording(self_, y):
      out = original(self_, y)
      outputs.append(out.numpy())
      return out

    # Couplings are still identities, so a second pass over the same batch
    # brings every ActNorm the input it was initialised on.
    with mock.patch.object(ActNorm, '_forward', recording):
      with model_lib.training_mode(dist):
        model_lib.normalizing_flow(dist).forward(tf.constant(x))
    self.assertLen(outputs, len(model_lib.actnorms(dist)))
    for out in outputs:
      axes = tuple(range(out.ndim - 1))
      self.assertAllClose(out.mean(axis=axes), np.zeros(out.shape[-1]), atol=1e-4)
      self.assertAllClose(out.var(axis=axes), np.ones(out.shape[-1]), atol=1e-3)

  def test_initialize_rejects_graph_mode_and_wrong_shapes(self):
    dist = _build('glow')
    with self.assertRaisesRegex(ParameterError, 'batch \\[batch, 8, 8, 1\\]'):
      model_lib.initialize(dist, np.zeros((4, 8, 8, 3), np.float32))

    @tf.function(autograph=False)   # let the ParameterError through unwrapped
    def init_in_graph(x):
      model_lib.initialize(dist, x)
      return x

    with self.assertRaisesRegex(ParameterError, 'eagerly'):
      init_in_graph(tf.zeros((2,) + SHAPE))

  @parameterized.parameters('glow', 'realnvp')
  def test_log_prob_finite_at_extreme_inputs(self, kind):
    dist = _trained_like(kind)
    for v in (0.0, 1.0):
      self.assertTrue(np.all(np.isfinite(dist.log_prob(tf.fill((2,) + SHAPE, v)).numpy())))
    if kind == 'glow':   # shift preprocessing: any real input has a density
      x = tf.constant(np.random.default_rng(5).normal(0, 20, (2,) + SHAPE), tf.float32)
      self.assertTrue(np.all(np.isfinite(dist.log_prob(x).numpy())))

  def test_batch_norm_uses_batch_statistics_only_in_training_mode(self):
    dist = _trained_like('realnvp')
    x = tf.constant(_data((6,) + SHAPE, seed=6))
    one = dist.log_prob(x[:1])[0]
    self.assertAllClose(dist.log_prob(x)[0], one, atol=1e-4)   # inference: independent
    with model_lib.training_mode(dist):
      in_batch = dist.log_prob(tf.constant(x.numpy()))[0]
    self.assertGreater(abs(float(in_batch - one)), 1e-3)

  def test_samples_have_the_image_shape_and_are_reproducible(self):
    dist = _trained_like('glow')
    a = model_lib.sample(dist, 3, seed=7, temperature=0.7)
    b = model_lib.sample(dist, 3, seed=7, temperature=0.7)
    self.assertEqual(a.shape, (3,) + SHAPE)
    self.assertAllEqual(a, b)
    cold = model_lib.sample(dist, 2, seed=8, temperature=0.0).numpy()
    self.assertAllClose(cold[0], cold[1], atol=1e-6)   # T = 0: the latent's mode

  def test_too_many_levels_for_the_image_raise(self):
    with self.assertRaisesRegex(ParameterError, 'at most 2 levels'):
      build_glow(GlowConfig(levels=3), (28, 28, 1))
    with self.assertRaisesRegex(ParameterError, 'at most 1 levels'):
      build_realnvp(RealNVPConfig(levels=2), (6, 6, 1))

  def test_configs_validate_and_round_trip_through_dicts(self):
    with self.assertRaisesRegex(ParameterError, 'coupling'):
      GlowConfig(coupling='spline')
    with self.assertRaisesRegex(ParameterError, 'steps_per_level'):
      RealNVPConfig(steps_per_level=0)
    with self.assertRaisesRegex(ParameterError, 'unknown GlowConfig keys'):
      GlowConfig.from_dict({'depth': 3})
    self.assertEqual(GlowConfig.from_dict(GLOW.to_dict()), GLOW)
    self.assertEqual(RealNVPConfig.from_dict(RNVP.to_dict()), RNVP)

  def test_print_summary_lists_every_trainable_variable(self):
    dist = _build('glow')
    lines = []
    total = utils.print_summary(dist, print_fn=lines.append)
    self.assertEqual(total, utils.num_parameters(dist))
    self.assertLen(lines, len(dist.trainable_variables) + 2)   # header + rows + total
    self.assertIn(f'{total:,d} values', lines[-1])
    self.assertTrue(any('conv1x1/log_abs_s' in line for line in lines))


def _affine_gaussian_flow(mean, std):
  """x = mean + std * z, z ~ N(0, I): a flow with closed-form score."""
  shape = mean.shape
  base = tfd.Sample(tfd.Normal(0.0, 1.0), shape)
  return tfd.TransformedDistribution(
      base, tfb.Chain([tfb.Shift(tf.constant(mean, tf.float32)),
                       tfb.Scale(tf.constant(std, tf.float32))]))


class FlowFamilyPriorTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.mean = rng.uniform(0.2, 0.8, (4, 4, 1)).astype(np.float32)
    self.var = rng.uniform(0.01, 0.05, (4, 4, 1)).astype(np.float32)
    self.sigmas = [1.0, 0.3, 0.1]
    # The member for sigma models the smoothed prior N(mean, var + sigma^2).
    self.family = FlowFamilyPrior(
        [(s, _affine_gaussian_flow(self.mean, np.sqrt(self.var + s**2)))
         for s in self.sigmas])
    self.gaussian = GaussianPrior(self.mean, variance=self.var)
    self.x = tf.constant(rng.uniform(0, 1, (5, 4, 4, 1)), tf.float32)

  def test_score_equals_the_analytic_gaussian_score_at_every_level(self):
    compiled = tf.function(self.family.score)
    for s in self.sigmas:
      want = self.gaussian.score(self.x, s)
      self.assertAllClose(self.family.score(self.x, s), want, rtol=1e-5, atol=1e-5)
      # Inside tf.function sigma is a scalar tensor: tf.switch_case picks the member.
      got = compiled(self.x, tf.constant(s, tf.float32))
      self.assertAllClose(got, want, rtol=1e-5, atol=1e-5)

  def test_score_of_an_untrained_glow_matches_its_gaussian_closed_form(self):
    # With identity couplings and priors, Glow is an affine map of N(0, I):
    # x = mu + A^{-1} z, so x ~ N(mu, (A^T A)^{-1}) with A its (constant) Jacobian.
    dist = _build('glow', (4, 4, 1))
    rng = np.random.default_rng(1)
    for a in model_lib.actnorms(dist):
      a.loc.assign(rng.normal(0, 0.3, a.loc.shape).astype(np.float32))
      a.log_scale.assign(rng.normal(0, 0.3, a.log_scale.shape).astype(np.float32))
    flow = model_lib.normalizing_flow(dist)
    x0 = tf.zeros([1, 4, 4, 1])
    with tf.GradientTape() as tape:
      tape.watch(x0)
      z0 = flow.forward(x0)
    jac = tape.batch_jacobian(z0, x0).numpy().reshape(16, 16).astype(np.float64)
    mu = flow.inverse(tf.zeros([1, 16])).numpy().reshape(16)
    cov = np.linalg.inv(jac.T @ jac)
    prior = FlowFamilyPrior([(0.1, dist)])
    want = GaussianPrior(mu.reshape(4, 4, 1), covariance=cov).score(self.x, 0.0)
    self.assertAllClose(prior.score(self.x, 0.1), want, rtol=1e-3, atol=1e-3)

  def test_repeated_eager_calls_with_the_same_tensor_give_the_same_score(self):
    dist = _trained_like('glow', (4, 4, 1))
    prior = FlowFamilyPrior([(0.1, dist)])
    first = prior.score(self.x, 0.1)
    self.assertAllEqual(prior.score(self.x, 0.1), first)   # not a stale cache hit
    self.assertGreater(float(tf.reduce_max(tf.abs(first))), 0.0)

  def test_validate_sigmas_accepts_family_levels_only(self):
    self.family.validate_sigmas([1.0, 0.3, 0.1])
    self.family.validate_sigmas([0.1 * (1 + 1e-5)])
    with self.assertRaisesRegex(ParameterError, 'sigma=0.5 is not a level'):
      self.family.validate_sigmas([1.0, 0.5])
    self.assertAllClose(self.family.sigmas, [0.1, 0.3, 1.0])

  def test_separate_with_the_family_matches_the_gaussian_prior(self):
    mixture = tf.constant(np.random.default_rng(2).uniform(0.5, 1.5, (3, 4, 4, 1)),
                          tf.float32)
    kwargs = dict(sigmas=self.sigmas, steps_per_sigma=5, step_size=1e-3, seed=4)
    got = separate(mixture, [self.family, self.family], **kwargs)
    want = separate(mixture, [self.gaussian, self.gaussian], **kwargs)
    self.assertEqual(got.shape, (2, 3, 4, 4, 1))
    # 15 Langevin steps; score differences of ~1e-6 stay ~1e-5.
    self.assertAllClose(got, want, atol=1e-4, rtol=1e-4)
    with self.assertRaisesRegex(ParameterError, 'not a level'):
      separate(mixture, [self.family, self.family], sigmas=[1.0, 0.05], steps_per_sigma=1)

  def test_rejects_bad_families_and_inputs(self):
    with self.assertRaisesRegex(ParameterError, 'at least one'):
      FlowFamilyPrior([])
    with self.assertRaisesRegex(ParameterError, 'distinct'):
      FlowFamilyPrior([(0.1, _affine_gaussian_flow(self.mean, 1.0 + 0 * self.mean))] * 2)
    with self.assertRaisesRegex(ParameterError, 'different event shapes'):
      FlowFamilyPrior([(0.1, _affine_gaussian_flow(self.mean, 1.0 + 0 * self.mean)),
                       (0.2, _affine_gaussian_flow(np.zeros((2, 2, 1), np.float32),
                                                   np.ones((2, 2, 1), np.float32)))])
    with self.assertRaisesRegex(ParameterError, 'models events \\(4, 4, 1\\)'):
      self.family.score(tf.zeros([2, 8, 8, 1]), 0.1)
    with self.assertRaisesRegex(ParameterError, 'not a flow family'):
      FlowFamilyPrior(self.get_temp_dir())


if __name__ == '__main__':
  tf.test.main()
