"""The STFT that phase retrieval runs on, its projections and quality measures.

Phase retrieval uses the STFT of :class:`pipeline.transforms.MelTransform`
(Hann window, librosa framing, exact inverse), so magnitudes made from
training features and the signals rebuilt from them share one set of STFT
parameters. :func:`stft_transform` builds a transform for STFT settings that
are not a feature setting (e.g. the study's n_fft 1024, hop 256).

Notation (ALGORITHMS.md, Phase retrieval): ``P_C(Y) = STFT(iSTFT(Y))`` the
consistency projection, ``P_mag(Y) = V Y / |Y|`` the magnitude projection,
``P_mix(Y)_j = Y_j + w_j (X - sum_k Y_k)`` the mixing projection.

Shapes: STFTs and magnitudes are ``[..., n_frames, n_bins]``; separation
estimates carry the sources on the leading axis,
``[n_sources, ..., n_frames, n_bins]``.
"""

import functools
from typing import Optional, Union

import numpy as np
import tensorflow as tf

from inversion import checks
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform

TransformLike = Union[MelTransform, FeatureConfig, None]


@functools.lru_cache(maxsize=16)
def _transform_for(config: FeatureConfig) -> MelTransform:
  return MelTransform(config)


def stft_transform(*, n_fft: int, hop_length: int, sample_rate: int = 16000,
                   center: bool = True) -> MelTransform:
  """A :class:`MelTransform` whose STFT has the given settings.

  Only its STFT / iSTFT are meant to be used; the mel part is a placeholder
  (40 bands over the full band).

  Args:
    n_fft: int > 0, FFT size = Hann window length, samples.
    hop_length: int in (0, n_fft], samples.
    sample_rate: int > 0, Hz.
    center: centred frames (librosa's default).

  Returns:
    A cached ``MelTransform``.

  Raises:
    ParameterError: for invalid settings (from ``FeatureConfig``).
  """
  patch_frames = 8
  patch_samples = ((patch_frames - 1) * hop_length if center else
                   (patch_frames - 1) * hop_length + n_fft)
  config = FeatureConfig(sample_rate=sample_rate, n_fft=n_fft,
                         hop_length=hop_length, n_mels=40, fmin=0.0,
                         fmax=sample_rate / 2, patch_frames=patch_frames,
                         patch_samples=patch_samples, center=center)
  return _transform_for(config)


def as_transform(transform: TransformLike) -> MelTransform:
  """``None`` -> the default feature transform; a FeatureConfig -> its transform."""
  if transform is None:
    return _transform_for(FeatureConfig())
  if isinstance(transform, FeatureConfig):
    return _transform_for(transform)
  if isinstance(transform, MelTransform):
    return transform
  raise ParameterError(
      f'transform must be a MelTransform or a FeatureConfig, got {type(transform)}')


def _settings(t: MelTransform) -> str:
  c = t.config
  return f'n_fft={c.n_fft}, hop_length={c.hop_length}, center={c.center}'


def expected_frames(transform: MelTransform, length: int) -> int:
  """Frames the STFT of ``length`` samples has."""
  c = transform.config
  return 1 + length // c.hop_length if c.center else 1 + (length - c.n_fft) // c.hop_length


def check_spectrogram(t: tf.Tensor, transform: MelTransform, *, name: str,
                      length: Optional[int] = None):
  """Static checks that ``t`` (``[..., n_frames, n_bins]``) fits the STFT.

  Raises:
    ParameterError: if the rank is below 2, the number of bins is not
      ``1 + n_fft // 2`` of the transform, or ``length`` gives another number
      of frames than ``t`` has.
  """
  checks.check_min_rank(t, 2, name=name, layout='[..., n_frames, n_bins]')
  c = transform.config
  n_bins = t.shape[-1] if t.shape.rank is not None else None
  if n_bins is not None and n_bins != c.n_bins:
    raise ParameterError(
        f'{name} has {n_bins} frequency bins (an STFT with n_fft='
        f'{2 * (n_bins - 1)}) but the STFT settings are {_settings(transform)} '
        f'({c.n_bins} bins); magnitudes and mixture must come from the same STFT')
  n_frames = t.shape[-2] if t.shape.rank is not None else None
  if length is not None and n_frames is not None:
    want = expected_frames(transform, int(length))
    if want != n_frames:
      raise ParameterError(
          f'{name} has {n_frames} frames but length={length} samples gives '
          f'{want} frames with {_settings(transform)}')


def check_same_stft(mags: tf.Tensor, mixture: tf.Tensor, transform: MelTransform,
                    *, sources_axis: bool):
  """Magnitudes ``[n_sources?, ..., n_frames, n_bins]`` vs mixture ``[..., n_frames, n_bins]``.

  Raises:
    ParameterError: naming both shapes when bins or frames (or batch axes)
      differ, i.e. the two were made with different STFT settings or signals.
  """
  check_spectrogram(mixture, transform, name='mixture_stft')
  m_shape = mags.shape[1:] if sources_axis else mags.shape
  if m_shape.rank is None or mixture.shape.rank is None:
    return
  what = 'magnitudes (without the source axis)' if sources_axis else 'magnitudes'
  if m_shape.rank != mixture.shape.rank:
    raise ParameterError(
        f'{what} have shape {m_shape} but mixture_stft has shape '
        f'{mixture.shape}; expected [n_sources, ..., n_frames, n_bins] and '
        '[..., n_frames, n_bins]')
  if not m_shape[-2:].is_compatible_with(mixture.shape[-2:]):
    raise ParameterError(
        f'{what} have {m_shape[-2]} frames x {m_shape[-1]} bins but '
        f'mixture_stft has {mixture.shape[-2]} x {mixture.shape[-1]}: they '
        f'were made with different STFT settings (here {_settings(transform)}) '
        'or from signals of different lengths')
  if not m_shape.is_compatible_with(mixture.shape):
    raise ParameterError(
        f'{what} have shape {m_shape} but mixture_stft has shape {mixture.shape}')


def default_length(transform: MelTransform, n_frames) -> int:
  """Samples of the signal that centred frames cover: ``(n_frames - 1) * hop``."""
  c = transform.config
  if c.center:
    return (n_frames - 1) * c.hop_length
  return (n_frames - 1) * c.hop_length + c.n_fft


# ---------------------------------------------------------------- projections
def consistency_projection(stft, *, transform: TransformLike = None, length=None):
  """``P_C(Y) = STFT(iSTFT(Y))``: the nearest consistent STFT.

  Args:
    stft: complex ``[..., n_frames, n_bins]``.
    transform: the STFT (``MelTransform`` or ``FeatureConfig``; default the
      reference features).
    length: int, samples of the intermediate signal; default
      ``(n_frames - 1) * hop_length``.

  Returns:
    complex64 ``[..., n_frames, n_bins]``.
  """
  t = as_transform(transform)
  y = checks.complex_tensor(stft, name='stft')
  if length is None:
    length = default_length(t, tf.shape(y)[-2])
  return t.stft(t.istft(y, length=length))


def magnitude_projection(stft, mags):
  """``P_mag(Y) = V Y / |Y|`` (phase 0 where ``Y = 0``).

  Args:
    stft: complex ``[..., n_frames, n_bins]``.
    mags: float, same shape, non-negative (linear amplitude).

  Returns:
    complex, same shape.
  """
  y = checks.complex_tensor(stft, name='stft')
  v = tf.cast(checks.real_tensor(mags, name='mags'), y.dtype.real_dtype)
  return _p_mag(y, v)


def _p_mag(y: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
  mag = tf.abs(y)
  tiny = np.finfo(np.float32).tiny
  ok = mag > tiny
  scale = tf.where(ok, v / tf.where(ok, mag, tf.ones_like(mag)), v)
  ones = tf.complex(tf.ones_like(mag), tf.zeros_like(mag))
  y = tf.where(ok, y, ones)
  return tf.complex(scale, tf.zeros_like(scale)) * y


def _p_mix(y: tf.Tensor, mixture: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
  residual = mixture - tf.reduce_sum(y, axis=0)
  return y + tf.complex(w, tf.zeros_like(w)) * residual[tf.newaxis]


def mixing_projection(stft, mixture_stft, *, weights=None):
  """``P_mix(Y)_j = Y_j + w_j (X - sum_k Y_k)``.

  Args:
    stft: complex ``[n_sources, ..., n_frames, n_bins]``.
    mixture_stft: complex ``[..., n_frames, n_bins]``.
    weights: float ``[n_sources, ..., n_frames, n_bins]`` summing to one over
      sources, or None for ``1 / n_sources``.

  Returns:
    complex ``[n_sources, ..., n_frames, n_bins]`` summing to the mixture.
  """
  y = checks.complex_tensor(stft, name='stft')
  x = tf.cast(checks.complex_tensor(mixture_stft, name='mixture_stft'), y.dtype)
  if weights is None:
    w = tf.ones(tf.shape(y), y.dtype.real_dtype) / tf.cast(tf.shape(y)[0], y.dtype.real_dtype)
  else:
    w = tf.cast(checks.real_tensor(weights, name='weights'), y.dtype.real_dtype)
  return _p_mix(y, x, w)


# ------------------------------------------------------------------- measures
def _bin_weights(n_fft: int, dtype) -> tf.Tensor:
  """Weights 1, 2, ..., 2, (1) that make one-sided norms full-spectrum norms."""
  w = np.full([1 + n_fft // 2], 2.0)
  w[0] = 1.0
  if n_fft % 2 == 0:
    w[-1] = 1.0  # the Nyquist bin appears once
  return tf.constant(w, dtype)


def sq_norm(z: tf.Tensor, *, n_fft: int) -> tf.Tensor:
  """Full-spectrum squared norm of a one-sided STFT, over frames and bins: ``[...]``."""
  p = tf.square(tf.math.real(z)) + tf.square(tf.math.imag(z))
  return tf.reduce_sum(p * _bin_weights(n_fft, p.dtype), axis=[-2, -1])


def inconsistency(stft, *, transform: TransformLike = None, length=None,
                  relative: bool = True):
  """``||Y - P_C(Y)||^2`` (over frames and bins), optionally ``/ ||Y||^2``.

  Norms are full-spectrum norms (the interior bins of the one-sided spectrum
  count twice), the norm in which ``P_C`` is an orthogonal projection.

  Args:
    stft: complex ``[..., n_frames, n_bins]``.
    transform: the STFT; default the reference features.
    length: int, samples; default ``(n_frames - 1) * hop_length``.
    relative: divide by ``||Y||^2``.

  Returns:
    float32 ``[...]``, dimensionless.
  """
  t = as_transform(transform)
  y = checks.complex_tensor(stft, name='stft')
  check_spectrogram(y, t, name='stft', length=length)
  n_fft = t.config.n_fft
  d = sq_norm(y - consistency_projection(y, transform=t, length=length), n_fft=n_fft)
  return d / tf.maximum(sq_norm(y, n_fft=n_fft), 1e-30) if relative else d


def spectral_convergence(mags, estimate, *, db: bool = True):
  """``|| V - |S_hat| ||_F / ||V||_F`` per item (over frames and bins).

  Args:
    mags: float ``[..., n_frames, n_bins]``, target magnitudes.
    estimate: complex STFT ``[..., n_frames, n_bins]`` (e.g. the STFT of the
      rebuilt waveform) or float magnitudes of the same shape.
    db: return ``20 log10`` of the ratio (lower is better).

  Returns:
    float ``[...]`` (numpy if the inputs were numpy).

  Raises:
    ParameterError: if the shapes differ.
  """
  numpy_out = checks.is_numpy_input(mags, estimate)
  v = checks.real_tensor(mags, name='mags')
  e = tf.convert_to_tensor(estimate)
  e = tf.abs(e) if e.dtype.is_complex else tf.cast(e, v.dtype)
  e = tf.cast(e, v.dtype)
  checks.check_same_shape(v.shape, e.shape, name_a='mags', name_b='estimate')
  num = tf.sqrt(tf.reduce_sum(tf.square(v - e), axis=[-2, -1]))
  den = tf.sqrt(tf.reduce_sum(tf.square(v), axis=[-2, -1]))
  sc = num / tf.maximum(den, 1e-30)
  if db:
    sc = 20.0 * tf.math.log(tf.maximum(sc, 1e-30)) / np.log(10.0)
  return checks.to_output(sc, numpy_out)
