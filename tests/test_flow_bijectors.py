"""Every flow bijector: round trips, ildj == -fldj, log-det against autodiff.

Each case builds one bijector on a tiny image event with its parameters
moved away from their (often identity) initial values, so the checks see a
non-trivial map. Inputs are fixed arrays: no bijector here adds noise.
"""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flow_models import couplings
from flow_models import networks
from flow_models import preprocessing
from flow_models import multiscale
from flow_models.actnorm import ActNorm
from flow_models.conv1x1 import InvertibleConv1x1
from common.errors import ParameterError

tfb = tfp.bijectors
tfd = tfp.distributions

EVENT = (4, 4, 2)
# float32 round trips through a few dozen flops per value: 1e-4 absolute on
# values of order 1 leaves two orders of margin over what we see (~1e-6).
ROUNDTRIP_ATOL = 1e-4


def _perturb(bijector, seed, scale=0.3):
  """Moves every trainable variable by ``scale * N(0, 1)`` (fixed seed)."""
  rng = np.random.default_rng(seed)
  for v in bijector.trainable_variables:
    v.assign(v + tf.constant(scale * rng.standard_normal(v.shape), v.dtype))
  return bijector


def _glow_net(c_in, c_out, dtype):
  return networks.GlowNetwork(c_in, c_out, 8, seed=3, dtype=dtype)


def _make(name, dtype):
  """``(bijector, event_shape)`` for case ``name`` in ``dtype``."""
  h, w, c = EVENT
  if name == 'actnorm':
    b = ActNorm(c, dtype=dtype)
  elif name == 'conv1x1':
    b = InvertibleConv1x1(c, seed=1, dtype=dtype)
  elif name in ('affine_coupling', 'additive_coupling', 'reverse_coupling'):
    kind = 'additive' if name == 'additive_coupling' else 'affine'
    b = couplings.AffineCoupling(_glow_net(1, networks.output_channels(kind, 1), dtype), c,
                                 kind=kind, reverse=name == 'reverse_coupling', dtype=dtype)
  elif name == 'exp_scale_coupling':
    b = couplings.AffineCoupling(networks.ZeroConvNetwork(1, 2, dtype=dtype), c,
                                 scale='exp', dtype=dtype)
  elif name == 'resnet_bn_coupling':
    net = networks.ResNetBN(1, 2, 8, res_blocks=1, seed=5, dtype=dtype)
    b = couplings.AffineCoupling(net, c, dtype=dtype)
  elif name in ('checkerboard', 'checkerboard_parity1'):
    net = _glow_net(2 * c, 4 * c, dtype)
    b = couplings.checkerboard_coupling(net, EVENT, parity=int(name.endswith('1')),
                                        dtype=dtype)
  elif name == 'squeeze':
    b = multiscale.squeeze(EVENT)
  elif name == 'shift_preprocessing':
    b = preprocessing.preprocessing_bijector('shift', dtype=dtype)
  elif name == 'logit_preprocessing':
    b = preprocessing.preprocessing_bijector('logit', logit_alpha=0.05, dtype=dtype)
  elif name == 'learned_top':
    b = multiscale.learned_top(EVENT, dtype=dtype)
  elif name == 'factor_out':
    inner = tfb.Chain([multiscale.flatten((h, w, 1)), ActNorm(1, dtype=dtype)])
    prior = couplings.AffineCoupling(networks.ZeroConvNetwork(1, 2, dtype=dtype), c,
                                     scale='exp', dtype=dtype)
    b = multiscale.factor_out(EVENT, 1, inner, split_prior=prior)
  else:
    raise ValueError(name)
  return _perturb(b, seed=len(name)), EVENT


CASES = ('actnorm', 'conv1x1', 'affine_coupling', 'additive_coupling', 'reverse_coupling',
         'exp_scale_coupling', 'resnet_bn_coupling', 'checkerboard', 'checkerboard_parity1',
         'squeeze', 'shift_preprocessing', 'logit_preprocessing', 'learned_top', 'factor_out')
NAMED = [dict(testcase_name=n, name=n) for n in CASES]


def _inputs(shape, seed, dtype=np.float32):
  """Fixed data-like inputs in (0.02, 0.98) (inside the logit's domain)."""
  return np.random.default_rng(seed).uniform(0.02, 0.98, shape).astype(dtype)


def _fresh(t):
  """A new tensor with the same values (TFP's bijector cache keys on identity)."""
  return tf.constant(np.asarray(t))


class BijectorContractTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*NAMED)
  def test_inverse_roundtrip_batched_and_unbatched_eager_and_compiled(self, name):
    b, event = _make(name, tf.float32)
    compiled_fwd, compiled_inv = tf.function(b.forward), tf.function(b.inverse)
    for shape in ((3,) + event, event):
      x = _inputs(shape, seed=1)
      for fwd, inv, mode in ((b.forward, b.inverse, 'eager'),
                             (compiled_fwd, compiled_inv, 'tf.function')):
        y = fwd(tf.constant(x))
        self.assertEqual(y.shape[:len(shape) - 3], shape[:-3], (name, mode))
        x_back = inv(_fresh(y))
        self.assertAllClose(x_back, x, atol=ROUNDTRIP_ATOL, rtol=0, msg=f'{name} {mode}')

  @parameterized.named_parameters(*NAMED)
  def test_ildj_equals_negative_fldj(self, name):
    b, event = _make(name, tf.float32)
    x = tf.constant(_inputs((3,) + event, seed=2))
    y = b.forward(x)
    fldj = b.forward_log_det_jacobian(x, event_ndims=3)
    y_event_ndims = b.forward_event_ndims(3)
    # A fresh y, so the ildj is computed, not read back from the cache.
    ildj = b.inverse_log_det_jacobian(_fresh(y), event_ndims=y_event_ndims)
    self.assertAllClose(ildj, -np.broadcast_to(fldj, ildj.shape), atol=1e-4, rtol=1e-5)

  @parameterized.named_parameters(*NAMED)
  def test_fldj_matches_autodiff_slogdet_float64(self, name):
    b, event = _make(name, tf.float64)
    d = int(np.prod(event))
    x = tf.constant(_inputs((2,) + event, seed=3, dtype=np.float64))
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = tf.reshape(b.forward(x), [2, d])
    jac = tf.reshape(tape.batch_jacobian(y, x), [2, d, d])
    sign, logdet = np.linalg.slogdet(jac.numpy())
    self.assertAllEqual(sign != 0, [True, True])
    cached = b.forward_log_det_jacobian(x, event_ndims=3)   # after forward(x)
    direct = b.forward_log_det_jacobian(_fresh(x), event_ndims=3)   # no cache
    # float64: agreement to ~1e-12 is typical; 1e-8 leaves room for the
    # conditioning of the Jacobian.
    self.assertAllClose(np.broadcast_to(cached, [2]), logdet, atol=1e-8, rtol=1e-8)
    self.assertAllClose(np.broadcast_to(direct, [2]), logdet, atol=1e-8, rtol=1e-8)

  @parameterized.named_parameters(*NAMED)
  def test_finite_forward_and_logdet_at_extreme_inputs(self, name):
    b, event = _make(name, tf.float32)
    if name == 'logit_preprocessing':
      values = (0.0, 1.0)   # the edges of its domain
    else:
      values = (-1e3, 1e3, 0.0)
    for v in values:
      x = tf.fill((2,) + event, tf.constant(v, tf.float32))
      x = x + tf.constant(_inputs((2,) + event, seed=4) * 1e-3)
      y = b.forward(x)
      fldj = b.forward_log_det_jacobian(_fresh(x), event_ndims=3)
      self.assertTrue(np.all(np.isfinite(y.numpy())), f'{name} forward at {v}')
      self.assertTrue(np.all(np.isfinite(np.asarray(fldj))), f'{name} fldj at {v}')


class ActNormTest(tf.test.TestCase):

  def test_data_init_gives_zero_mean_unit_variance_per_channel(self):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((16, 5, 5, 3)) * [0.1, 2.0, 7.0] + [3.0, -1.0, 0.5])
    x = tf.constant(x, tf.float32)
    a = ActNorm(3)
    self.assertFalse(bool(a.initialized.numpy()))
    a.data_init(x)
    self.assertTrue(bool(a.initialized.numpy()))
    y = a.forward(x).numpy()
    self.assertAllClose(y.mean(axis=(0, 1, 2)), np.zeros(3), atol=1e-5)
    self.assertAllClose(y.var(axis=(0, 1, 2)), np.ones(3), atol=1e-4)

  def test_data_init_on_a_constant_channel_is_finite(self):
    x = tf.concat([tf.ones([4, 3, 3, 1]), tf.random.stateless_normal([4, 3, 3, 1], [1, 2])], -1)
    a = ActNorm(2)
    a.data_init(x)
    self.assertTrue(np.all(np.isfinite(a.forward(x).numpy())))

  def test_rejects_wrong_channel_count(self):
    with self.assertRaisesRegex(ParameterError, 'has 3 channels'):
      ActNorm(3).data_init(tf.zeros([2, 4, 4, 2]))
    with self.assertRaisesRegex(ParameterError, 'num_channels'):
      ActNorm(0)


class Conv1x1Test(tf.test.TestCase):

  def test_starts_as_a_rotation_with_zero_logdet(self):
    conv = InvertibleConv1x1(6, seed=3)
    w = conv.weight().numpy()
    self.assertAllClose(w @ w.T, np.eye(6), atol=1e-5)
    # Constant Jacobian: TFP returns one scalar for the whole batch.
    self.assertAllClose(conv.forward_log_det_jacobian(tf.zeros([2, 4, 4, 6]), 3), 0.0,
                        atol=1e-5)

  def test_trains_lower_upper_and_log_abs_s_only(self):
    conv = InvertibleConv1x1(4)
    names = sorted(v.name.split('/')[-1].split(':')[0] for v in conv.trainable_variables)
    self.assertEqual(names, ['log_abs_s', 'lower', 'upper'])

  def test_inverse_weight_inverts_weight(self):
    conv = _perturb(InvertibleConv1x1(5, seed=2, dtype=tf.float64), seed=1)
    self.assertAllClose(conv.inverse_weight() @ conv.weight(), np.eye(5), atol=1e-10)


class CouplingTest(tf.test.TestCase):

  def test_zero_initialised_coupling_is_the_identity(self):
    for kind in couplings.COUPLING_KINDS:
      b = couplings.AffineCoupling(_glow_net(2, networks.output_channels(kind, 2), tf.float32),
                                   4, kind=kind)
      x = tf.constant(_inputs((2, 4, 4, 4), seed=5))
      self.assertAllClose(b.forward(x), x, atol=1e-7)
      self.assertAllClose(b.forward_log_det_jacobian(_fresh(x), 3), [0.0, 0.0], atol=1e-6)

  def test_network_runs_once_for_forward_and_logdet(self):
    calls = []
    net = _glow_net(1, 2, tf.float32)

    def counting(x):
      calls.append(1)
      return net(x)

    chain = tfb.Chain([couplings.AffineCoupling(counting, 2) for _ in range(3)])
    x = tf.constant(_inputs((2, 4, 4, 2), seed=6))
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [4, 4, 2]),
                                       tfb.Invert(chain))
    dist.log_prob(x)
    self.assertLen(calls, 3)   # tfb.RealNVP would run each network twice

  def test_checkerboard_leaves_one_colour_unchanged(self):
    for parity in (0, 1):
      b = _perturb(couplings.checkerboard_coupling(_glow_net(4, 8, tf.float32), EVENT,
                                                   parity=parity), seed=7)
      x = _inputs((1,) + EVENT, seed=8)
      y = b.forward(tf.constant(x)).numpy()
      rows, cols = np.indices(EVENT[:2])
      kept = ((rows + cols) % 2 == parity)
      self.assertAllClose(y[0][kept], x[0][kept], atol=1e-7)
      self.assertGreater(np.abs(y[0][~kept] - x[0][~kept]).max(), 1e-3)

  def test_rejects_a_network_with_the_wrong_channel_count(self):
    b = couplings.AffineCoupling(_glow_net(1, 3, tf.float32), 2)
    with self.assertRaisesRegex(ParameterError, 'returned 3 channels.*needs 2'):
      b.forward(tf.zeros([1, 4, 4, 2]))

  def test_rejects_bad_arguments(self):
    with self.assertRaisesRegex(ParameterError, 'kind'):
      couplings.AffineCoupling(None, 4, kind='spline')
    with self.assertRaisesRegex(ParameterError, 'num_channels'):
      couplings.AffineCoupling(None, 1)
    with self.assertRaisesRegex(ParameterError, 'even height'):
      multiscale.squeeze((5, 4, 1))


class SqueezeTest(tf.test.TestCase):

  def test_matches_the_reference_layout(self):
    x = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
    ref = x.reshape(2, 2, 2, 3, 2, 3).transpose(0, 1, 3, 5, 2, 4).reshape(2, 2, 3, 12)
    self.assertAllEqual(multiscale.squeeze((4, 6, 3)).forward(x), ref)


class PreprocessingTest(tf.test.TestCase):

  def test_logit_logdet_closed_form(self):
    alpha = 0.05
    x = _inputs((3, 2, 2, 1), seed=9, dtype=np.float64)
    b = preprocessing.preprocessing_bijector('logit', logit_alpha=alpha, dtype=tf.float64)
    u = alpha + (1 - 2 * alpha) * x
    self.assertAllClose(b.forward(x), np.log(u / (1 - u)), atol=1e-12)
    want = np.sum(np.log(1 - 2 * alpha) - np.log(u * (1 - u)), axis=(1, 2, 3))
    self.assertAllClose(b.forward_log_det_jacobian(x, 3), want, atol=1e-10)

  def test_bits_per_dim_of_uniform_data_is_log2_of_bins(self):
    # A density uniform on [0, 1]^D has log p = 0: exactly 8 bits for 8-bit data.
    self.assertAllClose(preprocessing.bits_per_dim(tf.zeros([2]), 784, num_bins=256),
                        [8.0, 8.0], atol=1e-6)

  def test_bits_per_dim_gaussian_closed_form(self):
    d, s = 12, 0.2
    x = _inputs((4, d), seed=10, dtype=np.float64)
    dist = tfd.Independent(tfd.Normal(tf.constant(0.5, tf.float64) * np.ones(d), s), 1)
    got = preprocessing.bits_per_dim(dist.log_prob(x), d, num_bins=256)
    nll = 0.5 * d * np.log(2 * np.pi * s**2) + ((x - 0.5)**2).sum(-1) / (2 * s**2)
    self.assertAllClose(got, (nll + d * np.log(256)) / (d * np.log(2)), atol=1e-10)
    # Same number from the explicit rescaling bijector: density of 256 x.
    in_bins = tfd.TransformedDistribution(dist, preprocessing.dequantization_rescale(
        256, dtype=tf.float64))
    self.assertAllClose(got, -in_bins.log_prob(256 * x) / (d * np.log(2)), atol=1e-10)

  def test_rejects_unknown_preprocessing_and_bad_bins(self):
    with self.assertRaisesRegex(ParameterError, 'preprocessing'):
      preprocessing.preprocessing_bijector('dequantize')
    with self.assertRaisesRegex(ParameterError, 'num_bins'):
      preprocessing.bits_per_dim(tf.zeros([1]), 4, num_bins=1)


if __name__ == '__main__':
  tf.test.main()
