"""Building blocks of the RefineNet-style NCSN score network (plain tf.Module).

Conditional instance normalisation++ (Song & Ermon 2019, Appendix A):
for channel c with spatial mean mu_c and std s_c, and m, v the mean and std
of the mu_c across channels,

  h_c = gamma[i, c] ((x_c - mu_c) / s_c + alpha[i, c] (mu_c - m) / v) + beta[i, c]

(the reference implementation's form: alpha inside the gamma scaling),

where i is the noise-level index. gamma and alpha start at N(1, 0.02) (the
original port drew them from N(0, 0.02), which zeroes the signal at init),
beta at 0. With ``num_classes=None`` the same layer is the unconditional
InstanceNorm++ of NCSNv2.

Why ``tf.Module`` and raw ops instead of Keras layers: the network has ~100
normalisation layers and ~100 convolutions; Keras' per-call machinery made
tracing one training step take ~25 s on our CPUs, raw ops take a few seconds.
Variables are float32; every block computes in the dtype of its input
(bfloat16 for mixed precision), and normalisation statistics are float32.

Speed (measured, docs/ncsn.md): on our CPUs the ~70 normalisations and the
ELUs after them cost about as much as all convolutions in float32, and
bfloat16 ELU is an unvectorised ``exp`` (7x slower than float32), which is why
plain bfloat16 compute was no faster even though oneDNN's bfloat16 3x3
convolutions run 5x faster than float32 ones. So by default the norm is
written as one per-channel affine map ``x * scale + shift`` (scale and shift
from the statistics and gamma, alpha, beta) and, with the ELU that follows
it, compiled by XLA into one fused kernel with float32 arithmetic inside; the
convolutions stay outside XLA (its CPU convolutions are slower than
oneDNN's). ``fused=False`` keeps the plain op-by-op form (same values to
float rounding; the tests compare them).

Every block takes ``(x, labels)`` with x ``[batch, height, width, channels]``
and labels int32 ``[batch]`` (or None for unconditional layers).
"""

import numpy as np
import tensorflow as tf

from common import compute
from common.errors import ParameterError

_EPS = 1e-5


def _norm_affine(x, p):
  """Instance norm++ as ``x * scale + shift`` in float32; p ``[b or 1, 3, c]``."""
  x32 = tf.cast(x, tf.float32)
  mu = tf.reduce_mean(x32, axis=[1, 2], keepdims=True)                         # [b,1,1,c]
  var = tf.reduce_mean(tf.math.squared_difference(x32, mu), axis=[1, 2], keepdims=True)
  m, v = tf.nn.moments(mu, axes=[3], keepdims=True)                             # [b,1,1,1]
  gamma, alpha, beta = tf.unstack(p[:, :, None, None, :], axis=1)               # [b,1,1,c]
  scale = gamma * tf.math.rsqrt(var + _EPS)
  shift = beta + (gamma * alpha) * ((mu - m) * tf.math.rsqrt(v + _EPS)) - mu * scale
  return x32 * scale + shift


# One XLA kernel each, shared by all layers. Called eagerly (a model's first call,
# the step-size check), every layer's shape would be a new trace and TF warns of
# retracing; reduce_retracing traces one shape-generic graph per rank, dtype and
# channel count instead (XLA still compiles per concrete shape, as before).
@tf.function(jit_compile=True, reduce_retracing=True)
def _fused_norm(x, p):
  return tf.cast(_norm_affine(x, p), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _fused_norm_elu(x, p):
  return tf.cast(tf.nn.elu(_norm_affine(x, p)), x.dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _fused_elu(x):
  return tf.cast(tf.nn.elu(tf.cast(x, tf.float32)), x.dtype)


def elu(x, fused: bool = True):
  """ELU; computed in float32 (fused by XLA) so that bfloat16 inputs stay fast."""
  return _fused_elu(x) if fused else tf.nn.elu(x)


DILATED_CONV_MODES = ('auto', 'native', 'space_to_batch')
_dilated_conv_mode = 'auto'


def set_dilated_conv_mode(mode: str) -> str:
  """Forces the dilated-convolution path (benchmarks, tests); returns the old mode.

  ``'auto'`` (default) is :func:`native_dilated_conv`; ``'native'`` always
  uses ``tf.nn.conv2d(..., dilations=d)`` (no gradient without oneDNN);
  ``'space_to_batch'`` always uses :func:`dilated_conv_space_to_batch`. Read
  when a function is traced: set it before building ``tf.function`` s.

  Raises:
    ParameterError: for an unknown mode.
  """
  global _dilated_conv_mode
  if mode not in DILATED_CONV_MODES:
    raise ParameterError(f'dilated conv mode must be one of {DILATED_CONV_MODES}, got {mode!r}')
  old, _dilated_conv_mode = _dilated_conv_mode, mode
  return old


def native_dilated_conv(dtype) -> bool:
  """Whether TensorFlow's own dilated convolution works here, forward and backward.

  oneDNN's kernels have a dilated gradient; TensorFlow's plain CPU kernels do
  not ("Current CPU implementations do not yet support dilation rates larger
  than 1"), and oneDNN has bfloat16 kernels only on CPUs with native bfloat16.
  Where oneDNN runs, its native dilated convolution is 1.1-1.2x faster than
  the space-to-batch form (docs/benchmarks.md), so it is kept there.
  """
  if _dilated_conv_mode != 'auto':
    return _dilated_conv_mode == 'native'
  if not compute.onednn_enabled():
    return False
  return tf.as_dtype(dtype) != tf.bfloat16 or compute.has_native_bf16()


def dilated_conv_space_to_batch(x, kernel, dilation: int):
  """'SAME' dilated convolution as space-to-batch -> plain conv -> batch-to-space.

  The same map as ``tf.nn.conv2d(x, kernel, 1, 'SAME', dilations=dilation)``
  (equal to float rounding; tested): the ``dilation x dilation`` phases of the
  image are stacked on the batch axis, each convolved with the undilated
  kernel, and interleaved back. Every op in it has a gradient on every CPU.

  Args:
    x: ``[batch, height, width, cin]``.
    kernel: ``[k, k, cin, cout]`` in x's dtype.
    dilation: int > 1.

  Returns:
    ``[batch, height, width, cout]``.
  """
  def conv(inp, num_spatial_dims, padding):
    del num_spatial_dims
    return tf.nn.conv2d(inp, kernel, 1, padding)
  return tf.nn.with_space_to_batch(x, [dilation, dilation], 'SAME', conv,
                                   filter_shape=kernel.shape[:2])


class Conv2D(tf.Module):
  """'SAME' 2-D convolution with Glorot-uniform kernel and zero bias.

  Args:
    rng: ``np.random.Generator`` for the initial kernel (seeded by the model).
    cin, cout: input / output channels.
    kernel: kernel size.
    dilation: dilation rate.
    use_bias: add a bias.
  """

  def __init__(self, rng, cin, cout, kernel=3, dilation=1, use_bias=True, name=None):
    super().__init__(name=name)
    limit = np.sqrt(6.0 / (kernel * kernel * (cin + cout)))
    self.kernel = tf.Variable(
        rng.uniform(-limit, limit, (kernel, kernel, cin, cout)).astype(np.float32),
        name='kernel')
    self.bias = tf.Variable(tf.zeros([cout]), name='bias') if use_bias else None
    self.dilation = dilation

  def __call__(self, x):
    kernel = tf.cast(self.kernel, x.dtype)
    if self.dilation == 1 or native_dilated_conv(x.dtype):
      y = tf.nn.conv2d(x, kernel, 1, 'SAME', dilations=self.dilation)
    else:
      y = dilated_conv_space_to_batch(x, kernel, self.dilation)
    if self.bias is not None:
      y = y + tf.cast(self.bias, x.dtype)
    return y


class InstanceNormPlusPlus(tf.Module):
  """(Conditional) instance normalisation++; one ``[rows, 3, c]`` variable.

  Args:
    rng: ``np.random.Generator`` for the initial gamma and alpha.
    channels: number of channels c.
    num_classes: noise levels of the conditional variant, or None.
  """

  def __init__(self, rng, channels, num_classes=None, name=None):
    super().__init__(name=name)
    rows = num_classes or 1
    init = np.zeros((rows, 3, channels), np.float32)
    init[:, :2] = rng.normal(1.0, 0.02, (rows, 2, channels))
    self.gamma_alpha_beta = tf.Variable(init, name='gamma_alpha_beta')
    self.num_classes = num_classes
    self.fused = True

  def _params(self, labels):
    if self.num_classes is None or labels is None:
      return self.gamma_alpha_beta[:1]                              # [1,3,c]
    return tf.gather(self.gamma_alpha_beta, labels)                 # [b,3,c]

  def __call__(self, x, labels=None, elu: bool = False):
    """Normalised ``x`` (in x's dtype); ``elu=True`` applies the ELU as well."""
    if self.fused:
      fn = _fused_norm_elu if elu else _fused_norm
      return fn(x, self._params(labels))
    out = self._unfused(x, labels)
    return tf.nn.elu(out) if elu else out

  def _unfused(self, x, labels):
    dtype = x.dtype
    x32 = tf.cast(x, tf.float32)
    mu, var = tf.nn.moments(x32, axes=[1, 2], keepdims=True)      # [b,1,1,c]
    m, v = tf.nn.moments(mu, axes=[3], keepdims=True)               # [b,1,1,1]
    h = (x32 - mu) * tf.math.rsqrt(var + _EPS)
    mu_hat = (mu - m) * tf.math.rsqrt(v + _EPS)
    p = self._params(labels)
    # (Written as gamma*h + (gamma*alpha)*mu_hat: the form gamma*(h + alpha*mu_hat)
    # with strided slices crashed grappler's arithmetic optimiser in TF 2.16.)
    gamma, alpha, beta = tf.unstack(p[:, :, None, None, :], axis=1)  # [b,1,1,c]
    return tf.cast(gamma * h + (gamma * alpha) * mu_hat + beta, dtype)


def _pool2(x):
  return tf.nn.avg_pool2d(x, 2, 2, 'SAME')


class ResidualBlock(tf.Module):
  """Pre-activation residual block: norm -> ELU -> conv, twice, plus shortcut.

  Args:
    rng: initialiser stream.
    cin, cout: channels in and out.
    num_classes: noise levels (None: unconditional).
    downsample: halve height and width (mean pooling after the second conv);
      dilated "downsampling" blocks only change the channels, as in NCSN.
    dilation: dilation of both convs.
  """

  def __init__(self, rng, cin, cout, num_classes=None, downsample=False, dilation=1,
               name=None):
    super().__init__(name=name)
    self.norm1 = InstanceNormPlusPlus(rng, cin, num_classes)
    mid = cin if downsample else cout
    self.conv1 = Conv2D(rng, cin, mid, dilation=dilation)
    self.norm2 = InstanceNormPlusPlus(rng, mid, num_classes)
    self.conv2 = Conv2D(rng, mid, cout, dilation=dilation)
    self.pool = downsample and dilation == 1
    self.shortcut = None
    if cin != cout or downsample:
      self.shortcut = Conv2D(rng, cin, cout, kernel=1 if dilation == 1 else 3,
                             dilation=dilation)

  def __call__(self, x, labels=None):
    h = self.conv1(self.norm1(x, labels, elu=True))
    h = self.conv2(self.norm2(h, labels, elu=True))
    skip = x if self.shortcut is None else self.shortcut(x)
    if self.pool:
      h, skip = _pool2(h), _pool2(skip)
    return skip + h


class RCUBlock(tf.Module):
  """Residual conv unit: ``n_blocks`` x (``n_stages`` x norm-ELU-conv) + skip."""

  def __init__(self, rng, channels, num_classes=None, n_blocks=2, n_stages=2, name=None):
    super().__init__(name=name)
    self.norms = [[InstanceNormPlusPlus(rng, channels, num_classes)
                   for _ in range(n_stages)] for _ in range(n_blocks)]
    self.convs = [[Conv2D(rng, channels, channels, use_bias=False)
                   for _ in range(n_stages)] for _ in range(n_blocks)]

  def __call__(self, x, labels=None):
    for norms, convs in zip(self.norms, self.convs):
      residual = x
      for norm, conv in zip(norms, convs):
        x = conv(norm(x, labels, elu=True))
      x = x + residual
    return x


class MSFBlock(tf.Module):
  """Multi-resolution fusion: norm + conv each input, upsample to the largest, sum."""

  def __init__(self, rng, cins, cout, num_classes=None, name=None):
    super().__init__(name=name)
    self.norms = [InstanceNormPlusPlus(rng, c, num_classes) for c in cins]
    self.convs = [Conv2D(rng, c, cout) for c in cins]

  def __call__(self, xs, labels, size):
    out = 0.0
    for x, norm, conv in zip(xs, self.norms, self.convs):
      h = conv(norm(x, labels))
      if h.shape[1] != size[0] or h.shape[2] != size[1]:
        h = tf.cast(tf.image.resize(h, size, method='bilinear'), h.dtype)
      out = out + h
    return out


class CRPBlock(tf.Module):
  """Chained residual pooling: ``n_stages`` x (norm -> 5x5 mean pool -> conv)."""

  def __init__(self, rng, channels, num_classes=None, n_stages=2, name=None):
    super().__init__(name=name)
    self.norms = [InstanceNormPlusPlus(rng, channels, num_classes) for _ in range(n_stages)]
    self.convs = [Conv2D(rng, channels, channels, use_bias=False) for _ in range(n_stages)]

  def __call__(self, x, labels=None):
    x = elu(x, self.norms[0].fused)
    path = x
    for norm, conv in zip(self.norms, self.convs):
      path = conv(tf.nn.avg_pool2d(norm(path, labels), 5, 1, 'SAME'))
      x = x + path
    return x


class RefineBlock(tf.Module):
  """RefineNet block: RCU per input -> fusion -> chained pooling -> RCU.

  Args:
    rng: initialiser stream.
    cins: channels of each input (one input: no fusion).
    cout: output channels.
    num_classes: noise levels (None: unconditional).
    end: the last block (three output RCUs instead of one).
  """

  def __init__(self, rng, cins, cout, num_classes=None, end=False, name=None):
    super().__init__(name=name)
    self.adapt = [RCUBlock(rng, c, num_classes, 2, 2) for c in cins]
    self.msf = MSFBlock(rng, cins, cout, num_classes) if len(cins) > 1 else None
    self.crp = CRPBlock(rng, cout, num_classes, 2)
    self.out = RCUBlock(rng, cout, num_classes, 3 if end else 1, 2)

  def __call__(self, xs, labels=None):
    hs = [rcu(x, labels) for rcu, x in zip(self.adapt, xs)]
    if self.msf is not None:
      size = (max(h.shape[1] for h in hs), max(h.shape[2] for h in hs))
      h = self.msf(hs, labels, size)
    else:
      h = hs[0]
    return self.out(self.crp(h, labels), labels)
