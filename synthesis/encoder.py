"""The encoder of separation by synthesis: a hybrid recurrent + hourglass network.

After Liu, Jackson and Wang ("A speech synthesis approach for high quality speech
separation and generation", IEEE SPL 2019): from the mixture's spectrogram the encoder
predicts the target voice's mel spectrum in [0, 1], which a decoder turns into sound.
Our reading, sized for 2 CPU cores (docs/synthesis.md):

  mixture [batch, n_samples] at ``sample_rate``
  -> scaled to an RMS of ``level_db`` dBFS (the gain is undone after decoding)
  -> |STFT|^2 of the priors' features (``pipeline.config.FeatureConfig``: 16 kHz,
     n_fft 2048, hop 512, centred Hann), in dB mapped onto [0, 1]: ``[batch, nb_frames,
     nb_bins = 1025]``
  -> per-frame projection to ``frame_channels`` (a 1x1 convolution over the bins), ReLU
  -> hourglass over frames: ``len(hourglass_channels)`` levels of stride-2
     convolutions down and nearest-neighbour upsampling + convolution back up, with a
     skip connection per level (the stacked-hourglass pattern of Newell et al., on the
     time axis) -> ``[batch, nb_frames, frame_channels]``
  -> a bidirectional GRU (``gru_units`` per direction) over the hourglass output
  -> the two concatenated -> dense ``head_units``, ReLU -> dense ``nb_out``
  -> added to the mixture's own features in the output domain (the last layer starts
     at zero: an untrained encoder returns the mixture's features).

Outputs (``target``):

* ``'mel'`` (the method ``synthesis``): the voice's mel spectrum exactly as the priors
  see it, ``MelTransform.waveform_to_unit`` of the (scaled) clean voice: 96 Slaney mel
  bands 125-7,600 Hz, power clipped to [1e-10, 100], dB mapped from [-100, 20] onto
  [0, 1], ``[batch, nb_frames, n_mels]``;
* ``'linear'`` (B1, ``synthesis-linear``): the voice's linear power spectrum,
  ``[batch, nb_frames, nb_bins]``, in dB mapped from ``LINEAR_DB_RANGE`` onto [0, 1]
  (a wider top than the mel's: single STFT bins of loud harmonics pass 20 dB at
  ``level_db``).

Loss: L1 between the prediction and the target features (both in [0, 1]); the paper's
"error" is that mean absolute difference (2.8 % for mel, 6.8 % for B1).

Shapes: ``[batch, nb_frames, nb_bins]`` (frames first, as ``inversion``); waveforms
``[batch, n_samples]``; sources ``[batch, n_sources, n_samples]`` (voice, noise).
"""

import dataclasses
import math
from typing import Any, Dict, Tuple

import numpy as np
import tensorflow as tf

from common import checks
from common.errors import ParameterError
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform

TARGETS = ('mel', 'linear')
METHODS = {'mel': 'synthesis', 'linear': 'synthesis-linear'}
LINEAR_DB_RANGE = (-100.0, 40.0)


def _reference_features() -> Dict[str, Any]:
  return dataclasses.asdict(FeatureConfig())


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """Attributes:
    target: ``'mel'`` (the voice's mel spectrum) or ``'linear'`` (B1: its linear
      power spectrum).
    frame_channels: int > 0, width of the per-frame projection and of the hourglass's
      top level.
    hourglass_channels: widths of the hourglass's lower levels (each halves the
      frames); one or more ints > 0.
    kernel: int > 0, odd, temporal kernel of the hourglass convolutions (frames).
    gru_units: int > 0, GRU units per direction.
    head_units: int > 0, width of the dense layer before the output.
    level_db: the mixture's RMS level (dBFS) the encoder works at.
    sample_rate: int, Hz (the features' rate).
    features: the ``FeatureConfig`` fields (the priors' convention; a dict so that it
      travels in the export's json).
  """
  target: str = 'mel'
  frame_channels: int = 128
  hourglass_channels: Tuple[int, ...] = (160, 192)
  kernel: int = 3
  gru_units: int = 96
  head_units: int = 256
  level_db: float = -25.0
  sample_rate: int = 16000
  features: Dict[str, Any] = dataclasses.field(default_factory=_reference_features)

  def __post_init__(self):
    object.__setattr__(self, 'hourglass_channels', tuple(self.hourglass_channels))
    if self.target not in TARGETS:
      raise ParameterError(f'synthesis target must be one of {list(TARGETS)}, got '
                           f'{self.target!r}')
    checks.check_positive_ints(self, 'frame_channels', 'kernel', 'gru_units', 'head_units',
                               'sample_rate', prefix='synthesis ', numpy_ints=True)
    if self.kernel % 2 == 0:
      raise ParameterError(f'synthesis kernel must be odd, got {self.kernel}')
    if not self.hourglass_channels or not all(
        isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c > 0
        for c in self.hourglass_channels):
      raise ParameterError('synthesis hourglass_channels must be one or more positive ints, '
                           f'got {self.hourglass_channels!r}')
    if not isinstance(self.level_db, (int, float)) or not -80 <= self.level_db <= 0:
      raise ParameterError(f'synthesis level_db must be in [-80, 0] dBFS, got {self.level_db!r}')
    if not isinstance(self.features, dict):
      raise ParameterError(f'synthesis features must be a dict of FeatureConfig fields, got '
                           f'{self.features!r}')
    fc = self.feature_config   # raises for bad fields
    if fc.sample_rate != self.sample_rate:
      raise ParameterError(f'synthesis sample_rate {self.sample_rate} differs from its '
                           f'features\' {fc.sample_rate}')

  @property
  def feature_config(self) -> FeatureConfig:
    try:
      return FeatureConfig(**self.features)
    except TypeError as e:
      raise ParameterError(f'synthesis features: {e}') from e

  @property
  def n_out(self) -> int:
    """Output features per frame: ``n_mels`` or ``nb_bins``."""
    fc = self.feature_config
    return fc.n_mels if self.target == 'mel' else fc.n_fft // 2 + 1

  @property
  def patch_samples(self) -> int:
    """Training segment: one prior patch (64 frames, 2.04 s at the reference)."""
    return self.feature_config.patch_samples

  @property
  def method(self) -> str:
    return METHODS[self.target]


CONFIGS: Dict[str, EncoderConfig] = {
    'cpu': EncoderConfig(),
}


def named_config(name: str, **overrides) -> EncoderConfig:
  """``CONFIGS[name]`` with fields replaced.

  Raises:
    ParameterError: an unknown name or field.
  """
  from baselines import export  # pylint: disable=g-import-not-at-top
  if name not in CONFIGS:
    raise ParameterError(f'unknown synthesis config {name!r}; configs: {sorted(CONFIGS)}')
  return export.parse_network(EncoderConfig, dict(dataclasses.asdict(CONFIGS[name]),
                                                  **overrides), f'synthesis config {name!r}')


# ------------------------------------------------------------------------ features
def normalise(mixture, level_db: float):
  """``(mixture * gain, gain)``: each item scaled to an RMS of ``level_db`` dBFS.

  Args:
    mixture: float32 ``[batch, n_samples]``.

  Returns:
    float32 ``[batch, n_samples]`` and the gains ``[batch]`` (silence: gain 1).
  """
  rms = tf.sqrt(tf.reduce_mean(tf.square(mixture), axis=-1))
  gain = tf.where(rms > 1e-7, 10.0 ** (level_db / 20.0) / tf.maximum(rms, 1e-7),
                  tf.ones_like(rms))
  return mixture * gain[:, None], gain


def power_to_unit(power, db_range: Tuple[float, float]):
  """Power -> dB (clipped to ``db_range``) -> [0, 1], float32 of the same shape."""
  low, high = db_range
  db = (10.0 / math.log(10.0)) * tf.math.log(
      tf.clip_by_value(power, 10.0 ** (low / 10.0), 10.0 ** (high / 10.0)))
  return (db - low) / (high - low)


def unit_to_power(unit, db_range: Tuple[float, float]):
  """Inverse of :func:`power_to_unit` (on [0, 1])."""
  low, high = db_range
  db = tf.clip_by_value(unit, 0.0, 1.0) * (high - low) + low
  return tf.exp(db * (math.log(10.0) / 10.0))


class Features:
  """The feature maps of one ``EncoderConfig`` (the priors' ``MelTransform`` under it).

  Args:
    config: an :class:`EncoderConfig`.
  """

  def __init__(self, config: EncoderConfig):
    self.config = config
    self.transform = MelTransform(config.feature_config)
    fc = config.feature_config
    self.mel_db_range = (10.0 * math.log10(fc.amin), 10.0 * math.log10(fc.amax))
    self.unit_db_range = self.transform.min_db, self.transform.max_db

  def power(self, waveforms):
    """``|STFT|^2`` float32 ``[batch, nb_frames, nb_bins]`` of ``[batch, n_samples]``."""
    s = self.transform.stft(waveforms)
    return tf.square(tf.math.real(s)) + tf.square(tf.math.imag(s))

  def input_features(self, power):
    """The encoder's input: linear power in dB on [0, 1], ``[batch, nb_frames, nb_bins]``."""
    return power_to_unit(power, LINEAR_DB_RANGE)

  def mel_unit(self, power):
    """The priors' unit mel of a power spectrogram, ``[batch, nb_frames, n_mels]``.

    Equal to ``MelTransform.image_to_mel(MelTransform.waveform_to_unit(y))``.
    """
    t = self.transform
    return t.db_to_unit(t.power_to_db(t.spectrogram_to_mel(power)))

  def output_features(self, power):
    """``power`` in the output domain of ``config.target``, ``[batch, nb_frames, n_out]``."""
    if self.config.target == 'mel':
      return self.mel_unit(power)
    return power_to_unit(power, LINEAR_DB_RANGE)

  def target(self, voice):
    """The training target: the (scaled) clean voice's output features."""
    return self.output_features(self.power(voice))

  def to_magnitude_or_mel(self, unit):
    """Output features -> mel power ``[..., n_mels]`` (mel) or magnitude ``[..., nb_bins]``."""
    if self.config.target == 'mel':
      t = self.transform
      return t.db_to_power(t.unit_to_db(tf.clip_by_value(unit, 0.0, 1.0)))
    return tf.sqrt(unit_to_power(unit, LINEAR_DB_RANGE))


# ------------------------------------------------------------------------- network
def _glorot(rng, shape, fan_in, fan_out):
  limit = np.sqrt(6.0 / (fan_in + fan_out))
  return tf.Variable(rng.uniform(-limit, limit, shape).astype(np.float32), name='kernel')


class Dense(tf.Module):
  """``x [..., n_in] -> [..., n_out]``; ``zero``: the kernel starts at zero."""

  def __init__(self, rng, n_in: int, n_out: int, zero: bool = False, name=None):
    super().__init__(name=name)
    self.w = (tf.Variable(tf.zeros([n_in, n_out]), name='kernel') if zero else
              _glorot(rng, (n_in, n_out), n_in, n_out))
    self.b = tf.Variable(tf.zeros([n_out]), name='bias')

  def __call__(self, x):
    shape = tf.shape(x)
    flat = tf.reshape(x, [-1, self.w.shape[0]])
    y = tf.matmul(flat, self.w) + self.b
    return tf.reshape(y, tf.concat([shape[:-1], [self.w.shape[1]]], axis=0))


class Conv1D(tf.Module):
  """Convolution over frames, ``[batch, nb_frames, c_in] -> [batch, nb_frames / stride, c_out]``."""

  def __init__(self, rng, c_in: int, c_out: int, kernel: int, stride: int = 1, name=None):
    super().__init__(name=name)
    self.w = _glorot(rng, (kernel, c_in, c_out), kernel * c_in, kernel * c_out)
    self.b = tf.Variable(tf.zeros([c_out]), name='bias')
    self.stride = stride

  def __call__(self, x):
    return tf.nn.conv1d(x, self.w, self.stride, 'SAME') + self.b


class GRU(tf.Module):
  """One GRU direction over ``[batch, nb_frames, n_in]`` -> ``[batch, nb_frames, units]``."""

  def __init__(self, rng, n_in: int, units: int, name=None):
    super().__init__(name=name)
    self.units = units
    self.wx = _glorot(rng, (n_in, 3 * units), n_in, 3 * units)
    self.wh = tf.Variable(
        np.concatenate([np.linalg.qr(rng.normal(size=(units, units)))[0]
                        for _ in range(3)], axis=1).astype(np.float32), name='recurrent')
    self.b = tf.Variable(tf.zeros([3 * units]), name='bias')

  def __call__(self, x, reverse: bool = False):
    u = self.units
    xs = tf.transpose(x, [1, 0, 2])                       # [T, b, n_in]
    if reverse:
      xs = tf.reverse(xs, [0])
    proj = tf.einsum('tbi,ij->tbj', xs, self.wx) + self.b   # [T, b, 3u]
    h0 = tf.zeros([tf.shape(x)[0], u], x.dtype)

    def step(h, p):
      rec = tf.matmul(h, self.wh)
      z = tf.sigmoid(p[:, :u] + rec[:, :u])
      r = tf.sigmoid(p[:, u:2 * u] + rec[:, u:2 * u])
      n = tf.tanh(p[:, 2 * u:] + r * rec[:, 2 * u:])
      return (1.0 - z) * n + z * h

    hs = tf.scan(step, proj, initializer=h0)             # [T, b, u]
    if reverse:
      hs = tf.reverse(hs, [0])
    return tf.transpose(hs, [1, 0, 2])


class Hourglass(tf.Module):
  """Multi-scale convolutions over frames with a skip per level; keeps the shape."""

  def __init__(self, rng, channels: int, levels: Tuple[int, ...], kernel: int, name=None):
    super().__init__(name=name)
    widths = (channels,) + tuple(levels)
    self.down = [Conv1D(rng, a, b, kernel, stride=2) for a, b in zip(widths, widths[1:])]
    self.mid = [Conv1D(rng, b, b, kernel) for b in widths[1:]]
    self.up = [Conv1D(rng, b, a, kernel) for a, b in zip(widths, widths[1:])]
    self.depth = len(levels)

  def __call__(self, x):
    n = tf.shape(x)[1]
    step = 2 ** self.depth
    padded = (n + step - 1) // step * step
    h = tf.pad(x, [[0, 0], [0, padded - n], [0, 0]])
    skips = []
    for down, mid in zip(self.down, self.mid):
      skips.append(h)
      h = tf.nn.relu(mid(tf.nn.relu(down(h))))
    for i in reversed(range(self.depth)):
      h = tf.repeat(h, 2, axis=1)
      h = tf.nn.relu(self.up[i](h) + skips[i])
    return h[:, :n]


class SynthesisEncoder(tf.Module):
  """The encoder (``predict``) and, for the separator seam's scoring, ``__call__``.

  Args:
    config: an :class:`EncoderConfig`.
    seed: int, initial weights.
  """

  def __init__(self, config: EncoderConfig, seed: int = 0, name='synthesis_encoder'):
    super().__init__(name=name)
    self.config = c = config
    rng = np.random.default_rng(seed)
    self.features = Features(c)
    n_bins = c.feature_config.n_fft // 2 + 1
    self.frame = Dense(rng, n_bins, c.frame_channels)
    self.hourglass = Hourglass(rng, c.frame_channels, c.hourglass_channels, c.kernel)
    self.gru_fw = GRU(rng, c.frame_channels, c.gru_units)
    self.gru_bw = GRU(rng, c.frame_channels, c.gru_units)
    self.head = Dense(rng, c.frame_channels + 2 * c.gru_units, c.head_units)
    self.out = Dense(rng, c.head_units, c.n_out, zero=True)

  def predict_from_power(self, power):
    """Mixture power ``[batch, nb_frames, nb_bins]`` (at ``level_db``) -> output features
    ``[batch, nb_frames, n_out]`` (unclipped; [0, 1] is the target's range)."""
    x = tf.nn.relu(self.frame(self.features.input_features(power)))
    h = self.hourglass(x)
    r = tf.concat([self.gru_fw(h), self.gru_bw(h, reverse=True)], axis=-1)
    y = tf.nn.relu(self.head(tf.concat([h, r], axis=-1)))
    return self.features.output_features(power) + self.out(y)

  def predict(self, mixture):
    """``mixture [batch, n_samples]`` -> ``(features [batch, nb_frames, n_out] in [0, 1], gain [batch])``.

    The features are those of the voice in the mixture scaled by ``gain`` (to
    ``level_db``).
    """
    scaled, gain = normalise(mixture, self.config.level_db)
    unit = self.predict_from_power(self.features.power(scaled))
    return tf.clip_by_value(unit, 0.0, 1.0), gain

  def __call__(self, mixture):
    """``[batch, n_samples]`` -> ``[batch, 2, n_samples]`` (voice, mixture - voice) with
    the default decoder (``synthesis.decoder``)."""
    from synthesis import decoder  # pylint: disable=g-import-not-at-top
    return decoder.separate(self, mixture, decoder.DecoderConfig())


def feature_loss(model: SynthesisEncoder, mixture, sources):
  """``(loss, metrics)``: L1 of the predicted to the true voice features.

  Args:
    mixture: float32 ``[batch, n_samples]``.
    sources: float32 ``[batch, n_sources, n_samples]``, the voice first.

  Returns:
    The mean absolute error on the [0, 1] features, and metrics ``l1`` and
    ``error_pct`` (the clipped prediction's error, in %: the paper's figure).
  """
  scaled, gain = normalise(mixture, model.config.level_db)
  pred = model.predict_from_power(model.features.power(scaled))
  target = model.features.target(sources[:, 0] * gain[:, None])
  loss = tf.reduce_mean(tf.abs(pred - target))
  error = 100.0 * tf.reduce_mean(tf.abs(tf.clip_by_value(pred, 0.0, 1.0) - target))
  return loss, {'l1': loss, 'error_pct': error}


def num_parameters(model: tf.Module) -> int:
  return int(sum(np.prod(v.shape) for v in model.trainable_variables))
