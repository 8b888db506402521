"""The one feature transform: waveform <-> STFT <-> mel <-> dB <-> [0, 1] patch.

A single :class:`MelTransform`, built from one :class:`FeatureConfig`, is used
both to make training data and to turn separated patches back into sound, so
the two directions cannot drift apart (the original project converted to dB
with different clipping at separation time than at training time).

All methods take and return ``tf.Tensor`` (numpy input is accepted), work on
any number of leading batch axes and can be called inside ``tf.function``.

Waveforms must be floating point in [-1, 1]: an integer buffer (a raw int16
wav) is refused rather than read as samples of size 32768, and a NaN or
infinite sample is refused with its index and the count, since the paths
disagree on it otherwise (the graph path returns NaN patches, XLA clamps NaN
to the dB floor). The values are checked whenever they are at hand: numpy input
and eager tensors, also numpy passed into a ``tf.function``. A symbolic tensor
inside a ``tf.function`` (the ``tf.data`` map of ``pipeline.audio_dataset``,
the compiled :meth:`MelTransform.make_window_fn` program) only has its dtype
checked; its values are not known while tracing, so check them before (the
function ``make_window_fn`` returns does).
Shapes use ``n_samples``, ``n_frames``, ``n_bins = 1 + n_fft // 2`` and
``n_mels``; patches follow the image convention ``[batch, n_mels, n_frames, 1]``
(see ``pipeline/config.py``).
"""

import math

import numpy as np
import tensorflow as tf

from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.filterbank import mel_filterbank


def nnls_step(filterbank: np.ndarray) -> float:
  """FISTA step ``1 / L``, ``L = ||M^T M||_2`` for ``M`` = the ``[n_bins, n_mels]`` bank's transpose."""
  fb = np.asarray(filterbank, np.float64)
  return float(1.0 / np.linalg.norm(fb.T @ fb, 2))


def nnls_mel_inverse(mel, filterbank, filterbank_pinv, step, *, n_iter: int) -> tf.Tensor:
  """``argmin_{S >= 0} ||S M - mel||^2`` by FISTA from the clipped pseudo-inverse.

  Args:
    mel: float ``[..., n_frames, n_mels]``.
    filterbank: ``[n_bins, n_mels]``, or one per item ``[batch, n_bins, n_mels]``
      (then ``mel`` is ``[batch, n_frames, n_mels]``).
    filterbank_pinv: its pseudo-inverse, ``[n_mels, n_bins]`` or
      ``[batch, n_mels, n_bins]``.
    step: float (or ``[batch, 1, 1]``), ``1 / L`` (:func:`nnls_step`).
    n_iter: int >= 0, projected-gradient steps.

  Returns:
    float32 ``[..., n_frames, n_bins]``, non-negative.
  """
  mel = tf.convert_to_tensor(mel, tf.float32)
  if len(filterbank.shape) == 3:   # one bank per item: batched matmuls
    apply = tf.matmul
    fb_t = tf.transpose(filterbank, [0, 2, 1])
  else:
    apply = lambda a, b: tf.tensordot(a, b, axes=[[-1], [0]])
    fb_t = tf.transpose(filterbank)
  s = tf.nn.relu(apply(mel, filterbank_pinv))
  z, t = s, 1.0
  for _ in range(n_iter):
    residual = apply(z, filterbank) - mel
    s_next = tf.nn.relu(z - step * apply(residual, fb_t))
    t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
    z = s_next + ((t - 1.0) / t_next) * (s_next - s)
    s, t = s_next, t_next
  return s


def _sample_scale_hint(dtype: np.dtype) -> str:
  """How to turn integer samples of ``dtype`` into floats in [-1, 1]."""
  info = np.iinfo(dtype)
  if info.min < 0:
    return f'y.astype(np.float32) / {-int(info.min)}'
  half = (int(info.max) + 1) // 2
  return f'(y.astype(np.float32) - {half}) / {half}'


def check_samples(waveform, *, name: str = 'waveform'):
  """Refuses integer waveforms, and non-finite ones whose values are at hand.

  Args:
    waveform: ``[..., n_samples]`` numpy array, list or tensor.
    name: what to call the buffer in messages.

  Returns:
    ``waveform`` unchanged (a list becomes a numpy array).

  Raises:
    ParameterError: for an integer or boolean dtype (the message says how to
      scale it, or to read wav files with ``pipeline.audio.load``), and, when
      the values are at hand (numpy, eager tensor), for NaN or infinite
      samples (the message gives their count and the first one's index).
  """
  is_tensor = isinstance(waveform, (tf.Tensor, tf.Variable))
  if not is_tensor and not isinstance(waveform, np.ndarray):
    waveform = np.asarray(waveform)
  if is_tensor:
    dtype = waveform.dtype
    integer, boolean, floating = dtype.is_integer, dtype.is_bool, dtype.is_floating
    dtype = np.dtype(dtype.as_numpy_dtype) if integer or boolean else dtype
  else:
    dtype = waveform.dtype
    integer, boolean = np.issubdtype(dtype, np.integer), np.issubdtype(dtype, np.bool_)
    floating = np.issubdtype(dtype, np.floating)
  if integer or boolean:
    hint = (f'scale it to [-1, 1] first (e.g. {_sample_scale_hint(dtype)})' if integer
            else 'pass float samples in [-1, 1]')
    raise ParameterError(
        f'{name} has dtype {dtype.name}: samples must be floating point in '
        f'[-1, 1]; {hint}, or read wav files with pipeline.audio.load')
  if not floating:
    return waveform   # complex or strings: tf.convert_to_tensor names them
  if is_tensor:
    if tf.is_symbolic_tensor(waveform) or not tf.executing_eagerly():
      return waveform   # values unknown while tracing (see the module docstring)
    if bool(tf.reduce_all(tf.math.is_finite(waveform))):
      return waveform
    values = waveform.numpy().astype(np.float32)
  else:
    values = waveform
  finite = np.isfinite(values)
  if finite.all():
    return waveform
  bad = ~finite
  n_nan = int(np.isnan(values).sum())
  first = tuple(int(i) for i in np.argwhere(bad)[0])
  kind = 'NaN' if np.isnan(values[first]) else 'infinite'
  where = 'the only sample' if not first else (
      f'sample {first[-1]}' + (f' of {name}[{", ".join(map(str, first[:-1]))}]'
                               if len(first) > 1 else ''))
  raise ParameterError(
      f'{name} holds {int(bad.sum())} non-finite sample(s) of {values.size} '
      f'({n_nan} NaN, {int(bad.sum()) - n_nan} infinite); first: {kind} at {where}')


class MelTransform:
  """STFT / mel / dB / unit-scaling transforms and all their inverses.

  Args:
    config: the feature parameters; defaults to the reference setting.

  Example:
    >>> t = MelTransform(FeatureConfig())
    >>> patches = t.waveform_to_patches(y)      # [n, 96, 64, 1] in [0, 1]
    >>> mel_power = t.patches_to_mel(patches)   # [n, 64, 96] power
  """

  def __init__(self, config: FeatureConfig = FeatureConfig()):
    if not isinstance(config, FeatureConfig):
      raise ParameterError(f'config must be a FeatureConfig, got {type(config)}')
    self.config = config
    c = config
    fb = mel_filterbank(sample_rate=c.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels,
                        fmin=c.fmin, fmax=c.fmax, dtype=np.float64)
    self._filterbank64 = fb
    self.filterbank = tf.constant(fb, tf.float32)           # [n_bins, n_mels]
    self.filterbank_pinv = tf.constant(np.linalg.pinv(fb), tf.float32)  # [n_mels, n_bins]
    # Step size 1 / L for projected gradient NNLS, L = ||M^T M||_2 (M = fb.T).
    self._nnls_step = nnls_step(fb)
    self.min_db, self.max_db = c.db_range
    window = tf.signal.hann_window(c.n_fft, periodic=True, dtype=tf.float32)
    self._window = window
    # Squared-window overlap-add envelope is computed per call length (cheap).

  # --------------------------------------------------------------------- STFT
  def stft(self, waveform) -> tf.Tensor:
    """Short-time Fourier transform (Hann, librosa framing).

    Args:
      waveform: float ``[..., n_samples]`` in [-1, 1].

    Returns:
      complex64 ``[..., n_frames, n_bins]`` with
      ``n_frames = 1 + n_samples // hop_length`` when centred (zero padding of
      ``n_fft // 2`` on both sides, as librosa's default ``pad_mode``).

    Raises:
      ParameterError: integer samples, or NaN / infinite ones when the values
        are at hand (:func:`check_samples`); a scalar or an empty waveform
        (centring would pad it into one frame of silence).
    """
    c = self.config
    x = check_samples(waveform)
    # A float64 tensor too (numpy 2 keeps float32 * float64-scalar products in float64).
    x = tf.cast(x, tf.float32) if tf.is_tensor(x) else tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank == 0 or (x.shape.rank is not None and x.shape[-1] == 0):
      raise ParameterError(f'waveform of shape {tuple(x.shape)} has no samples: need float '
                           '[..., n_samples] with n_samples > 0')
    if c.center:
      pad = c.n_fft // 2
      paddings = [[0, 0]] * (len(x.shape) - 1) + [[pad, pad]]
      x = tf.pad(x, paddings)
    return tf.signal.stft(x, frame_length=c.n_fft, frame_step=c.hop_length,
                          fft_length=c.n_fft,
                          window_fn=lambda n, dtype: self._window)

  def istft(self, stft, *, length=None) -> tf.Tensor:
    """Inverse of :meth:`stft`: weighted overlap-add, exact at the edges.

    The overlap-add is divided by the actual squared-window envelope (as
    librosa's ``istft``), not by its steady-state value, so the first and last
    frames reconstruct exactly too. Reconstruction is perfect whenever the
    frames cover the signal, i.e. for ``hop_length <= n_fft // 2`` when
    centred; with a larger hop the last ``hop_length - n_fft // 2`` samples
    are not seen by any frame and come back as zeros.

    Args:
      stft: complex ``[..., n_frames, n_bins]``.
      length: int, samples of the output; default
        ``(n_frames - 1) * hop_length`` (centred).

    Returns:
      float32 ``[..., length]``.
    """
    c = self.config
    stft = tf.convert_to_tensor(stft)
    if stft.dtype != tf.complex64:
      stft = tf.cast(stft, tf.complex64)
    frames = tf.signal.irfft(stft, fft_length=[c.n_fft]) * self._window
    y = tf.signal.overlap_and_add(frames, c.hop_length)
    n_frames = tf.shape(stft)[-2]
    win_sq = tf.tile(tf.square(self._window)[tf.newaxis], [n_frames, 1])
    envelope = tf.signal.overlap_and_add(win_sq, c.hop_length)
    tiny = np.finfo(np.float32).tiny
    y = y / tf.where(envelope > tiny, envelope, tf.ones_like(envelope))
    start = c.n_fft // 2 if c.center else 0
    if length is None:
      length = (n_frames - 1) * c.hop_length if c.center else tf.shape(y)[-1]
    y = y[..., start:]
    # Zero-pad if the requested length runs past the frames.
    short = tf.maximum(length - tf.shape(y)[-1], 0)
    paddings = tf.concat([tf.zeros([tf.rank(y) - 1, 2], tf.int32),
                          [[0, short]]], axis=0)
    y = tf.pad(y, paddings)
    return y[..., :length]

  def spectrogram(self, waveform) -> tf.Tensor:
    """``|STFT|^power``, float32 ``[..., n_frames, n_bins]``; raises as :meth:`stft`."""
    s = self.stft(waveform)
    # re^2 + im^2: tf.abs would take a square root that squaring undoes (as
    # costly as the FFT itself; docs/benchmarks.md).
    power = tf.square(tf.math.real(s)) + tf.square(tf.math.imag(s))
    return power if self.config.power == 2.0 else tf.sqrt(power)

  # ---------------------------------------------------------------------- mel
  def spectrogram_to_mel(self, spectrogram) -> tf.Tensor:
    """``[..., n_frames, n_bins]`` -> ``[..., n_frames, n_mels]`` (same power).

    Raises:
      ParameterError: a last axis other than ``n_bins`` (``1 + n_fft // 2``).
    """
    s = tf.convert_to_tensor(spectrogram, tf.float32)
    if s.shape.rank is not None and s.shape.rank >= 1 and s.shape[-1] not in (
        None, self.config.n_bins):
      raise ParameterError(
          f'spectrogram of shape {tuple(s.shape)} has {s.shape[-1]} frequency bins, this '
          f'transform {self.config.n_bins} (n_fft={self.config.n_fft})')
    if len(s.shape) == 2:
      return tf.matmul(s, self.filterbank)  # faster than tensordot
    if len(s.shape) > 2:
      # Flattened to one 2-D matmul: TF 2.16's oneDNN batched matmul, broadcasting
      # the 2-D filterbank against a rank-4 input such as [2, 1, 94, 257],
      # crashes the process (segmentation fault; fine with oneDNN off).
      shape = tf.shape(s)
      flat = tf.matmul(tf.reshape(s, [-1, shape[-1]]), self.filterbank)
      out = tf.reshape(flat, tf.concat([shape[:-1], [self.config.n_mels]], axis=0))
      return tf.ensure_shape(out, s.shape[:-1].concatenate([self.config.n_mels]))
    return tf.tensordot(s, self.filterbank, axes=[[-1], [0]])

  def mel_to_spectrogram(self, mel, *, n_iter: int = 50) -> tf.Tensor:
    """Non-negative least-squares inverse of the mel filterbank.

    Starts from the pseudo-inverse solution clipped at zero and refines it
    with ``n_iter`` accelerated projected-gradient (FISTA) steps on
    ``||S M - mel||^2`` subject to ``S >= 0`` (batched; librosa's ``mel_to_stft`` runs scipy L-BFGS-B per
    frame on the CPU instead). Bins outside ``[fmin, fmax]`` are not seen by
    the filterbank and come back as zero.

    Args:
      mel: float ``[..., n_frames, n_mels]``, non-negative (power or magnitude,
        as produced by :meth:`spectrogram_to_mel`).
      n_iter: int >= 0, refinement steps.

    Returns:
      float32 ``[..., n_frames, n_bins]``, non-negative.
    """
    if n_iter < 0:
      raise ParameterError(f'n_iter must be >= 0, got {n_iter!r}')
    return nnls_mel_inverse(mel, self.filterbank, self.filterbank_pinv, self._nnls_step,
                            n_iter=n_iter)

  # ---------------------------------------------------------------- dB, unit
  def power_to_db(self, mel) -> tf.Tensor:
    """Clips to ``[amin, amax]`` and returns ``10 log10`` (dB), float32."""
    c = self.config
    x = tf.clip_by_value(tf.convert_to_tensor(mel, tf.float32), c.amin, c.amax)
    return (10.0 / math.log(10.0)) * tf.math.log(x)

  def db_to_power(self, db) -> tf.Tensor:
    """Inverse of :meth:`power_to_db`: ``10^(dB / 10)``, float32."""
    db = tf.convert_to_tensor(db, tf.float32)
    return tf.exp(db * (math.log(10.0) / 10.0))

  def db_to_unit(self, db) -> tf.Tensor:
    """Maps ``[min_db, max_db]`` (default ``[-100, 20]``) linearly onto [0, 1]."""
    db = tf.convert_to_tensor(db, tf.float32)
    return (db - self.min_db) / (self.max_db - self.min_db)

  def unit_to_db(self, unit) -> tf.Tensor:
    """Inverse of :meth:`db_to_unit`."""
    unit = tf.convert_to_tensor(unit, tf.float32)
    return unit * (self.max_db - self.min_db) + self.min_db

  # ------------------------------------------------------------------ patches
  @staticmethod
  def mel_to_image(mel) -> tf.Tensor:
    """``[..., n_frames, n_mels]`` -> image ``[..., n_mels, n_frames, 1]``."""
    mel = tf.convert_to_tensor(mel)
    rank = len(mel.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return tf.transpose(mel, perm)[..., tf.newaxis]

  @staticmethod
  def image_to_mel(image) -> tf.Tensor:
    """Image ``[..., n_mels, n_frames, 1]`` -> ``[..., n_frames, n_mels]``."""
    image = tf.convert_to_tensor(image)
    if image.shape[-1] != 1:
      raise ParameterError(
          f'expected a single-channel image [..., n_mels, n_frames, 1], got '
          f'shape {image.shape}')
    x = image[..., 0]
    rank = len(x.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2]
    return tf.transpose(x, perm)

  def waveform_to_unit(self, waveform) -> tf.Tensor:
    """Waveform ``[..., n_samples]`` -> scaled image ``[..., n_mels, n_frames, 1]``.

    Raises:
      ParameterError: as :meth:`stft`.
    """
    mel = self.spectrogram_to_mel(self.spectrogram(waveform))
    return self.mel_to_image(self.db_to_unit(self.power_to_db(mel)))

  def unit_to_mel(self, unit) -> tf.Tensor:
    """Scaled image ``[..., n_mels, n_frames, 1]`` -> mel power ``[..., n_frames, n_mels]``.

    Raises:
      ParameterError: not a single-channel image, or one of another number of
        mel bands than ``config.n_mels`` (patches made with other features).
    """
    unit = tf.convert_to_tensor(unit, tf.float32)
    if unit.shape.rank is not None and unit.shape.rank >= 3 and unit.shape[-3] not in (
        None, self.config.n_mels):
      raise ParameterError(
          f'patches of shape {tuple(unit.shape)} have {unit.shape[-3]} mel bands, this '
          f'transform {self.config.n_mels} (FeatureConfig.n_mels): use the features the '
          'patches were made with (the metadata.json beside them)')
    return self.db_to_power(self.unit_to_db(self.image_to_mel(unit)))

  def frame_waveform(self, waveform, *, pad_end: bool = False) -> tf.Tensor:
    """Cuts a waveform into non-overlapping windows of ``patch_samples``.

    Args:
      waveform: float ``[n_samples]``.
      pad_end: zero-pad the last partial window instead of dropping it.

    Returns:
      float32 ``[n_patches, patch_samples]``.

    Raises:
      ParameterError: if the waveform is not 1-D or is shorter than one window
        (and ``pad_end`` is False); integer samples, or NaN / infinite ones
        when the values are at hand (:func:`check_samples`, which names the
        sample's index in ``waveform``).
    """
    y = tf.convert_to_tensor(check_samples(waveform), tf.float32)
    if len(y.shape) != 1:
      raise ParameterError(f'expected a mono waveform [n_samples], got shape {y.shape}')
    n = self.config.patch_samples
    if not pad_end and y.shape[0] is not None and y.shape[0] < n:
      raise ParameterError(
          f'waveform has {y.shape[0]} samples, fewer than one patch '
          f'({n} samples, {n / self.config.sample_rate:.3f} s)')
    return tf.signal.frame(y, n, n, pad_end=pad_end)

  def waveform_to_patches(self, waveform, *, pad_end: bool = False) -> tf.Tensor:
    """Mono waveform -> training patches in [0, 1].

    Args:
      waveform: float ``[n_samples]`` at ``config.sample_rate``.
      pad_end: keep a zero-padded last window.

    Returns:
      float32 ``[n_patches, n_mels, patch_frames, 1]`` in [0, 1].

    Raises:
      ParameterError: as :meth:`frame_waveform`.
    """
    return self.waveform_to_unit(self.frame_waveform(waveform, pad_end=pad_end))

  def make_window_fn(self, *, chunk: int = 32, jit_compile: bool = True):
    """A compiled ``windows -> patches`` function for bulk extraction.

    Windows are processed in chunks of a fixed size (the last one
    zero-padded), so the XLA program compiles once (~0.3 s) whatever the
    number of windows; XLA fuses the STFT, power, filterbank and dB steps
    (about 2x faster than graph mode on our CPUs, docs/benchmarks.md).

    Args:
      chunk: int > 0, windows per compiled call.
      jit_compile: compile with XLA.

    Returns:
      ``fn(windows)`` mapping float ``[n, patch_samples]`` (numpy or tensor)
      to a float32 numpy array ``[n, n_mels, patch_frames, 1]`` in [0, 1];
      ``fn`` raises ParameterError for integer windows and for NaN / infinite
      samples (:func:`check_samples`, naming the window and the sample), which
      the compiled program would clamp to the dB floor unnoticed.
    """
    if int(chunk) != chunk or chunk <= 0:
      raise ParameterError(f'chunk must be a positive int, got {chunk!r}')
    n_samples = self.config.patch_samples
    compiled = tf.function(
        self.waveform_to_unit, jit_compile=jit_compile,
        input_signature=[tf.TensorSpec([chunk, n_samples], tf.float32)])

    def fn(windows):
      w = np.asarray(check_samples(windows, name='windows'), np.float32)
      if w.ndim != 2 or w.shape[1] != n_samples:
        raise ParameterError(f'expected windows [n, {n_samples}], got shape {w.shape}')
      out = []
      for start in range(0, len(w), chunk):
        part = w[start:start + chunk]
        if len(part) < chunk:
          part = np.concatenate([part, np.zeros((chunk - len(part), n_samples), np.float32)])
        out.append(compiled(part).numpy()[:min(chunk, len(w) - start)])
      if not out:
        return np.zeros((0,) + self.config.patch_shape, np.float32)
      return np.concatenate(out)

    return fn

  def patches_to_mel(self, patches) -> tf.Tensor:
    """Inverse of the scaling part: patches in [0, 1] -> mel power ``[..., n_frames, n_mels]``.

    Raises:
      ParameterError: as :meth:`unit_to_mel`.
    """
    return self.unit_to_mel(patches)
