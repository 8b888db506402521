"""Conditioner networks of the coupling layers, as plain ``tf.Module``s.

A coupling layer asks its network for the parameters of an elementwise
transform of one half of the channels given the other half:
``[n, height, width, in_channels] -> [n, height, width, out_channels]``.

Why not Keras layers: TFP bijectors need tf-keras (Keras 2) while TF 2.16's
``tf.keras`` is Keras 3, and in this repository Keras layers made tracing a
training step about 4x slower (see ``ncsn/model.py``); raw ops with
``tf.Variable`` weights avoid both.

* :class:`GlowNetwork`: conv 3x3 -> ReLU -> conv 1x1 -> ReLU -> conv 3x3
  with a zero-initialised last convolution (Kingma & Dhariwal 2018; the same
  layout as ``tfp.bijectors.GlowDefaultNetwork``), so that every coupling
  starts as the identity.
* :class:`ZeroConvNetwork`: one zero-initialised conv 3x3 (Glow's split
  prior; ``tfp.bijectors.GlowDefaultExitNetwork``).
* :class:`ResNetBN`: the RealNVP conditioner (Dinh et al. 2017): residual
  blocks with batch normalisation, zero-initialised output.

Batch normalisation has a training mode (batch statistics, moving averages
updated) and an inference mode (moving averages); :func:`training_mode`
switches every :class:`BatchNorm` below a module. The mode is a Python
attribute read when a function is traced, so a ``tf.function`` traced in
one mode keeps it.
"""

import contextlib
import numpy as np
import tensorflow as tf

from common.errors import ParameterError


def _check_positive_int(name, value):
  if isinstance(value, bool) or int(value) != value or value < 1:
    raise ParameterError(f'{name} must be a positive int, got {value!r}')
  return int(value)


class Conv2D(tf.Module):
  """A 'SAME'-padded, stride-1 convolution with bias.

  Args:
    in_channels, out_channels: int > 0.
    kernel_size: int > 0 (odd, so that 'SAME' padding is symmetric).
    init: 'he' (He-normal kernel, zero bias) or 'zeros' (kernel and bias 0).
    seed: int seeding the He-normal draw.
    dtype: float dtype of the weights.
  """

  def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
               init: str = 'he', seed: int = 0, dtype=tf.float32, name=None):
    super().__init__(name=name)
    in_channels = _check_positive_int('in_channels', in_channels)
    out_channels = _check_positive_int('out_channels', out_channels)
    kernel_size = _check_positive_int('kernel_size', kernel_size)
    shape = (kernel_size, kernel_size, in_channels, out_channels)
    if init == 'he':
      fan_in = kernel_size * kernel_size * in_channels
      kernel = np.random.default_rng(seed).standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif init == 'zeros':
      kernel = np.zeros(shape)
    else:
      raise ParameterError(f"init must be 'he' or 'zeros', got {init!r}")
    with self.name_scope:
      self.kernel = tf.Variable(tf.constant(kernel, dtype), name='kernel')
      self.bias = tf.Variable(tf.zeros([out_channels], dtype), name='bias')

  def __call__(self, x):
    """``[n, height, width, in_channels] -> [n, height, width, out_channels]``."""
    return tf.nn.bias_add(tf.nn.conv2d(x, self.kernel, 1, 'SAME'), self.bias)


class BatchNorm(tf.Module):
  """Batch normalisation over ``[n, height, width]`` per channel.

  Args:
    channels: int > 0.
    momentum: float in [0, 1), moving-average decay.
    epsilon: float > 0 added to the variance.
    dtype: float dtype.
  """

  def __init__(self, channels: int, *, momentum: float = 0.99, epsilon: float = 1e-4,
               dtype=tf.float32, name=None):
    super().__init__(name=name)
    channels = _check_positive_int('channels', channels)
    if not 0.0 <= momentum < 1.0:
      raise ParameterError(f'momentum must be in [0, 1), got {momentum!r}')
    self.momentum = float(momentum)
    self.epsilon = float(epsilon)
    self.training = False
    # Under a tf.distribute strategy each replica updates its own copy of the
    # moving statistics; reads average them (as Keras BatchNormalization).
    stat = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.MEAN)
    with self.name_scope:
      self.gamma = tf.Variable(tf.ones([channels], dtype), name='gamma')
      self.beta = tf.Variable(tf.zeros([channels], dtype), name='beta')
      self.moving_mean = tf.Variable(tf.zeros([channels], dtype), name='moving_mean', **stat)
      self.moving_variance = tf.Variable(tf.ones([channels], dtype), name='moving_variance',
                                         **stat)

  def __call__(self, x):
    if self.training:
      mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
      m = self.momentum
      self.moving_mean.assign(m * self.moving_mean + (1.0 - m) * tf.stop_gradient(mean))
      self.moving_variance.assign(
          m * self.moving_variance + (1.0 - m) * tf.stop_gradient(variance))
    else:
      mean, variance = self.moving_mean, self.moving_variance
    return tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.epsilon)


@contextlib.contextmanager
def training_mode(module: tf.Module, training: bool = True):
  """Sets every :class:`BatchNorm` below ``module`` to ``training`` for the block.

  Args:
    module: any ``tf.Module`` (a flow distribution, a network).
    training: True for batch statistics (and moving-average updates).
  """
  norms = [m for m in module.submodules if isinstance(m, BatchNorm)]
  if isinstance(module, BatchNorm):
    norms.append(module)
  before = [n.training for n in norms]
  for n in norms:
    n.training = bool(training)
  try:
    yield
  finally:
    for n, b in zip(norms, before):
      n.training = b


class GlowNetwork(tf.Module):
  """Glow's coupling network: conv3x3 -> ReLU -> conv1x1 -> ReLU -> zero conv3x3.

  Args:
    in_channels: int > 0, channels of the conditioning half.
    out_channels: int > 0, 2 x (transformed channels) for an affine coupling,
      1 x for an additive one.
    hidden_channels: int > 0, width of the two hidden layers.
    seed: int, seeds the He-normal weights.
    dtype: float dtype.
  """

  def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, *,
               seed: int = 0, dtype=tf.float32, name=None):
    super().__init__(name=name)
    with self.name_scope:
      self.conv_in = Conv2D(in_channels, hidden_channels, 3, seed=seed, dtype=dtype,
                            name='conv_in')
      self.conv_hidden = Conv2D(hidden_channels, hidden_channels, 1, seed=seed + 1,
                                dtype=dtype, name='conv_hidden')
      self.conv_out = Conv2D(hidden_channels, out_channels, 3, init='zeros', dtype=dtype,
                             name='conv_out')

  def __call__(self, x):
    """``[n, height, width, in_channels] -> [n, height, width, out_channels]``."""
    h = tf.nn.relu(self.conv_in(x))
    h = tf.nn.relu(self.conv_hidden(h))
    return self.conv_out(h)


class ZeroConvNetwork(tf.Module):
  """One zero-initialised conv 3x3 (Glow's split prior network).

  Args:
    in_channels, out_channels: int > 0.
    dtype: float dtype.
  """

  def __init__(self, in_channels: int, out_channels: int, *, dtype=tf.float32, name=None):
    super().__init__(name=name)
    with self.name_scope:
      self.conv = Conv2D(in_channels, out_channels, 3, init='zeros', dtype=dtype, name='conv')

  def __call__(self, x):
    return self.conv(x)


class _ResBlock(tf.Module):
  """``h + conv(ReLU(BN(conv(ReLU(BN(h))))))`` at constant width."""

  def __init__(self, channels, *, seed, dtype, name):
    super().__init__(name=name)
    with self.name_scope:
      self.bn1 = BatchNorm(channels, dtype=dtype, name='bn1')
      self.conv1 = Conv2D(channels, channels, 3, seed=seed, dtype=dtype, name='conv1')
      self.bn2 = BatchNorm(channels, dtype=dtype, name='bn2')
      self.conv2 = Conv2D(channels, channels, 3, seed=seed + 1, dtype=dtype, name='conv2')

  def __call__(self, h):
    r = self.conv1(tf.nn.relu(self.bn1(h)))
    return h + self.conv2(tf.nn.relu(self.bn2(r)))


class ResNetBN(tf.Module):
  """RealNVP's conditioner: residual blocks with batch normalisation.

  ``conv3x3 -> n x [BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv3x3, + skip]
  -> BN -> ReLU -> zero conv3x3``.

  Args:
    in_channels, out_channels: int > 0.
    hidden_channels: int > 0, width of the residual stream.
    res_blocks: int >= 0.
    seed: int, seeds the He-normal weights.
    dtype: float dtype.
  """

  def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, *,
               res_blocks: int = 2, seed: int = 0, dtype=tf.float32, name=None):
    super().__init__(name=name)
    if isinstance(res_blocks, bool) or int(res_blocks) != res_blocks or res_blocks < 0:
      raise ParameterError(f'res_blocks must be an int >= 0, got {res_blocks!r}')
    with self.name_scope:
      self.conv_in = Conv2D(in_channels, hidden_channels, 3, seed=seed, dtype=dtype,
                            name='conv_in')
      self.blocks = [_ResBlock(hidden_channels, seed=seed + 2 * i + 1, dtype=dtype,
                               name=f'block{i}') for i in range(int(res_blocks))]
      self.bn_out = BatchNorm(hidden_channels, dtype=dtype, name='bn_out')
      self.conv_out = Conv2D(hidden_channels, out_channels, 3, init='zeros', dtype=dtype,
                             name='conv_out')

  def __call__(self, x):
    h = self.conv_in(x)
    for block in self.blocks:
      h = block(h)
    return self.conv_out(tf.nn.relu(self.bn_out(h)))


def output_channels(kind: str, transformed_channels: int) -> int:
  """Channels a coupling of ``kind`` ('affine' or 'additive') needs from its network."""
  if kind == 'affine':
    return 2 * transformed_channels
  if kind == 'additive':
    return transformed_channels
  raise ParameterError(f"coupling kind must be 'affine' or 'additive', got {kind!r}")

