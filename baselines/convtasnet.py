"""Conv-TasNet (Luo & Mesgarani 2019): a learnt encoder, a TCN mask estimator, a decoder.

Waveform ``[batch, n_samples]`` -> encoder (1-D conv, ``N`` filters of ``L``
samples, hop ``L / 2``, ReLU) -> ``w [batch, n_frames, N]`` -> separator
(global layer norm, 1x1 conv to ``B`` channels, ``R`` repeats of ``X``
1-D conv blocks with dilations ``1, 2, ..., 2^(X-1)``, each block 1x1 conv to
``H``, PReLU, gLN, depthwise conv of kernel ``P``, PReLU, gLN, 1x1 convs to
the residual ``B`` and the skip ``Sc`` channels; the summed skips through
PReLU and a 1x1 conv to ``n_sources * N`` and a sigmoid) -> masks
``m_k [batch, n_frames, N]`` -> decoder (``(w * m_k) V``, overlap-add) ->
``[batch, n_sources, n_samples]``.

Initialisation: the encoder starts as a tight frame -- ``N / 2`` filters
``sqrt-Hann window x orthonormal basis`` and their negatives, so ``relu(c) -
relu(-c) = c`` -- and the decoder as its synthesis, so at initialisation a
mask of ones returns the input exactly (tested); both are then trained.
The depthwise dilated convolution is written as ``P`` shifted products (no
``tf.nn`` dilated convolution: TensorFlow's plain CPU kernels lack its
gradient, and at ``P = 3`` the shifts are as fast).

Named configurations (``CONFIGS``): ``'paper'`` (N=512, L=16, B=128, H=512,
Sc=128, P=3, X=8, R=3, gLN: 15.3 dB SI-SNRi on wsj0-2mix at 8 kHz),
``'paper-small'`` (N=128, L=40, B=128, H=256, Sc=128, X=7, R=2: 13.0 dB) and
``'cpu'``, the default (docs/baselines.md: sizes and speeds measured here).
The published 5.05 M and 1.47 M parameters count the last block's residual
1x1 convolution, whose output feeds nothing; it is left out here (4.98 M and
1.44 M), which changes no output.
"""

import dataclasses
import hashlib
import os
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from baselines import export
from common import checks
from common.errors import ParameterError

METHOD = 'convtasnet'


@dataclasses.dataclass(frozen=True)
class ConvTasNetConfig:
  """Attributes (the paper's names):
    n_filters: N, encoder filters.
    filter_length: L, samples per encoder filter (even; hop ``L / 2``).
    bottleneck: B, channels of the residual path.
    hidden: H, channels inside a block.
    skip: Sc, channels of the skip path.
    kernel: P, depthwise kernel size (odd).
    blocks: X, blocks per repeat (dilations ``2^0 .. 2^(X-1)``).
    repeats: R.
    n_sources: outputs.
    sample_rate: int, Hz.
    mask: ``'sigmoid'`` (the paper) or ``'relu'``.
  """
  n_filters: int = 128
  filter_length: int = 32
  bottleneck: int = 64
  hidden: int = 128
  skip: int = 64
  kernel: int = 3
  blocks: int = 6
  repeats: int = 2
  n_sources: int = 2
  sample_rate: int = 16000
  mask: str = 'sigmoid'

  def __post_init__(self):
    checks.check_positive_ints(self, 'n_filters', 'filter_length', 'bottleneck', 'hidden',
                               'skip', 'kernel', 'blocks', 'repeats', 'n_sources',
                               'sample_rate', prefix='convtasnet ', numpy_ints=True)
    if self.filter_length % 2 or self.filter_length < 2:
      raise ParameterError(f'convtasnet filter_length must be even (hop L / 2), got '
                           f'{self.filter_length}')
    if self.kernel % 2 == 0:
      raise ParameterError(f'convtasnet kernel must be odd, got {self.kernel}')
    if self.n_filters < self.filter_length * 2:
      raise ParameterError(f'convtasnet n_filters ({self.n_filters}) must be at least 2 x '
                           f'filter_length ({self.filter_length}) for the tight-frame start')
    if self.n_filters % 2:
      raise ParameterError(f'convtasnet n_filters must be even, got {self.n_filters}')
    if self.mask not in ('sigmoid', 'relu'):
      raise ParameterError(f"convtasnet mask must be 'sigmoid' or 'relu', got {self.mask!r}")

  @property
  def hop(self) -> int:
    return self.filter_length // 2


CONFIGS: Dict[str, ConvTasNetConfig] = {
    'paper': ConvTasNetConfig(n_filters=512, filter_length=16, bottleneck=128, hidden=512,
                              skip=128, kernel=3, blocks=8, repeats=3, sample_rate=8000),
    'paper-small': ConvTasNetConfig(n_filters=128, filter_length=40, bottleneck=128,
                                    hidden=256, skip=128, kernel=3, blocks=7, repeats=2,
                                    sample_rate=8000),
    'cpu': ConvTasNetConfig(),
}
DEFAULT_CONFIG = 'cpu'


def named_config(name: str, **overrides) -> ConvTasNetConfig:
  """``CONFIGS[name]`` with fields replaced.

  Raises:
    ParameterError: an unknown name or field.
  """
  if name not in CONFIGS:
    raise ParameterError(f'unknown convtasnet config {name!r}; configs: {sorted(CONFIGS)}')
  return export.parse_network(ConvTasNetConfig,
                              dict(dataclasses.asdict(CONFIGS[name]), **overrides),
                              f'convtasnet config {name!r}')


def tight_frame(filter_length: int, n_filters: int):
  """``(encoder [L, N], decoder [N, L])`` with perfect reconstruction at hop ``L / 2``.

  The first ``N / 2`` encoder filters are a sqrt-periodic-Hann window times
  ``N / 2`` orthonormal-column vectors (``D D^T = I_L``), the rest their
  negatives; the decoder rows are the window times ``D^T`` (and minus that).
  Through the ReLU, ``relu(c) V+ + relu(-c) V- = c V+``, and overlap-adding
  frames weighted by the squared window (which sums to 1 at hop ``L / 2``)
  gives the input back.
  """
  half = n_filters // 2
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(half, filter_length)))   # [half, L], orthonormal columns
  d = q.T                                                        # [L, half], D D^T = I_L
  window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(filter_length) / filter_length))
  enc = window[:, None] * d                                      # [L, half]
  dec = d.T * window[None, :]                                    # [half, L]
  return (np.concatenate([enc, -enc], 1).astype(np.float32),
          np.concatenate([dec, -dec], 0).astype(np.float32))


class GlobalLayerNorm(tf.Module):
  """gLN: normalise ``[batch, time, channels]`` over time and channels, per-channel gain/bias."""

  def __init__(self, channels: int, name=None):
    super().__init__(name=name)
    self.gamma = tf.Variable(tf.ones([channels]), name='gamma')
    self.beta = tf.Variable(tf.zeros([channels]), name='beta')

  def __call__(self, x):
    mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    return (x - mean) * tf.math.rsqrt(var + 1e-8) * self.gamma + self.beta


class PReLU(tf.Module):
  """PReLU with one slope (0.25 at start), as the reference implementations."""

  def __init__(self, name=None):
    super().__init__(name=name)
    self.alpha = tf.Variable(0.25, name='alpha')

  def __call__(self, x):
    return tf.maximum(x, 0.0) + self.alpha * tf.minimum(x, 0.0)


class Dense(tf.Module):
  """A 1x1 convolution ``[batch, time, cin] -> [batch, time, cout]`` (Glorot-uniform)."""

  def __init__(self, rng: np.random.Generator, cin: int, cout: int, name=None):
    super().__init__(name=name)
    limit = np.sqrt(6.0 / (cin + cout))
    self.kernel = tf.Variable(rng.uniform(-limit, limit, (cin, cout)).astype(np.float32),
                              name='kernel')
    self.bias = tf.Variable(tf.zeros([cout]), name='bias')

  def __call__(self, x):
    return tf.einsum('btc,cd->btd', x, self.kernel) + self.bias


class DepthwiseDilated(tf.Module):
  """'Same' depthwise 1-D convolution of odd kernel ``P`` at dilation ``d``, as shifted products."""

  def __init__(self, rng: np.random.Generator, channels: int, kernel: int, dilation: int,
               name=None):
    super().__init__(name=name)
    limit = np.sqrt(6.0 / (kernel + kernel))
    self.kernel = tf.Variable(rng.uniform(-limit, limit, (kernel, channels)).astype(np.float32),
                              name='kernel')
    self.bias = tf.Variable(tf.zeros([channels]), name='bias')
    self.size, self.dilation = kernel, dilation

  def __call__(self, x):
    pad = (self.size - 1) // 2 * self.dilation
    n = tf.shape(x)[1]
    xp = tf.pad(x, [[0, 0], [pad, pad], [0, 0]])
    out = self.bias
    for k in range(self.size):
      out = out + xp[:, k * self.dilation:k * self.dilation + n, :] * self.kernel[k]
    return out


class Block(tf.Module):
  """One TCN block: 1x1 -> PReLU -> gLN -> depthwise (dilated) -> PReLU -> gLN -> res, skip."""

  def __init__(self, rng, config: ConvTasNetConfig, dilation: int, residual: bool = True,
               name=None):
    super().__init__(name=name)
    c = config
    self.inp = Dense(rng, c.bottleneck, c.hidden)
    self.act1, self.norm1 = PReLU(), GlobalLayerNorm(c.hidden)
    self.depthwise = DepthwiseDilated(rng, c.hidden, c.kernel, dilation)
    self.act2, self.norm2 = PReLU(), GlobalLayerNorm(c.hidden)
    self.res = Dense(rng, c.hidden, c.bottleneck) if residual else None
    self.skip = Dense(rng, c.hidden, c.skip)

  def __call__(self, x):
    y = self.norm1(self.act1(self.inp(x)))
    y = self.norm2(self.act2(self.depthwise(y)))
    return (x + self.res(y) if self.res is not None else x), self.skip(y)


class ConvTasNet(tf.Module):
  """The network; ``__call__(mixture [batch, n_samples]) -> [batch, n_sources, n_samples]``.

  Args:
    config: a :class:`ConvTasNetConfig`.
    seed: int, initial weights.
  """

  def __init__(self, config: ConvTasNetConfig, seed: int = 0, name='convtasnet'):
    super().__init__(name=name)
    self.config = c = config
    rng = np.random.default_rng(seed)
    enc, dec = tight_frame(c.filter_length, c.n_filters)
    self.encoder = tf.Variable(enc, name='encoder')            # [L, N]
    self.decoder = tf.Variable(dec, name='decoder')            # [N, L]
    self.norm = GlobalLayerNorm(c.n_filters)
    self.bottleneck = Dense(rng, c.n_filters, c.bottleneck)
    last = (c.repeats - 1, c.blocks - 1)   # its residual output would feed nothing
    self.blocks = [Block(rng, c, 2 ** x, residual=(r, x) != last, name=f'block_{r}_{x}')
                   for r in range(c.repeats) for x in range(c.blocks)]
    self.out_act = PReLU()
    self.out = Dense(rng, c.skip, c.n_sources * c.n_filters)

  def encode(self, mixture):
    """``[batch, n_samples]`` -> ``(w [batch, n_frames, N], n_samples)``.

    The signal is padded by ``L / 2`` in front and to a whole number of hops
    behind, so every sample lies in two frames.
    """
    c = self.config
    n = tf.shape(mixture)[1]
    hop = c.hop
    total = tf.cast(tf.math.ceil((n + hop) / hop), tf.int32) * hop + hop
    x = tf.pad(mixture, [[0, 0], [hop, total - n - hop]])
    frames = tf.signal.frame(x, c.filter_length, hop)           # [b, T, L]
    return tf.nn.relu(tf.einsum('btl,ln->btn', frames, self.encoder)), n

  def decode(self, w, n):
    """``w [..., n_frames, N]`` -> ``[..., n]`` (overlap-add, the front padding removed)."""
    frames = tf.einsum('...tn,nl->...tl', w, self.decoder)
    y = tf.signal.overlap_and_add(frames, self.config.hop)
    return y[..., self.config.hop:self.config.hop + n]

  def masks(self, w):
    """``w [batch, T, N]`` -> masks ``[batch, n_sources, T, N]``."""
    c = self.config
    x = self.bottleneck(self.norm(w))
    skips = 0.0
    for block in self.blocks:
      x, s = block(x)
      skips = skips + s
    m = self.out(self.out_act(skips))                            # [b, T, K*N]
    shape = tf.shape(m)
    m = tf.reshape(m, [shape[0], shape[1], c.n_sources, c.n_filters])
    m = tf.transpose(m, [0, 2, 1, 3])
    return tf.sigmoid(m) if c.mask == 'sigmoid' else tf.nn.relu(m)

  def __call__(self, mixture, training: bool = False, seed=None):
    del training, seed
    w, n = self.encode(mixture)
    m = self.masks(w)
    return self.decode(w[:, None] * m, n)


def num_parameters(model: tf.Module) -> int:
  return int(sum(np.prod(v.shape) for v in model.trainable_variables))


# --------------------------------------------------------------------- the separator
class ConvTasNetSeparator:
  """A trained Conv-TasNet behind the separator protocol (``experiments.separators``).

  Its output level is arbitrary under SI-SNR training (``scale_invariant``:
  the seam fits gains so that the estimates sum to the mixture). The mixture
  is normalised to unit RMS before the network.

  Args:
    model_dir: an export folder (``baselines.export``).
    doc: its ``separator.json`` (unused: ``config.json`` holds the facts).
    chunk_s: seconds per chunk of the seam's overlap-add.
  """

  scale_invariant = True
  overlap_s = 0.5

  def __init__(self, model_dir: str, doc: Optional[Dict[str, Any]] = None, *,
               chunk_s: float = 10.0):
    del doc
    config, prefix = export.read(model_dir, METHOD)
    where = os.path.join(model_dir, export.CONFIG_FILE)
    self.config = export.parse_network(ConvTasNetConfig, config['network'], where)
    self.sources = tuple(config['sources'])
    if len(self.sources) != self.config.n_sources:
      raise ParameterError(f'{where}: {len(self.sources)} source names for a network of '
                           f'{self.config.n_sources} outputs')
    self.sample_rate = int(config['sample_rate'])
    if self.sample_rate != self.config.sample_rate:
      raise ParameterError(f'{where}: sample_rate {self.sample_rate} differs from the '
                           f'network\'s {self.config.sample_rate}')
    self.order = list(config.get('training', {}).get('output_order') or
                      range(self.config.n_sources))
    self.model = ConvTasNet(self.config)
    export.restore(prefix, self.model)
    self.chunk_s = float(chunk_s)
    with open(prefix + '.index', 'rb') as f:
      self._fingerprint = hashlib.sha256(f.read()).hexdigest()[:16]
    self._forward = tf.function(self.model.__call__,
                                input_signature=[tf.TensorSpec([None, None], tf.float32)])

  def identity(self) -> Dict[str, Any]:
    return {'method': METHOD, 'weights': self._fingerprint, 'order': self.order}

  def separate_batch(self, mixtures: np.ndarray) -> np.ndarray:
    """float32 ``[batch, n_samples]`` -> ``[batch, n_sources, n_samples]`` (network order)."""
    x = np.asarray(mixtures, np.float32)
    scale = np.sqrt(np.mean(x * x, axis=-1, keepdims=True)) + 1e-8
    out = self._forward(tf.constant(x / scale)).numpy()
    return out * scale[:, None]

  def separate(self, audio: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    """float32 ``[n_samples]`` at ``self.sample_rate`` -> ``{source: [n_samples]}``."""
    if sample_rate != self.sample_rate:
      raise ParameterError(f'convtasnet separates at {self.sample_rate} Hz, got {sample_rate}')
    est = self.separate_batch(np.asarray(audio, np.float32)[None])[0]
    return {name: est[self.order[k]] for k, name in enumerate(self.sources)}


def load(model_dir: str, doc: Optional[Dict[str, Any]] = None, **options) -> ConvTasNetSeparator:
  """The ``convtasnet`` method's loader (``experiments.separators``)."""
  # precision: the separation commands pass it to every method; these networks
  # compute in float32 (cheap enough: docs/baselines.md).
  options.pop('precision', None)
  unknown = sorted(set(options) - {'chunk_s'})
  if unknown:
    raise ParameterError(f'unknown convtasnet options {unknown} (it takes chunk_s)')
  return ConvTasNetSeparator(model_dir, doc, **options)
