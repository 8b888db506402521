"""A small neural vocoder: the priors' mel spectrum -> waveform.

Two published generators, written as plain ``tf.Module`` s (no Keras):

* ``'mb-melgan'``: multi-band MelGAN (Yang et al. 2021). The generator runs at
  a quarter of the sample rate and outputs 4 sub-bands that a pseudo-QMF
  synthesis filterbank (:class:`PQMF`) joins into the waveform: transposed
  convolutions upsample the mel frames, each followed by a residual stack of
  dilated convolutions (dilations 1, 3, 9, 27).
* ``'hifigan-v2'``: HiFi-GAN V2 (Kong et al. 2020): transposed convolutions
  upsample to the full rate, each followed by a multi-receptive-field fusion
  of three residual blocks (kernels 3, 7, 11; dilations 1, 3, 5).

The input is the mel power spectrum in the priors' convention
(``pipeline.config.FeatureConfig``: 16 kHz, n_fft 2048, hop 512, 96 Slaney
bands 125-7,600 Hz): ``[batch, n_frames, n_mels]``, the output of
``MelTransform.spectrogram_to_mel`` or ``unit_to_mel``. It is clipped and put in
dB on [0, 1] exactly as the priors see it (``MelTransform.power_to_db``,
``db_to_unit``), so a predicted unit mel and a true one enter the same way.
The output is ``[batch, n_frames * hop_length]`` samples: frame ``f`` speaks
samples ``[f * hop, (f + 1) * hop)`` (crop to the signal's length).

Training (``train_vocoder.py``, :func:`vocoder_loss`): the multi-resolution
STFT loss (spectral convergence + log-magnitude L1 at three resolutions) on
the full band and, for the multi-band model, on the sub-bands, as in the
generator pre-training of the multi-band MelGAN paper; no discriminator.

A shipped folder (``assets/inversion/vocoder_speech/``) is ``config.json``
(the network's settings, its features, how it was trained) + ``weights.*``,
written by :func:`export_vocoder` and read by :func:`load_vocoder`.
"""

import dataclasses
import math
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from common import assets
from common import checks
from common.errors import ParameterError
from pipeline.config import FeatureConfig

KIND = 'vocoder'
ARCHITECTURES = ('mb-melgan', 'hifigan-v2')
DEFAULT_DIR_NAME = 'vocoder_speech'
# (n_fft, hop_length, win_length) of the multi-resolution STFT loss at 16 kHz,
# full band and sub-band (4 kHz) -- the paper's 24 kHz settings scaled.
FULL_BAND_STFTS = ((1024, 128, 512), (2048, 256, 1024), (512, 64, 256))
SUB_BAND_STFTS = ((256, 32, 128), (512, 64, 256), (128, 16, 64))
_LOG_FLOOR = 1e-7


@dataclasses.dataclass(frozen=True)
class VocoderConfig:
  """Attributes:
    architecture: ``'mb-melgan'`` or ``'hifigan-v2'``.
    channels: int > 0, feature maps after the input convolution (halved after
      every upsampling).
    upsample_rates: the upsampling factors; their product times ``n_bands``
      must be the features' ``hop_length``.
    n_bands: 4 for ``'mb-melgan'`` (PQMF sub-bands), 1 for ``'hifigan-v2'``.
    stack_layers: int > 0, dilated layers per residual stack (``'mb-melgan'``).
    features: the mel features the vocoder speaks (the priors' by default).
  """
  architecture: str = 'mb-melgan'
  channels: int = 384
  upsample_rates: Tuple[int, ...] = (4, 4, 8)
  n_bands: int = 4
  stack_layers: int = 4
  features: FeatureConfig = FeatureConfig()

  def __post_init__(self):
    if self.architecture not in ARCHITECTURES:
      raise ParameterError(f'vocoder architecture must be one of {list(ARCHITECTURES)}, '
                           f'got {self.architecture!r}')
    if not (isinstance(self.channels, int) and self.channels >= 2 ** len(self.upsample_rates)):
      raise ParameterError(f'vocoder channels must be an int >= 2 ** (number of upsamplings), '
                           f'got {self.channels!r}')
    want = 4 if self.architecture == 'mb-melgan' else 1
    if self.n_bands != want:
      raise ParameterError(f'{self.architecture} has n_bands={want}, got {self.n_bands!r}')
    hop = self.features.hop_length
    if int(np.prod(self.upsample_rates)) * self.n_bands != hop:
      raise ParameterError(
          f'vocoder upsample_rates {list(self.upsample_rates)} x n_bands {self.n_bands} = '
          f'{int(np.prod(self.upsample_rates)) * self.n_bands} must equal the features\' '
          f'hop_length {hop}')
    if not (isinstance(self.stack_layers, int) and self.stack_layers > 0):
      raise ParameterError(f'vocoder stack_layers must be a positive int, got '
                           f'{self.stack_layers!r}')

  @classmethod
  def hifigan_v2(cls, features: FeatureConfig = FeatureConfig()) -> 'VocoderConfig':
    """HiFi-GAN V2 (128 channels) for ``features``' hop (512: rates 8, 8, 4, 2)."""
    rates = {512: (8, 8, 4, 2), 256: (8, 8, 2, 2)}.get(features.hop_length)
    if rates is None:
      raise ParameterError(f'no HiFi-GAN V2 upsampling for hop_length {features.hop_length}')
    return cls(architecture='hifigan-v2', channels=128, upsample_rates=rates, n_bands=1,
               features=features)

  def to_dict(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    d['upsample_rates'] = list(self.upsample_rates)
    d['features'] = self.features.to_dict()
    return d

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> 'VocoderConfig':
    """The config saved by :meth:`to_dict`.

    Raises:
      ParameterError: unknown or missing settings.
    """
    d = dict(d)
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
      raise ParameterError(f'unknown vocoder settings {unknown}')
    if 'features' in d:
      d['features'] = FeatureConfig.from_dict(d['features'])
    if 'upsample_rates' in d:
      d['upsample_rates'] = tuple(int(r) for r in d['upsample_rates'])
    return cls(**d)


# ------------------------------------------------------------------ layers
class Conv1D(tf.Module):
  """1-D convolution ``[batch, n_steps, c_in] -> [batch, n_steps, c_out]``.

  Length-preserving: reflection padding (zero padding where the input is
  shorter than the pad) of ``dilation * (kernel - 1) / 2`` on each side.

  Args:
    c_in, c_out: channels.
    kernel: int, odd, taps.
    dilation: int >= 1.
    seed: int, initialiser seed.
  """

  def __init__(self, c_in: int, c_out: int, kernel: int = 3, *, dilation: int = 1,
               seed: int = 0, name=None):
    super().__init__(name=name)
    limit = math.sqrt(3.0 / (kernel * c_in))    # variance 1 / fan_in
    self.w = tf.Variable(tf.random.stateless_uniform([kernel, c_in, c_out], [seed, 31],
                                                     -limit, limit), name='w')
    self.b = tf.Variable(tf.zeros([c_out]), name='b')
    self.dilation = dilation
    self.pad = dilation * (kernel - 1) // 2

  def __call__(self, x):
    n_in = tf.shape(x)[1]
    if self.pad:
      pads = [[0, 0], [self.pad, self.pad], [0, 0]]
      n = x.shape[1]
      if n is not None:
        x = tf.pad(x, pads, mode='REFLECT' if n > self.pad else 'CONSTANT')
      else:
        x = tf.cond(tf.shape(x)[1] > self.pad, lambda: tf.pad(x, pads, mode='REFLECT'),
                    lambda: tf.pad(x, pads))
    if self.dilation > 1 and not native_dilation():
      # Shifted products: TensorFlow's plain CPU kernels (oneDNN off) have no
      # gradient for dilated convolutions.
      d = self.dilation
      return tf.add_n([tf.einsum('btc,cd->btd', x[:, j * d:j * d + n_in], self.w[j])
                       for j in range(self.w.shape[0])]) + self.b
    return tf.nn.conv1d(x, self.w, 1, 'VALID', dilations=self.dilation) + self.b


# None: TensorFlow's dilated convolution where oneDNN runs (it has the gradient), shifted
# products elsewhere; True / False force a path (tests). Read when a function is traced.
NATIVE_DILATION = None


def native_dilation() -> bool:
  """Whether :class:`Conv1D` uses ``tf.nn.conv1d(..., dilations=d)``."""
  if NATIVE_DILATION is not None:
    return bool(NATIVE_DILATION)
  from common import compute  # pylint: disable=g-import-not-at-top
  return compute.onednn_enabled()


class ConvTranspose1D(tf.Module):
  """Transposed 1-D convolution, ``[batch, n, c_in] -> [batch, n * stride, c_out]``.

  Kernel ``2 * stride`` taps (the MelGAN / HiFi-GAN choice), ``SAME`` padding.
  """

  def __init__(self, c_in: int, c_out: int, stride: int, *, seed: int = 0, name=None):
    super().__init__(name=name)
    kernel = 2 * stride
    limit = math.sqrt(3.0 / (kernel * c_in / stride))
    self.w = tf.Variable(tf.random.stateless_uniform([kernel, c_out, c_in], [seed, 37],
                                                     -limit, limit), name='w')
    self.b = tf.Variable(tf.zeros([c_out]), name='b')
    self.stride = stride
    self.c_out = c_out

  def __call__(self, x):
    shape = tf.shape(x)
    out = tf.stack([shape[0], shape[1] * self.stride, self.c_out])
    return tf.nn.conv1d_transpose(x, self.w, out, self.stride, padding='SAME') + self.b


def _lrelu(x, alpha=0.2):
  return tf.nn.leaky_relu(x, alpha)


class PQMF(tf.Module):
  """Pseudo-QMF analysis / synthesis filterbank of ``n_bands`` bands (Kaiser prototype).

  ``analysis(x [batch, n_samples]) -> [batch, n_samples / n_bands, n_bands]``;
  ``synthesis(bands) -> [batch, n_samples]``. The prototype (62 taps, cutoff
  0.142, beta 9) is the multi-band MelGAN paper's for 4 bands; analysis then
  synthesis reconstructs a signal to about -40 dB.
  """

  def __init__(self, n_bands: int = 4, taps: int = 62, cutoff: float = 0.142,
               beta: float = 9.0, name='pqmf'):
    super().__init__(name=name)
    n = np.arange(taps + 1) - 0.5 * taps
    with np.errstate(invalid='ignore', divide='ignore'):
      proto = np.sin(math.pi * cutoff * n) / (math.pi * n)
    proto[taps // 2] = cutoff
    proto *= np.kaiser(taps + 1, beta)
    k = np.arange(n_bands)[:, None]
    phase = (2 * k + 1) * (math.pi / (2 * n_bands)) * n[None]
    sign = (-1.0) ** k * math.pi / 4
    analysis = 2 * proto[None] * np.cos(phase + sign)       # [n_bands, taps + 1]
    synthesis = 2 * proto[None] * np.cos(phase - sign)
    self.n_bands, self.taps = n_bands, taps
    # conv1d filters [taps + 1, c_in, c_out]; conv1d correlates, so flip.
    self._analysis = tf.constant(analysis[:, ::-1].T[:, None, :], tf.float32)
    self._synthesis = tf.constant(synthesis[:, ::-1].T[:, :, None] * n_bands, tf.float32)

  def analysis(self, x):
    """``[batch, n_samples]`` -> ``[batch, n_samples // n_bands, n_bands]``."""
    x = tf.pad(x[..., tf.newaxis], [[0, 0], [self.taps // 2, self.taps // 2], [0, 0]])
    return tf.nn.conv1d(x, self._analysis, self.n_bands, 'VALID')

  def synthesis(self, bands):
    """``[batch, n_steps, n_bands]`` -> ``[batch, n_steps * n_bands]``."""
    shape = tf.shape(bands)
    # Zero insertion: each band sample followed by n_bands - 1 zeros.
    up = tf.concat([bands[..., tf.newaxis],
                    tf.zeros(tf.concat([shape, [self.n_bands - 1]], 0), bands.dtype)], -1)
    up = tf.reshape(tf.transpose(up, [0, 2, 1, 3]), [shape[0], self.n_bands, -1])
    up = tf.transpose(up, [0, 2, 1])                        # [batch, n, n_bands]
    up = tf.pad(up, [[0, 0], [self.taps // 2, self.taps // 2], [0, 0]])
    return tf.nn.conv1d(up, self._synthesis, 1, 'VALID')[..., 0]


class _ResidualStack(tf.Module):
  """MelGAN's residual stack: ``x + f(x)`` per dilation (3 ** j), 1x1 skip."""

  def __init__(self, c: int, layers: int, seed: int, name=None):
    super().__init__(name=name)
    self.layers = [(Conv1D(c, c, 3, dilation=3 ** j, seed=seed + 2 * j),
                    Conv1D(c, c, 1, seed=seed + 2 * j + 1)) for j in range(layers)]
    self.skip = [Conv1D(c, c, 1, seed=seed + 50 + j) for j in range(layers)]

  def __call__(self, x):
    for (dil, point), skip in zip(self.layers, self.skip):
      x = skip(x) + point(_lrelu(dil(_lrelu(x))))
    return x


class _ResBlock1(tf.Module):
  """HiFi-GAN's ResBlock1: for each dilation, ``x + conv(lrelu(conv_d(lrelu(x))))``."""

  def __init__(self, c: int, kernel: int, dilations=(1, 3, 5), seed: int = 0, name=None):
    super().__init__(name=name)
    self.convs = [(Conv1D(c, c, kernel, dilation=d, seed=seed + 2 * i),
                   Conv1D(c, c, kernel, seed=seed + 2 * i + 1)) for i, d in enumerate(dilations)]

  def __call__(self, x):
    for a, b in self.convs:
      x = x + b(_lrelu(a(_lrelu(x, 0.1)), 0.1))
    return x


class Vocoder(tf.Module):
  """The generator: mel power ``[batch, n_frames, n_mels]`` -> ``[batch, n_frames * hop]``.

  Args:
    config: a :class:`VocoderConfig`.
  """

  def __init__(self, config: VocoderConfig = VocoderConfig(), name='vocoder'):
    super().__init__(name=name)
    self.config = config
    f = config.features
    self.min_db, self.max_db = f.db_range
    c = config.channels
    mb = config.architecture == 'mb-melgan'
    self.pre = Conv1D(f.n_mels, c, 7, seed=1)
    self.ups, self.blocks = [], []
    for i, rate in enumerate(config.upsample_rates):
      self.ups.append(ConvTranspose1D(c, c // 2, rate, seed=10 + i))
      c //= 2
      if mb:
        self.blocks.append([_ResidualStack(c, config.stack_layers, seed=100 * (i + 1))])
      else:
        self.blocks.append([_ResBlock1(c, k, seed=100 * (i + 1) + 10 * j)
                            for j, k in enumerate((3, 7, 11))])
    self.post = Conv1D(c, config.n_bands, 7, seed=2)
    self.pqmf = PQMF(config.n_bands) if mb else None
    self._compiled = None

  @property
  def hop_length(self) -> int:
    return self.config.features.hop_length

  def features(self, mel):
    """Mel power ``[batch, n_frames, n_mels]`` -> the network's input, same shape.

    The priors' unit scale (clip to ``[amin, amax]``, dB mapped onto [0, 1]),
    centred and scaled (speech lies about 0.3-0.8 on it).
    """
    f = self.config.features
    mel = tf.clip_by_value(tf.convert_to_tensor(mel, tf.float32), f.amin, f.amax)
    db = (10.0 / math.log(10.0)) * tf.math.log(mel)
    unit = (db - self.min_db) / (self.max_db - self.min_db)
    return (unit - 0.5) * 4.0

  def sub_bands(self, mel):
    """``[batch, n_frames, n_mels]`` -> ``[batch, n_frames * hop / n_bands, n_bands]``.

    For ``'hifigan-v2'`` the one band is the waveform.
    """
    x = self.pre(self.features(mel))
    for up, blocks in zip(self.ups, self.blocks):
      x = up(_lrelu(x, 0.1))
      x = tf.add_n([b(x) for b in blocks]) / len(blocks)
    return tf.tanh(self.post(_lrelu(x, 0.01)))

  def __call__(self, mel):
    """Mel power ``[batch, n_frames, n_mels]`` -> float32 ``[batch, n_frames * hop_length]``.

    Raises:
      ParameterError: another number of mel bands than the features'.
    """
    mel = tf.convert_to_tensor(mel, tf.float32)
    if mel.shape.rank != 3 or mel.shape[-1] not in (None, self.config.features.n_mels):
      raise ParameterError(f'the vocoder takes mel power [batch, n_frames, '
                           f'{self.config.features.n_mels}], got shape {tuple(mel.shape)}')
    bands = self.sub_bands(mel)
    if self.pqmf is None:
      return bands[..., 0]
    return self.pqmf.synthesis(bands)

  def compiled(self):
    """:meth:`__call__` as one ``tf.function`` for any batch and length (traced once)."""
    if self._compiled is None:
      n_mels = self.config.features.n_mels
      self._compiled = tf.function(
          self.__call__, input_signature=[tf.TensorSpec([None, None, n_mels], tf.float32)])
    return self._compiled


def num_parameters(model: tf.Module) -> int:
  return int(sum(np.prod(v.shape) for v in model.trainable_variables))


# ------------------------------------------------------------------ losses
def _stft_mag(x, n_fft, hop, win):
  s = tf.signal.stft(x, win, hop, n_fft, window_fn=tf.signal.hann_window, pad_end=False)
  return tf.sqrt(tf.maximum(tf.square(tf.math.real(s)) + tf.square(tf.math.imag(s)),
                            _LOG_FLOOR))


def multi_resolution_stft_loss(target, estimate, resolutions, *, per_item: bool = False
                               ) -> Tuple[tf.Tensor, tf.Tensor]:
  """``(spectral convergence, log-magnitude L1)``, each the mean over resolutions.

  Args:
    target, estimate: float32 ``[batch, n_samples]``.
    resolutions: ``(n_fft, hop_length, win_length)`` triples.
    per_item: spectral convergence per item, then the mean (every item weighs the
      same, a quiet one too); otherwise over the whole batch (the papers').
  """
  sc, mag = [], []
  for n_fft, hop, win in resolutions:
    t, e = _stft_mag(target, n_fft, hop, win), _stft_mag(estimate, n_fft, hop, win)
    if per_item:
      sc.append(tf.reduce_mean(tf.norm(t - e, axis=[-2, -1]) / tf.norm(t, axis=[-2, -1])))
    else:
      sc.append(tf.norm(t - e) / tf.norm(t))
    mag.append(tf.reduce_mean(tf.abs(tf.math.log(t) - tf.math.log(e))))
  return tf.add_n(sc) / len(sc), tf.add_n(mag) / len(mag)


def vocoder_loss(model: Vocoder, mel, waveform, *, sc_per_item: bool = False
                 ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """``(loss, metrics)`` of the vocoder on aligned ``mel`` and ``waveform``.

  Args:
    mel: float32 mel power ``[batch, n_frames, n_mels]``.
    waveform: float32 ``[batch, n_frames * hop_length]``.

  The full-band multi-resolution STFT loss, plus for the multi-band model the
  sub-band one on the PQMF analysis of the waveform (the two averaged, as in
  the multi-band MelGAN paper). ``sc_per_item``: see :func:`multi_resolution_stft_loss`.
  """
  bands = model.sub_bands(mel)
  if model.pqmf is None:
    estimate = bands[..., 0]
  else:
    estimate = model.pqmf.synthesis(bands)
  sc, mag = multi_resolution_stft_loss(waveform, estimate, FULL_BAND_STFTS, per_item=sc_per_item)
  metrics = {'sc': sc, 'log_mag': mag}
  loss = sc + mag
  if model.pqmf is not None:
    target_bands = model.pqmf.analysis(waveform)
    flat = lambda b: tf.reshape(tf.transpose(b, [0, 2, 1]), [-1, tf.shape(b)[1]])
    sub_sc, sub_mag = multi_resolution_stft_loss(flat(target_bands), flat(bands),
                                                 SUB_BAND_STFTS, per_item=sc_per_item)
    metrics.update(sub_sc=sub_sc, sub_log_mag=sub_mag)
    loss = 0.5 * (loss + sub_sc + sub_mag)
  return loss, metrics


# --------------------------------------------------------- shipped folders
def default_dir() -> str:
  """The shipped folder: ``assets/inversion/vocoder_speech``."""
  return os.path.join(assets.path('inversion'), DEFAULT_DIR_NAME)


def export_vocoder(out_dir: str, model: Vocoder, meta: Dict[str, Any], *,
                   workdir: Optional[str] = None, flag: str = 'export_dir') -> str:
  """Writes ``model``'s current weights and ``meta`` to ``out_dir``.

  ``out_dir`` must be new, empty or an earlier vocoder export (only its own
  files are replaced; ``training.prior_io.write_prior_folder``), and not
  ``workdir``.

  Raises:
    ParameterError: for such a target, naming ``--<flag>``.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  meta = dict(meta, kind=KIND, network=model.config.to_dict(),
              num_parameters=num_parameters(model))
  return prior_io.write_prior_folder(out_dir, model, meta, workdir=workdir, flag=flag)


_CACHE: Dict[Tuple[str, float], Tuple[Vocoder, Dict[str, Any]]] = {}


@tf.autograph.experimental.do_not_convert   # file reading, also called while tracing
def load_vocoder(path: Optional[str] = None, *, features: Optional[FeatureConfig] = None
                 ) -> Tuple[Vocoder, Dict[str, Any]]:
  """Reads a vocoder folder; ``path=None`` is the shipped one.

  Args:
    path: a folder written by :func:`export_vocoder` (or None).
    features: if given, they must be the features the vocoder was trained on.

  Returns:
    ``(model, meta)``; cached per folder (and its modification time).

  Raises:
    ParameterError: a missing or damaged folder, another kind, other features.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  path = default_dir() if path is None else path
  cfg_path = os.path.join(path, prior_io.PRIOR_CONFIG)
  key = (os.path.abspath(path), os.path.getmtime(cfg_path) if os.path.exists(cfg_path) else 0)
  if key not in _CACHE:
    meta = prior_io.read_json(cfg_path, 'vocoder config')
    if meta.get('kind') != KIND:
      raise ParameterError(f'{path} holds a {meta.get("kind")!r} folder, not a vocoder')
    try:
      config = VocoderConfig.from_dict(meta['network'])
    except (KeyError, TypeError) as e:
      raise ParameterError(f'{cfg_path} has no valid network entry ({e})') from e
    with tf.init_scope():
      model = Vocoder(config)
      prior_io.read_checkpoint(os.path.join(path, prior_io.PRIOR_WEIGHTS),
                               what='vocoder weights', model=model)
    _CACHE[key] = (model, meta)
  model, meta = _CACHE[key]
  if features is not None:
    diff = {k: v for k, v in model.config.features.differences(features).items()
            if k not in ('patch_frames', 'patch_samples')}   # patches: not the vocoder's concern
    if diff:
      raise ParameterError(f'the vocoder in {path} was trained on other mel features '
                           f'({diff}); train one for these (train_vocoder.py)')
  return model, meta


def mel_to_waveform(mel, *, vocoder: Optional[str] = None,
                    features: Optional[FeatureConfig] = None, length: Optional[int] = None):
  """Speaks mel power spectra with a trained vocoder.

  Args:
    mel: float mel power ``[batch, n_frames, n_mels]`` (or ``[n_frames, n_mels]``)
      in ``features``' convention.
    vocoder: a vocoder folder (None: the shipped one).
    features: the mel's features; checked against the vocoder's.
    length: int, samples to return (crop or zero-pad); default
      ``n_frames * hop_length``.

  Returns:
    float32 waveform ``[batch, length]`` (``[length]`` for a 2-D ``mel``).

  Raises:
    ParameterError: as :func:`load_vocoder`; a mel of another band count.
  """
  model, _ = load_vocoder(vocoder, features=features)
  mel = tf.convert_to_tensor(mel, tf.float32)
  single = mel.shape.rank == 2
  if single:
    mel = mel[tf.newaxis]
  y = model.compiled()(mel)
  if length is not None:
    n = tf.shape(y)[-1]
    y = tf.pad(y, [[0, 0], [0, tf.maximum(length - n, 0)]])[:, :length]
  return y[0] if single else y


# ----------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class VocoderTrainConfig:
  """One training run of the vocoder (``train_vocoder.py``).

  Attributes:
    workdir: run folder (checkpoints, TensorBoard, ``metrics.json``); rerun to
      resume.
    train_data: wav folders / glob patterns / TFRecord files of waveforms
      (:func:`list_sources`).
    eval_data: the same for the held-out clips (evaluation loss).
    network: the :class:`VocoderConfig`.
    init: a vocoder folder whose weights start the run ('' for none); only
      used when ``workdir`` holds no checkpoint yet.
    steps: int > 0, training steps.
    batch_size: int > 0, segments per step.
    segment_frames: int > 0, mel frames per segment (``segment_frames *
      hop_length`` samples).
    learning_rate: float > 0, Adam.
    gain_db: ``(low, high)``, random gain of the segments, dB.
    tones: int >= 0, synthetic tone clips added to the training clips
      (:func:`tone_clips`: steady and gliding sines with a few harmonics; speech
      alone teaches nothing about an isolated partial).
    sc_per_item: spectral convergence per segment (:func:`vocoder_loss`).
    max_files: int > 0, at most this many files per pattern.
    seed: int, initialisation and data order.
    eval_every, checkpoint_every, log_every: loop cadence, steps.
    progress: show a progress bar.
  """
  workdir: str
  train_data: Tuple[str, ...]
  eval_data: Tuple[str, ...] = ()
  network: VocoderConfig = VocoderConfig()
  init: str = ''
  steps: int = 20000
  batch_size: int = 16
  segment_frames: int = 16
  learning_rate: float = 5e-4
  gain_db: Tuple[float, float] = (-15.0, 10.0)
  tones: int = 0
  sc_per_item: bool = False
  max_files: int = 2000
  seed: int = 0
  eval_every: int = 500
  checkpoint_every: int = 250
  log_every: int = 50
  progress: bool = True

  def __post_init__(self):
    checks.check_positive_ints(self, 'steps', 'batch_size', 'segment_frames', 'max_files')
    if not self.learning_rate > 0:
      raise ParameterError(f'--learning_rate must be > 0, got {self.learning_rate!r}')
    if not self.train_data:
      raise ParameterError('--train_data names no data (give wav folders or glob patterns)')
    if os.path.isfile(self.workdir):
      raise ParameterError(f'--workdir={self.workdir} is a file, not a folder')
    if isinstance(self.tones, bool) or not isinstance(self.tones, int) or self.tones < 0:
      raise ParameterError(f'--tones must be an int >= 0, got {self.tones!r}')
    if self.gain_db[0] > self.gain_db[1]:
      raise ParameterError(f'--gain_db low must be <= high, got {list(self.gain_db)}')


WAVEFORM_FEATURE = 'waveform'


def _read_waveform_tfrecord(path: str, sample_rate: int, flag: str):
  """Clips of a TFRecord file of ``tf.train.Example`` s with a ``waveform`` float list
  and a ``sample_rate`` int64.

  Raises:
    ParameterError: another schema or sample rate (one line naming the file).
  """
  clips = []
  try:
    for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
      try:
        ex = tf.train.Example.FromString(raw)
      except Exception as e:  # pylint: disable=broad-except  # protobuf DecodeError
        raise ParameterError(f'--{flag}: {path} holds records that are not tf.train.Example '
                             f'protos ({type(e).__name__}); the vocoder reads Examples with '
                             f'a {WAVEFORM_FEATURE!r} float list and a sample_rate') from e
      feats = ex.features.feature
      if WAVEFORM_FEATURE not in feats or not feats[WAVEFORM_FEATURE].float_list.value:
        raise ParameterError(
            f'--{flag}: {path} holds records with features {sorted(feats)[:6]}, not the '
            f'{WAVEFORM_FEATURE!r} float list (+ sample_rate) the vocoder trains on (mel '
            'patch TFRecords carry no waveform: give the wav folder instead)')
      rate = (feats['sample_rate'].int64_list.value[:1] or [None])[0] if (
          'sample_rate' in feats) else None
      if rate != sample_rate:
        raise ParameterError(f'--{flag}: {path} holds waveforms at sample_rate {rate}, the '
                             f'vocoder\'s features are at {sample_rate} Hz')
      clips.append(np.asarray(feats[WAVEFORM_FEATURE].float_list.value, np.float32))
  except tf.errors.OpError as e:
    raise ParameterError(f'--{flag}: cannot read {path} as a TFRecord file '
                         f'({type(e).__name__}: {str(e).splitlines()[0][:200]})') from e
  if not clips:
    raise ParameterError(f'--{flag}: {path} holds no records')
  return clips


def list_sources(entries, max_files: int, *, flag: str):
  """``[(kind, path)]`` for wav files and waveform TFRecord files.

  Each entry is a folder (its ``*/voice.wav`` -- the voice + noise layout --,
  else its ``*.wav``, else its ``*.tfrecord``), a glob pattern or a file.

  Raises:
    ParameterError: an entry that names nothing, or a folder without audio.
  """
  import glob  # pylint: disable=g-import-not-at-top
  out = []
  for entry in entries:
    if os.path.isdir(entry):
      files = []
      for pattern in ('*/voice.wav', '*.wav', '*.tfrecord', '*/*.tfrecord'):
        files = sorted(glob.glob(os.path.join(entry, pattern)))
        if files:
          break
      if not files:
        raise ParameterError(f'--{flag}={entry} is a folder without wav or TFRecord files '
                             '(empty, or not the voice + noise layout <clip>/voice.wav)')
    else:
      files = sorted(glob.glob(entry))
      if not files:
        raise ParameterError(f'--{flag}: {entry!r} does not exist and matches no file')
    if len(files) > max_files:
      idx = np.linspace(0, len(files) - 1, max_files).round().astype(int)
      files = [files[i] for i in idx]
    out += [('tfrecord' if f.endswith(('.tfrecord', '.tfrecords')) else 'wav', f)
            for f in files]
  return out


def load_clips(sources, features: FeatureConfig, *, flag: str):
  """``(waveforms, mels)``: each clip zero-padded to ``n_frames * hop_length`` samples
  ``[n]`` and its mel power ``[n_frames, n_mels]`` (centred frames).

  Raises:
    ParameterError: unreadable or silent audio, a TFRecord of another schema.
  """
  from pipeline import audio  # pylint: disable=g-import-not-at-top
  raw = []
  for kind, path in sources:
    if kind == 'tfrecord':
      raw += _read_waveform_tfrecord(path, features.sample_rate, flag)
    else:
      y, _ = audio.load(path, sample_rate=features.sample_rate)
      if not np.any(y):
        raise ParameterError(f'--{flag}: audio file {path!r} is silent (every sample is 0); '
                             'leave it out of the data')
      raw.append(np.asarray(y, np.float32))
  return clips_with_mels(raw, features)


def tone_clips(n: int, *, sample_rate: int, duration_s: float = 4.08, seed: int = 0):
  """``n`` synthetic tone clips, float32 ``[duration_s * sample_rate]`` each.

  Each: a fundamental log-uniform in 60-3,000 Hz, steady or gliding (up to an
  octave either way), with 0-3 harmonics at random levels (-30..0 dB), an RMS
  of -35..-15 dBFS, faded in and out over 50 ms.
  """
  rng = np.random.default_rng([seed, 0x70E5])
  t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
  out = []
  for _ in range(n):
    f0 = np.exp(rng.uniform(np.log(60.0), np.log(3000.0)))
    glide = rng.uniform(-1.0, 1.0) if rng.random() < 0.5 else 0.0
    freq = f0 * 2.0 ** (glide * t / t[-1])
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    y = np.sin(phase + rng.uniform(0, 2 * np.pi))
    for k in range(2, 2 + rng.integers(0, 4)):
      if f0 * k * 2 ** max(glide, 0) < 0.45 * sample_rate:
        y += 10 ** (rng.uniform(-30, 0) / 20) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    y *= fade * 10 ** (rng.uniform(-35, -15) / 20) / np.sqrt(np.mean(y ** 2))
    out.append(y.astype(np.float32))
  return out


def clips_with_mels(raw, features: FeatureConfig):
  """``(waveforms, mels)`` of :func:`load_clips` for waveforms ``raw`` (float32 ``[n]`` each)."""
  from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
  t = MelTransform(features)
  hop = features.hop_length
  waves, mels = [], []
  for y in raw:
    n_frames = 1 + max(y.size, hop) // hop
    mel = t.spectrogram_to_mel(t.spectrogram(tf.constant(y))).numpy()[:n_frames]
    y = np.pad(y, (0, max(0, n_frames * hop - y.size)))[:n_frames * hop]
    waves.append(y)
    mels.append(mel.astype(np.float32))
  return waves, mels


def segment_dataset(waves, mels, *, segment_frames: int, hop_length: int, batch_size: int,
                    gain_db: Tuple[float, float], seed: int) -> tf.data.Dataset:
  """Endless batches ``(mel [batch, segment_frames, n_mels], waveform [batch,
  segment_frames * hop_length])`` of random aligned segments at a random gain."""
  n_mels = mels[0].shape[-1]
  n = segment_frames * hop_length

  def gen():
    rng = np.random.default_rng(seed)
    while True:
      i = rng.integers(len(waves))
      mel, y = mels[i], waves[i]
      if mel.shape[0] < segment_frames:
        pad = segment_frames - mel.shape[0]
        mel = np.pad(mel, ((0, pad), (0, 0)), constant_values=0.0)
        y = np.pad(y, (0, pad * hop_length))
      f = rng.integers(0, mel.shape[0] - segment_frames + 1)
      g = rng.uniform(*gain_db)
      yield (mel[f:f + segment_frames] * np.float32(10.0 ** (g / 10.0)),
             y[f * hop_length:f * hop_length + n] * np.float32(10.0 ** (g / 20.0)))

  ds = tf.data.Dataset.from_generator(gen, output_signature=(
      tf.TensorSpec([segment_frames, n_mels], tf.float32), tf.TensorSpec([n], tf.float32)))
  return ds.batch(batch_size, drop_remainder=True).prefetch(4)


def _description(config: VocoderTrainConfig, n_train: int) -> Dict[str, Any]:
  return {'kind': KIND, 'network': config.network.to_dict(),
          'train_data': list(config.train_data), 'n_train_clips': n_train,
          'segment_frames': config.segment_frames, 'batch_size': config.batch_size,
          'gain_db': list(config.gain_db), 'seed': config.seed,
          'loss': 'multi-resolution STFT (full band + PQMF sub-bands)',
          # only when used: runs from before these options resume
          **({'tones': config.tones} if config.tones else {}),
          **({'sc_per_item': True} if config.sc_per_item else {})}


def _start_from(model: Vocoder, init: str):
  """Copies the weights of the vocoder folder ``init`` into ``model``.

  Raises:
    ParameterError: ``init`` is not a vocoder folder of the same network.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  meta = prior_io.read_json(os.path.join(init, prior_io.PRIOR_CONFIG), '--init vocoder config')
  if meta.get('kind') != KIND:
    raise ParameterError(f'--init={init} holds a {meta.get("kind")!r} folder, not a vocoder')
  try:
    other = VocoderConfig.from_dict(meta['network'])
  except (KeyError, TypeError) as e:
    raise ParameterError(f'--init={init}: config.json has no valid network entry ({e})') from e
  if other != model.config:
    diff = {k: (a, b) for (k, a), b in zip(other.to_dict().items(),
                                           model.config.to_dict().values()) if a != b}
    raise ParameterError(f'--init={init} holds another vocoder network (saved, given: {diff}); '
                         'give the same --architecture / --channels or another --init')
  prior_io.read_checkpoint(os.path.join(init, prior_io.PRIOR_WEIGHTS),
                           what=f'--init={init} weights', model=model)


def train(config: VocoderTrainConfig, *, export_dir: str = '') -> Dict[str, Any]:
  """Trains (or resumes) the vocoder; exports the EMA weights to ``export_dir`` if given.

  Returns:
    The loop's final metrics.

  Raises:
    ParameterError: bad data, a mismatched workdir or ``init``, a bad export target.
  """
  import time  # pylint: disable=g-import-not-at-top
  from training import loop as loop_lib  # pylint: disable=g-import-not-at-top
  from training import optim  # pylint: disable=g-import-not-at-top
  from training import prior_io  # pylint: disable=g-import-not-at-top
  if export_dir:   # refused now, not after the training
    prior_io.check_prior_target(export_dir, KIND, workdir=config.workdir, flag='export_dir')
  if config.init:
    _start_from(Vocoder(config.network), config.init)   # checked before the data is read
  features = config.network.features
  t0 = time.time()
  train_src = list_sources(config.train_data, config.max_files, flag='train_data')
  eval_src = (list_sources(config.eval_data, config.max_files, flag='eval_data')
              if config.eval_data else [])
  waves, mels = load_clips(train_src, features, flag='train_data')
  if config.tones:
    tw, tm = clips_with_mels(tone_clips(config.tones, sample_rate=features.sample_rate,
                                        seed=config.seed), features)
    waves, mels = waves + tw, mels + tm
  eval_waves, eval_mels = (load_clips(eval_src, features, flag='eval_data') if eval_src
                           else ([], []))
  print(f'vocoder: {len(waves)} training clips, {len(eval_waves)} held-out, read in '
        f'{time.time() - t0:.1f} s', flush=True)
  hop = features.hop_length
  kw = dict(segment_frames=config.segment_frames, hop_length=hop,
            batch_size=config.batch_size, gain_db=config.gain_db)
  train_ds = segment_dataset(waves, mels, seed=config.seed, **kw)
  eval_ds = (segment_dataset(eval_waves, eval_mels, seed=config.seed + 1, **kw)
             if eval_waves else None)
  description = _description(config, len(waves))
  has_checkpoint = tf.train.latest_checkpoint(os.path.join(config.workdir, 'checkpoints'))

  def task_fn():
    model = Vocoder(config.network)
    if config.init and not has_checkpoint:
      _start_from(model, config.init)
    opt = optim.Adam(model.trainable_variables,
                     optim.OptimizerConfig(learning_rate=config.learning_rate))
    return loop_lib.Task(model=model, optimizer=opt,
                         loss_fn=lambda batch, seed: vocoder_loss(
                             model, *batch, sc_per_item=config.sc_per_item),
                         description=description)

  loop_config = loop_lib.LoopConfig(
      workdir=config.workdir, total_steps=config.steps, log_every=config.log_every,
      eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
      keep_checkpoints=4, eval_batches=8, ema_decay=0.999, grad_clip_norm=10.0,
      seed=config.seed, progress=config.progress)
  final = loop_lib.train(task_fn, train_ds, loop_config, eval_data=eval_ds)
  if export_dir:
    export_run(config.workdir, export_dir, config.network, extra={
        'eval_loss': final.get('eval_loss'), 'train_loss': final.get('train_loss')})
  return final


def export_run(workdir: str, export_dir: str, network: VocoderConfig, *,
               extra: Optional[Dict[str, Any]] = None) -> str:
  """Exports the EMA weights of ``workdir``'s newest checkpoint to ``export_dir``.

  Raises:
    ParameterError: no checkpoint, one of another network, a bad target.
  """
  import sys  # pylint: disable=g-import-not-at-top
  from common import compute  # pylint: disable=g-import-not-at-top
  from training import loop as loop_lib  # pylint: disable=g-import-not-at-top
  from training import prior_io  # pylint: disable=g-import-not-at-top
  prior_io.check_prior_target(export_dir, KIND, workdir=workdir, flag='export_dir')
  cfg_path = os.path.join(workdir, 'config.json')
  run_meta = loop_lib.read_json(cfg_path) if os.path.exists(cfg_path) else {}
  if run_meta.get('network') and run_meta['network'] != json_roundtrip(network.to_dict()):
    raise ParameterError(f'--workdir={workdir} holds a run of another vocoder network '
                         f'({run_meta["network"].get("architecture")!r}, channels '
                         f'{run_meta["network"].get("channels")}); give its --architecture')
  model = Vocoder(network)
  ckpt, step, elapsed = prior_io.load_ema_weights(workdir, model)
  meta = dict(run_meta, step=step, elapsed_s=elapsed, checkpoint=ckpt,
              command=' '.join(['python', os.path.basename(sys.argv[0])] + sys.argv[1:]),
              cpu=compute.cpu_description(), **(extra or {}))
  export_vocoder(export_dir, model, meta, workdir=workdir)
  print(f'exported the EMA weights of step {step} ({num_parameters(model):,} parameters) '
        f'to {export_dir}', flush=True)
  return export_dir


def json_roundtrip(d):
  import json  # pylint: disable=g-import-not-at-top
  return json.loads(json.dumps(d))


def speak_file(path: str, *, features: FeatureConfig = FeatureConfig(),
               vocoder: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, float]:
  """wav file -> its mel -> the vocoder: ``(reference, estimate, seconds)``.

  Both float32 ``[n_samples]`` at ``features.sample_rate`` (the input is
  resampled to it); ``seconds``: the mel -> waveform time (wall clock,
  including the first call's tracing).

  Raises:
    ParameterError: an unreadable file, a vocoder of other features.
  """
  import time  # pylint: disable=g-import-not-at-top
  from pipeline import audio  # pylint: disable=g-import-not-at-top
  from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
  t = MelTransform(features)
  y, _ = audio.load(path, sample_rate=features.sample_rate)
  y = np.asarray(y, np.float32)
  mel = t.spectrogram_to_mel(t.spectrogram(tf.constant(y)))
  start = time.perf_counter()
  out = mel_to_waveform(mel, vocoder=vocoder, features=features, length=y.size).numpy()
  return y, out, time.perf_counter() - start
