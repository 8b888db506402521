"""The Jansson et al. (2017) spectrogram U-Net: one magnitude mask per source.

Mixture ``[batch, n_samples]`` -> STFT (periodic Hann, ``n_fft``, ``hop_length``,
padded so that the inverse is exact at the ends) -> magnitude ``[batch, nb_bins, nb_frames]``
without the Nyquist bin (``nb_bins = n_fft / 2``, a multiple of 2^6), scaled
by its maximum -> six 5x5 stride-2 convolutions (batch norm, LeakyReLU 0.2)
-> six 5x5 stride-2 transposed convolutions (batch norm, ReLU, dropout 0.5 on
the first three) with skip connections -> a sigmoid mask per source
``[batch, n_sources, nb_bins, nb_frames]`` in [0, 1]. Frames are zero-padded
to a multiple of 64 inside the network and the masks cut back.

Training: L1 distance of the masked mixture magnitudes to the source
magnitudes (both scaled by the mixture maximum). Output: the masks on the
mixture STFT (``'mixture'`` phase), or a one-step Wiener filter
``|m_k X|^2 / sum_j |m_j X|^2 X`` (``'wiener'``), then the inverse STFT.
The Nyquist bin takes the mask of the bin below it.

Axes: spectrograms ``[batch, height = nb_bins, width = nb_frames, channels]``
inside the network (the house order).

Named configurations (``CONFIGS``): ``'paper'`` (8192 Hz, window 1024, hop
768, 16..512 channels, 512 x 128 patches: 9.8 M parameters) and ``'cpu'``,
the default (16 kHz, window 1024, hop 256, narrower layers;
docs/baselines.md: size and speed measured here).
"""

import dataclasses
import hashlib
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from baselines import export
from common import checks
from common.errors import ParameterError

METHOD = 'unet'
DEPTH = 6
OUTPUTS = ('mixture', 'wiener')


@dataclasses.dataclass(frozen=True)
class UNetConfig:
  """Attributes:
    channels: six encoder widths (the decoder mirrors them).
    kernel: square kernel size of every (transposed) convolution.
    dropout: dropout rate of the first three decoder layers (training only).
    n_fft: window = FFT size, samples; ``n_fft / 2`` a multiple of 64.
    hop_length: samples.
    patch_frames: STFT frames per training patch (a multiple of 64).
    n_sources: masks.
    sample_rate: int, Hz.
    output: ``'mixture'`` (masks on the mixture STFT) or ``'wiener'``.
    bn_momentum: moving-average momentum of the batch-norm statistics.
  """
  channels: Tuple[int, ...] = (16, 32, 48, 64, 96, 128)
  kernel: int = 5
  dropout: float = 0.5
  n_fft: int = 1024
  hop_length: int = 256
  patch_frames: int = 128
  n_sources: int = 2
  sample_rate: int = 16000
  output: str = 'mixture'
  bn_momentum: float = 0.99

  def __post_init__(self):
    object.__setattr__(self, 'channels', tuple(self.channels))
    if len(self.channels) != DEPTH or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c > 0
        for c in self.channels):
      raise ParameterError(f'unet channels must be {DEPTH} positive ints, got {self.channels!r}')
    checks.check_positive_ints(self, 'kernel', 'n_fft', 'hop_length', 'patch_frames',
                               'n_sources', 'sample_rate', prefix='unet ', numpy_ints=True)
    if self.n_fft % (2 * 2 ** DEPTH):
      raise ParameterError(f'unet n_fft must be a multiple of {2 * 2 ** DEPTH} (n_fft / 2 bins '
                           f'through {DEPTH} halvings), got {self.n_fft}')
    if self.patch_frames % 2 ** DEPTH:
      raise ParameterError(f'unet patch_frames must be a multiple of {2 ** DEPTH}, got '
                           f'{self.patch_frames}')
    if self.hop_length > self.n_fft:
      raise ParameterError(f'unet hop_length ({self.hop_length}) exceeds n_fft ({self.n_fft})')
    if not 0.0 <= self.dropout < 1.0:
      raise ParameterError(f'unet dropout must be in [0, 1), got {self.dropout!r}')
    if self.output not in OUTPUTS:
      raise ParameterError(f'unet output must be one of {list(OUTPUTS)}, got {self.output!r}')

  @property
  def n_bins(self) -> int:
    return self.n_fft // 2

  @property
  def patch_samples(self) -> int:
    """Samples whose STFT has exactly ``patch_frames`` frames."""
    return self.patch_frames * self.hop_length - self.n_fft + 1


CONFIGS: Dict[str, UNetConfig] = {
    'paper': UNetConfig(channels=(16, 32, 64, 128, 256, 512), n_fft=1024, hop_length=768,
                        patch_frames=128, sample_rate=8192),
    'cpu': UNetConfig(),
}
DEFAULT_CONFIG = 'cpu'


def named_config(name: str, **overrides) -> UNetConfig:
  """``CONFIGS[name]`` with fields replaced.

  Raises:
    ParameterError: an unknown name or field.
  """
  if name not in CONFIGS:
    raise ParameterError(f'unknown unet config {name!r}; configs: {sorted(CONFIGS)}')
  return export.parse_network(UNetConfig, dict(dataclasses.asdict(CONFIGS[name]), **overrides),
                              f'unet config {name!r}')


# --------------------------------------------------------------------------- STFT
def n_frames(config: UNetConfig, n_samples):
  """STFT frames of ``n_samples``: ``ceil((n_samples + n_fft - 1) / hop_length)``."""
  return (n_samples + config.n_fft - 1 + config.hop_length - 1) // config.hop_length


def stft(config: UNetConfig, waveforms):
  """Complex STFT ``[..., nb_frames, n_fft / 2 + 1]`` of ``[..., n_samples]``.

  Padded by ``n_fft - hop_length`` in front and to :func:`n_frames` whole
  frames behind, so that every sample lies under every frame that the
  inverse needs (exact reconstruction at the ends too).
  """
  n = tf.shape(waveforms)[-1]
  front = config.n_fft - config.hop_length
  total = (n_frames(config, n) - 1) * config.hop_length + config.n_fft
  rank = len(waveforms.shape)
  x = tf.pad(waveforms, [[0, 0]] * (rank - 1) + [[front, total - n - front]])
  return tf.signal.stft(x, config.n_fft, config.hop_length)


def istft(config: UNetConfig, spec, n_samples):
  """Inverse of :func:`stft`: ``[..., nb_frames, n_fft / 2 + 1]`` -> ``[..., n_samples]``."""
  y = tf.signal.inverse_stft(
      spec, config.n_fft, config.hop_length,
      window_fn=tf.signal.inverse_stft_window_fn(config.hop_length))
  front = config.n_fft - config.hop_length
  return y[..., front:front + n_samples]


# ------------------------------------------------------------------------- layers
class BatchNorm(tf.Module):
  """Batch normalisation over ``[batch, height, width, c]``; moving statistics for inference."""

  def __init__(self, channels: int, momentum: float, name=None):
    super().__init__(name=name)
    self.gamma = tf.Variable(tf.ones([channels]), name='gamma')
    self.beta = tf.Variable(tf.zeros([channels]), name='beta')
    sync = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.MEAN)
    self.moving_mean = tf.Variable(tf.zeros([channels]), name='moving_mean', **sync)
    self.moving_var = tf.Variable(tf.ones([channels]), name='moving_var', **sync)
    self.momentum = momentum

  def __call__(self, x, training: bool):
    if training:
      mean, var = tf.nn.moments(x, axes=[0, 1, 2])
      m = self.momentum
      self.moving_mean.assign(m * self.moving_mean + (1 - m) * mean)
      self.moving_var.assign(m * self.moving_var + (1 - m) * var)
    else:
      mean, var = self.moving_mean, self.moving_var
    return tf.nn.batch_normalization(x, mean, var, self.beta, self.gamma, 1e-3)


def _kernel(rng, shape, fan_in, fan_out):
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return tf.Variable(rng.uniform(-limit, limit, shape).astype(np.float32), name='kernel')


class UNet(tf.Module):
  """The network: ``masks(magnitude) -> [batch, n_sources, nb_bins, nb_frames]`` in [0, 1].

  Args:
    config: a :class:`UNetConfig`.
    seed: int, initial weights.
  """

  def __init__(self, config: UNetConfig, seed: int = 0, name='unet'):
    super().__init__(name=name)
    self.config = c = config
    rng = np.random.default_rng(seed)
    k = c.kernel
    ins = (1,) + c.channels[:-1]
    self.enc = [_kernel(rng, (k, k, cin, cout), k * k * cin, k * k * cout)
                for cin, cout in zip(ins, c.channels)]
    self.enc_bias = [tf.Variable(tf.zeros([cout]), name='bias') for cout in c.channels]
    self.enc_bn = [BatchNorm(cout, c.bn_momentum) for cout in c.channels]
    # Decoder i maps dec_in[i] -> dec_out[i]; its input is the previous output
    # concatenated with the encoder skip of the same size (none at the bottom).
    dec_out = tuple(reversed(c.channels[:-1])) + (c.n_sources,)
    dec_in = (c.channels[-1],) + tuple(2 * ch for ch in dec_out[:-1])
    self.dec = [_kernel(rng, (k, k, cout, cin), k * k * cin, k * k * cout)  # transposed
                for cin, cout in zip(dec_in, dec_out)]
    self.dec_bias = [tf.Variable(tf.zeros([cout]), name='bias') for cout in dec_out]
    self.dec_bn = [BatchNorm(cout, c.bn_momentum) for cout in dec_out[:-1]]

  def masks(self, magnitude, *, training: bool = False, seed=None):
    """Masks of a normalised magnitude spectrogram.

    Args:
      magnitude: float32 ``[batch, nb_bins, nb_frames]`` (``nb_bins = n_fft / 2``).
      training: batch statistics and dropout (with ``seed``, int32 ``[2]``).

    Returns:
      float32 ``[batch, n_sources, nb_bins, nb_frames]`` in [0, 1].
    """
    c = self.config
    n_frames = tf.shape(magnitude)[2]
    step = 2 ** DEPTH
    padded = (n_frames + step - 1) // step * step
    x = tf.pad(magnitude, [[0, 0], [0, 0], [0, padded - n_frames]])[..., None]
    skips = []
    for i in range(DEPTH):
      x = tf.nn.conv2d(x, self.enc[i], 2, 'SAME') + self.enc_bias[i]
      x = tf.nn.leaky_relu(self.enc_bn[i](x, training), 0.2)
      skips.append(x)
    seeds = (tf.random.experimental.stateless_split(seed, DEPTH) if training and seed is not None
             else None)
    for i in range(DEPTH):
      if i:
        x = tf.concat([x, skips[DEPTH - 1 - i]], axis=-1)
      target = skips[DEPTH - 2 - i] if i < DEPTH - 1 else None
      shape = tf.shape(x)
      out_ch = self.dec[i].shape[2]
      out_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, out_ch])
      x = tf.nn.conv2d_transpose(x, self.dec[i], out_shape, 2, 'SAME') + self.dec_bias[i]
      if target is None:
        x = tf.sigmoid(x)
        break
      x = tf.nn.relu(self.dec_bn[i](x, training))
      if i < 3 and training and c.dropout > 0 and seeds is not None:
        x = tf.nn.experimental.stateless_dropout(x, c.dropout, seeds[i])
    masks = tf.transpose(x, [0, 3, 1, 2])                      # [b, K, F, T_pad]
    return masks[..., :n_frames]

  def analyse(self, mixture):
    """``mixture [batch, n_samples]`` -> ``(X complex [b, T, F+1], |X| / max [b, F, T], max [b])``."""
    spec = stft(self.config, mixture)
    mag = tf.transpose(tf.abs(spec)[..., :self.config.n_bins], [0, 2, 1])
    peak = tf.reduce_max(mag, axis=[1, 2]) + 1e-8
    return spec, mag / peak[:, None, None], peak

  def separate_spec(self, spec, masks, output: Optional[str] = None):
    """Masks ``[b, K, F, T]`` on the mixture STFT ``[b, T, F+1]`` -> source STFTs ``[b, K, T, F+1]``."""
    m = tf.transpose(masks, [0, 1, 3, 2])                      # [b, K, T, F]
    m = tf.concat([m, m[..., -1:]], axis=-1)                    # Nyquist: the bin below
    if (output or self.config.output) == 'wiener':
      power = tf.square(m * tf.abs(spec)[:, None])
      m = power / (tf.reduce_sum(power, axis=1, keepdims=True) + 1e-12)
    return tf.cast(m, spec.dtype) * spec[:, None]

  def __call__(self, mixture, training: bool = False, seed=None):
    """``[batch, n_samples]`` -> ``[batch, n_sources, n_samples]`` (masked mixture STFT)."""
    spec, mag, _ = self.analyse(mixture)
    masks = self.masks(mag, training=training, seed=seed)
    return istft(self.config, self.separate_spec(spec, masks), tf.shape(mixture)[1])


def l1_loss(model: UNet, mixture, sources, *, training: bool, seed=None):
  """``(loss, metrics)``: L1 of the masked mixture magnitudes to the source magnitudes.

  Args:
    mixture: float32 ``[batch, n_samples]``.
    sources: float32 ``[batch, n_sources, n_samples]``.
  """
  _, mag, peak = model.analyse(mixture)
  masks = model.masks(mag, training=training, seed=seed)
  n = model.config.n_bins
  target = tf.transpose(tf.abs(stft(model.config, sources))[..., :n], [0, 1, 3, 2])
  target = target / peak[:, None, None, None]
  loss = tf.reduce_mean(tf.abs(masks * mag[:, None] - target)) * model.config.n_sources
  return loss, {'l1': loss, 'mask_mean': tf.reduce_mean(masks)}


def num_parameters(model: tf.Module) -> int:
  return int(sum(np.prod(v.shape) for v in model.trainable_variables))


# --------------------------------------------------------------------- the separator
class UNetSeparator:
  """A trained U-Net behind the separator protocol (``experiments.separators``).

  Args:
    model_dir: an export folder (``baselines.export``).
    doc: its ``separator.json`` (unused: ``config.json`` holds the facts).
    output: ``'mixture'`` or ``'wiener'``; None: the exported setting.
    chunk_s: seconds per chunk of the seam's overlap-add.
  """

  overlap_s = 0.5

  def __init__(self, model_dir: str, doc: Optional[Dict[str, Any]] = None, *,
               output: Optional[str] = None, chunk_s: float = 20.0):
    del doc
    config, prefix = export.read(model_dir, METHOD)
    where = os.path.join(model_dir, export.CONFIG_FILE)
    self.config = export.parse_network(UNetConfig, config['network'], where)
    if output is not None and output not in OUTPUTS:
      raise ParameterError(f'unet output must be one of {list(OUTPUTS)}, got {output!r}')
    self.output = output or self.config.output
    self.sources = tuple(config['sources'])
    if len(self.sources) != self.config.n_sources:
      raise ParameterError(f'{where}: {len(self.sources)} source names for a network of '
                           f'{self.config.n_sources} masks')
    self.sample_rate = int(config['sample_rate'])
    if self.sample_rate != self.config.sample_rate:
      raise ParameterError(f'{where}: sample_rate {self.sample_rate} differs from the '
                           f'network\'s {self.config.sample_rate}')
    self.model = UNet(self.config)
    export.restore(prefix, self.model)
    self.chunk_s = float(chunk_s)
    with open(prefix + '.index', 'rb') as f:
      self._fingerprint = hashlib.sha256(f.read()).hexdigest()[:16]
    model, out = self.model, self.output

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def forward(x):
      spec, mag, _ = model.analyse(x)
      return istft(model.config, model.separate_spec(spec, model.masks(mag), out),
                   tf.shape(x)[1])

    self._forward = forward

  def identity(self) -> Dict[str, Any]:
    return {'method': METHOD, 'weights': self._fingerprint, 'output': self.output}

  def settings(self) -> Dict[str, Any]:
    return {'output': self.output}

  def separate_batch(self, mixtures: np.ndarray) -> np.ndarray:
    """float32 ``[batch, n_samples]`` -> ``[batch, n_sources, n_samples]``."""
    return self._forward(tf.constant(np.asarray(mixtures, np.float32))).numpy()

  def separate(self, audio: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    """float32 ``[n_samples]`` at ``self.sample_rate`` -> ``{source: [n_samples]}``."""
    if sample_rate != self.sample_rate:
      raise ParameterError(f'unet separates at {self.sample_rate} Hz, got {sample_rate}')
    est = self.separate_batch(np.asarray(audio, np.float32)[None])[0]
    return {name: est[k] for k, name in enumerate(self.sources)}


def load(model_dir: str, doc: Optional[Dict[str, Any]] = None, **options) -> UNetSeparator:
  """The ``unet`` method's loader (``experiments.separators``)."""
  # precision: the separation commands pass it to every method; these networks
  # compute in float32 (cheap enough: docs/baselines.md).
  options.pop('precision', None)
  unknown = sorted(set(options) - {'output', 'chunk_s'})
  if unknown:
    raise ParameterError(f'unknown unet options {unknown} (it takes output, chunk_s)')
  return UNetSeparator(model_dir, doc, **options)
