"""The two trainable inversion networks and their shipped folders.

* :class:`Refiner`: mel -> linear magnitude. A small convolutional U-Net
  (downsampling along frequency only, skips at every level) on top of the
  clipped pseudo-inverse, or of the NNLS estimate that starts from it
  (``RefinerConfig.base_iterations``): it predicts a correction of the log
  magnitude, and its last layer starts at zero, so an untrained refiner *is*
  its base estimate. Its input lives on the linear-frequency axis, so one refiner
  serves every mel filterbank of an STFT setting (it is trained on several).
* :class:`DeGLINet`: the network of one Deep Griffin-Lim block (Masuyama et
  al. 2020). A block takes the current complex STFT ``X``, computes
  ``Y = P_A(X)`` (the target amplitude with the phase of ``X``) and
  ``Z = P_C(Y)`` (its consistent neighbour), and a gated convolutional
  network over the real / imaginary parts of ``X, Y, Z`` (and the amplitude)
  predicts the residual ``Z - S`` that the block subtracts:
  ``X <- Z - F(X, Y, Z, A)``. Inference repeats the one block.

Shapes follow ``pipeline/config.py``: magnitudes and STFTs are
``[batch, n_frames, n_bins]``; inside the networks a channel axis is added,
``[batch, n_frames, n_bins, channels]`` (frames as height, bins as width).
Both networks normalise each item by a reference level, so they are
gain-equivariant: scaling the input scales the output.

A shipped folder (``assets/inversion/<name>/``) is ``config.json`` (the
network's settings, its STFT, how it was trained) + ``weights.*`` (the EMA
weights), written by :func:`export_net` and read by :func:`load_net`.
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from common import assets
from common.errors import ParameterError

KINDS = ('refiner', 'degli')
ASSETS_DIR = assets.path('inversion')
# Relative floor of the log magnitude (-80 dB below the item's peak).
LOG_FLOOR = 1e-4


@dataclasses.dataclass(frozen=True)
class StftSettings:
  """The STFT a network was trained on (it only works on this one).

  Attributes:
    sample_rate: int, Hz.
    n_fft: int, FFT size = Hann window length, samples.
    hop_length: int, samples.
    center: bool, centred frames.
  """
  sample_rate: int = 16000
  n_fft: int = 2048
  hop_length: int = 512
  center: bool = True

  @classmethod
  def of(cls, transform) -> 'StftSettings':
    c = transform.config
    return cls(c.sample_rate, c.n_fft, c.hop_length, c.center)

  def check(self, transform, *, what: str):
    """ParameterError when ``transform``'s STFT is not this one."""
    other = StftSettings.of(transform)
    if other != self:
      diff = ', '.join(f'{k}: trained {a!r}, given {b!r}'
                       for k, a, b in zip(dataclasses.asdict(self), dataclasses.astuple(self),
                                          dataclasses.astuple(other)) if a != b)
      raise ParameterError(
          f'{what} was trained for another STFT ({diff}); use the STFT it was '
          'trained on or train one for these settings (train_inversion_net.py)')


@dataclasses.dataclass(frozen=True)
class RefinerConfig:
  """Attributes:
    channels: int > 0, feature maps at full resolution; 1.5x that at the
      first coarser level and 2x from the second on (width, not depth, is what
      costs at 1025 bins).
    levels: int >= 0, frequency downsamplings (by 2 each).
    base_iterations: int >= 0, NNLS steps of the base estimate the network
      corrects (0: the clipped pseudo-inverse).
    stft: the STFT settings.
  """
  channels: int = 16
  levels: int = 3
  base_iterations: int = 0
  stft: StftSettings = StftSettings()

  def __post_init__(self):
    if not (isinstance(self.channels, int) and self.channels > 0):
      raise ParameterError(f'channels must be a positive int, got {self.channels!r}')
    if not (isinstance(self.levels, int) and 0 <= self.levels <= 6):
      raise ParameterError(f'levels must be an int in [0, 6], got {self.levels!r}')
    if not (isinstance(self.base_iterations, int) and self.base_iterations >= 0):
      raise ParameterError(
          f'base_iterations must be an int >= 0, got {self.base_iterations!r}')


@dataclasses.dataclass(frozen=True)
class DeGLIConfig:
  """Attributes:
    channels: int > 0, feature maps of the gated convolutions.
    layers: int >= 1, gated layers after the first.
    stft: the STFT settings.
  """
  channels: int = 24
  layers: int = 2
  stft: StftSettings = StftSettings()

  def __post_init__(self):
    if not (isinstance(self.channels, int) and self.channels > 0):
      raise ParameterError(f'channels must be a positive int, got {self.channels!r}')
    if not (isinstance(self.layers, int) and self.layers >= 1):
      raise ParameterError(f'layers must be an int >= 1, got {self.layers!r}')


class Conv(tf.Module):
  """2-D convolution, ``SAME`` padding, ``[batch, frames, bins, c_in] -> [..., c_out]``.

  Args:
    c_in, c_out: channels.
    kernel: ``(k_frames, k_bins)``.
    zero: start with zero weights and bias (an identity residual).
    seed: int, initialiser seed.
  """

  def __init__(self, c_in: int, c_out: int, kernel=(3, 3), *, zero: bool = False,
               seed: int = 0, name=None):
    super().__init__(name=name)
    shape = tuple(kernel) + (c_in, c_out)
    if zero:
      w = tf.zeros(shape)
    else:   # He-uniform for ELU / GLU inputs
      limit = np.sqrt(6.0 / (kernel[0] * kernel[1] * c_in))
      w = tf.random.stateless_uniform(shape, [seed, 17], -limit, limit)
    self.w = tf.Variable(w, name='w')
    self.b = tf.Variable(tf.zeros([c_out]), name='b')

  def __call__(self, x, strides=(1, 1)):
    return tf.nn.conv2d(x, self.w, strides=(1,) + tuple(strides) + (1,), padding='SAME') + self.b


def _upsample_bins(x, width):
  """Nearest-neighbour x2 along bins, cropped to ``width``."""
  return tf.repeat(x, 2, axis=2)[:, :, :width]


class Refiner(tf.Module):
  """Log-magnitude correction of the clipped pseudo-inverse.

  ``__call__(base) -> magnitude``: ``base`` float ``[batch, n_frames, n_bins]``
  the clipped pseudo-inverse magnitude (linear amplitude), returns the refined
  magnitude of the same shape.
  """

  def __init__(self, config: RefinerConfig = RefinerConfig(), name='refiner'):
    super().__init__(name=name)
    self.config = config
    c, seed = config.channels, 0
    widths = [c] + [int(round(c * min(1.0 + 0.5 * i, 2.0))) for i in range(1, config.levels + 1)]
    self.enc = []
    c_prev = 1
    for i, w in enumerate(widths):
      self.enc.append((Conv(c_prev, w, seed=seed + 2 * i), Conv(w, w, seed=seed + 2 * i + 1)))
      c_prev = w
    self.dec = []
    for i in reversed(range(config.levels)):
      self.dec.append(Conv(widths[i + 1] + widths[i], widths[i], seed=100 + i))
    self.out = Conv(widths[0], 1, zero=True)
    self._compiled = None

  def log_correction(self, x):
    """``[batch, frames, bins, 1]`` normalised log magnitude -> correction, same shape."""
    skips = []
    h = x
    for i, (a, b) in enumerate(self.enc):
      h = tf.nn.elu(a(h, strides=(1, 2) if i else (1, 1)))
      h = tf.nn.elu(b(h))
      skips.append(h)
    for conv, skip in zip(self.dec, reversed(skips[:-1])):
      h = _upsample_bins(h, tf.shape(skip)[2])
      h = tf.nn.elu(conv(tf.concat([h, skip], axis=-1)))
    return self.out(h)

  def compiled_correction(self):
    """:meth:`log_correction` as one ``tf.function`` for any shape (traced once).

    At inference it is 1.5x faster than op by op (a 30 s chunk of two sources:
    1.35 vs 2.01 CPU s) and equal to float32 rounding (2e-7 relative).
    """
    if self._compiled is None:
      self._compiled = tf.function(
          self.log_correction, input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
    return self._compiled

  @property
  def margin_frames(self) -> int:
    """Frames on each side that reach one output frame (its receptive field in time).

    Every convolution is 3 frames wide with stride 1 in time: two per encoder
    level (``levels + 1`` of them), one per decoder level and the output one.
    """
    return 2 * (self.config.levels + 1) + self.config.levels + 1

  def __call__(self, base, *, chunk_frames: int = 256, correction=None):
    """Refined magnitudes of ``base`` ``[batch, n_frames, n_bins]`` (same shape).

    Long inputs go through the network in chunks of ``chunk_frames`` frames
    with :attr:`margin_frames` of context on each side (rounded up to 32), and
    one peak normaliser per item for the whole input, so the result equals the
    whole-input computation (the margin covers the receptive field) while the
    network's activations stay bounded: memory does not grow with the length.
    ``correction``: a compiled form of :meth:`log_correction` to use instead
    (:meth:`compiled_correction`).
    """
    correct = correction or self.log_correction
    base = tf.convert_to_tensor(base, tf.float32)
    x, ref = normalised_log(base)
    n_frames = int(x.shape[1]) if x.shape[1] is not None else None
    if n_frames is None or n_frames <= chunk_frames:
      y = x + correct(x[..., tf.newaxis])[..., 0]
      return from_normalised_log(y, ref)
    margin = max(32, self.margin_frames)
    parts = []
    for start in range(0, n_frames, chunk_frames):
      stop = min(start + chunk_frames, n_frames)
      lo, hi = max(0, start - margin), min(n_frames, stop + margin)
      piece = x[:, lo:hi]
      corr = correct(piece[..., tf.newaxis])[..., 0]
      parts.append(piece[:, start - lo:stop - lo] + corr[:, start - lo:stop - lo])
    return from_normalised_log(tf.concat(parts, axis=1), ref)


def reference_level(mags, *, axis=(-2, -1)):
  """Per-item peak ``[batch, 1, 1]`` (at least the float32 tiny)."""
  return tf.maximum(tf.reduce_max(mags, axis=axis, keepdims=True), np.finfo(np.float32).tiny)


def normalised_log(mags) -> Tuple[tf.Tensor, tf.Tensor]:
  """``(log(max(V / peak, LOG_FLOOR)), peak)`` for ``V [batch, frames, bins]``."""
  ref = reference_level(mags)
  return tf.math.log(tf.maximum(mags / ref, LOG_FLOOR)), ref


def from_normalised_log(y, ref):
  """Inverse of :func:`normalised_log`; values at the floor come back as 0."""
  return tf.nn.relu(tf.exp(y) - LOG_FLOOR) * ref


def _glu(h):
  a, b = tf.split(h, 2, axis=-1)
  return a * tf.sigmoid(b)


def _ri(z):
  return tf.stack([tf.math.real(z), tf.math.imag(z)], axis=-1)


class DeGLINet(tf.Module):
  """The residual network of one Deep Griffin-Lim block.

  ``__call__(x, y, z, amp) -> residual``: ``x, y, z`` complex64
  ``[batch, n_frames, n_bins]`` (current estimate, ``P_A(x)``, ``P_C(P_A(x))``),
  ``amp`` float ``[batch, n_frames, n_bins]`` the target amplitude; returns the
  complex residual estimate, same shape (the block outputs ``z - residual``).
  """

  def __init__(self, config: DeGLIConfig = DeGLIConfig(), name='degli'):
    super().__init__(name=name)
    self.config = config
    c = config.channels
    self.first = Conv(7, 2 * c, (5, 5), seed=1)
    self.hidden = [Conv(c, 2 * c, (3, 3), seed=2 + i) for i in range(config.layers)]
    self.out = Conv(c, 2, (3, 3), zero=True)

  def __call__(self, x, y, z, amp):
    amp = tf.convert_to_tensor(amp, tf.float32)
    ref = tf.sqrt(tf.reduce_mean(tf.square(amp), axis=[-2, -1], keepdims=True)) + 1e-12
    scale = tf.complex(1.0 / ref, 0.0)
    feats = tf.concat([_ri(x * scale), _ri(y * scale), _ri(z * scale),
                       (amp / ref)[..., tf.newaxis]], axis=-1)
    h = _glu(self.first(feats))
    for conv in self.hidden:
      h = h + _glu(conv(h))
    r = self.out(h)
    return tf.complex(r[..., 0] * ref, r[..., 1] * ref)


def build(kind: str, config) -> tf.Module:
  """The network of ``kind`` (``'refiner'`` / ``'degli'``) for ``config``."""
  if kind == 'refiner':
    return Refiner(config)
  if kind == 'degli':
    return DeGLINet(config)
  raise ParameterError(f'unknown network kind {kind!r}; choose one of {list(KINDS)}')


def config_from_dict(kind: str, d: Dict[str, Any]):
  """The :class:`RefinerConfig` / :class:`DeGLIConfig` saved in a folder."""
  d = dict(d)
  stft = StftSettings(**d.pop('stft'))
  cls = RefinerConfig if kind == 'refiner' else DeGLIConfig
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(d) - known)
  if unknown:
    raise ParameterError(f'unknown {kind} settings {unknown}')
  return cls(stft=stft, **d)


# ------------------------------------------------------------- shipped folders
def default_dir(kind: str) -> str:
  """The shipped folder of ``kind``: ``assets/inversion/<kind>``."""
  if kind not in KINDS:
    raise ParameterError(f'unknown network kind {kind!r}; choose one of {list(KINDS)}')
  return assets.inversion_dir(kind)


def export_net(out_dir: str, kind: str, model: tf.Module, meta: Dict[str, Any], *,
               workdir: Optional[str] = None, flag: str = 'export_dir') -> str:
  """Writes ``model`` (its current weights) and ``meta`` to ``out_dir``.

  ``out_dir`` must be new, empty or an earlier export of the same ``kind``
  (only its own files are replaced), and not ``workdir``
  (:func:`training.prior_io.write_prior_folder`).

  Raises:
    ParameterError: for such a target, naming ``--<flag>``.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  meta = dict(meta, kind=kind, network=dataclasses.asdict(model.config))
  return prior_io.write_prior_folder(out_dir, model, meta, workdir=workdir, flag=flag)


_CACHE: Dict[Tuple[str, float], Tuple[tf.Module, Dict[str, Any]]] = {}


def fits(kind: str, transform, path: Optional[str] = None) -> bool:
  """Whether the network folder (default the shipped one) exists and was trained for ``transform``'s STFT.

  Reads only ``config.json``; a folder that exists but is not valid json is
  an error, not a misfit.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  cfg_path = os.path.join(default_dir(kind) if path is None else path, prior_io.PRIOR_CONFIG)
  if not os.path.exists(cfg_path):
    return False
  meta = prior_io.read_json(cfg_path, f'{kind} config')
  try:
    return StftSettings(**meta['network']['stft']) == StftSettings.of(transform)
  except (KeyError, TypeError) as e:
    raise ParameterError(f'{cfg_path} has no valid network.stft entry ({e})') from e


@tf.autograph.experimental.do_not_convert   # file reading, also called while tracing
def load_net(path: Optional[str], kind: str, *, transform=None):
  """Reads a network folder; ``path=None`` is the shipped one.

  Args:
    path: folder written by :func:`export_net` (or None).
    kind: ``'refiner'`` or ``'degli'``; the folder must hold that kind.
    transform: if given, its STFT must be the one the network was trained on.

  Returns:
    ``(model, meta)``; cached per folder (and its modification time).

  Raises:
    ParameterError: a missing or damaged folder, another kind, another STFT.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  path = default_dir(kind) if path is None else path
  cfg_path = os.path.join(path, prior_io.PRIOR_CONFIG)
  key = (os.path.abspath(path), os.path.getmtime(cfg_path) if os.path.exists(cfg_path) else 0)
  if key not in _CACHE:
    meta = prior_io.read_json(cfg_path, f'{kind} config')
    if meta.get('kind') != kind:
      raise ParameterError(f'{path} holds a {meta.get("kind")!r} network, not a {kind!r}')
    model = build(kind, config_from_dict(kind, meta['network']))
    prior_io.read_checkpoint(os.path.join(path, prior_io.PRIOR_WEIGHTS),
                             what=f'{kind} weights', model=model)
    _CACHE[key] = (model, meta)
  model, meta = _CACHE[key]
  if transform is not None:
    model.config.stft.check(transform, what=f'the {kind} in {path}')
  return model, meta
