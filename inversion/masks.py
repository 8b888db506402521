"""Time-frequency masks and Wiener filtering, shared with the oracle separators.

Sources are stacked on a leading axis: magnitudes are float
``[n_sources, ..., n_frames, n_bins]`` (any number of batch axes between), the
mixture STFT is complex ``[..., n_frames, n_bins]`` (the ``tf.signal``
orientation of ``pipeline/config.py``). Every function accepts numpy arrays or
tensors: numpy in gives numpy out, a tensor in gives a tensor out, and all of
them can be called inside ``tf.function`` (value checks then do not run).

Definitions (ALGORITHMS.md, Evaluation and oracles; V_j source magnitudes, X
the mixture STFT):

* ratio mask (IRM, alpha = p): ``M_j = V_j^p / sum_k V_k^p``;
* binary mask (IBM): ``M_j = 1 where |V_j|^a / |X|^a >= theta``;
* Wiener filter: ``S_j = M_j X`` with the ratio mask of power 2.
"""

import tensorflow as tf

from inversion import checks
from common.errors import ParameterError

_LAYOUT = '[n_sources, ..., n_frames, n_bins]'


def _check_power(power, name='power'):
  if isinstance(power, bool) or not isinstance(power, (int, float)) or not power > 0:
    raise ParameterError(f'{name} must be a number > 0, got {power!r}')
  return float(power)


def _magnitudes(mags, name='mags') -> tf.Tensor:
  v = checks.real_tensor(mags, name=name)
  checks.check_min_rank(v, 1, name=name, layout=_LAYOUT)
  if v.shape.rank is not None and v.shape[0] == 0:
    raise ParameterError(f'{name} has no sources (shape {v.shape})')
  checks.check_non_negative(v, name=name)
  return v


def _ratio_mask(v: tf.Tensor, power: float) -> tf.Tensor:
  vp = tf.pow(v, power) if power != 1.0 else v
  total = tf.reduce_sum(vp, axis=0, keepdims=True)
  n_sources = tf.cast(tf.shape(v)[0], v.dtype)
  equal = tf.ones_like(vp) / n_sources
  safe_total = tf.where(total > 0, total, tf.ones_like(total))
  return tf.where(total > 0, vp / safe_total, equal)


def ratio_mask(mags, *, power: float = 2.0):
  """Soft (ratio) masks ``V_k^p / sum_j V_j^p``.

  Where every source is zero the mask splits equally (``1 / n_sources``), so
  the masks always sum to one over sources.

  Args:
    mags: float ``[n_sources, ..., n_frames, n_bins]``, non-negative source
      magnitudes (linear amplitude; pass ``power=1`` for power spectrograms
      to get the Wiener mask).
    power: float > 0, exponent p (2 = Wiener, 1 = magnitude ratio).

  Returns:
    Masks in [0, 1], same shape and float dtype as ``mags`` (float32 for
    integer input); numpy if ``mags`` was numpy.

  Raises:
    ParameterError: if ``power <= 0``, ``mags`` is complex, has no source
      axis or (when concrete) holds negative or non-finite values.
  """
  numpy_out = checks.is_numpy_input(mags)
  power = _check_power(power)
  v = _magnitudes(mags)
  return checks.to_output(_ratio_mask(v, power), numpy_out)


def binary_mask(mags, *, power: float = 1.0, theta: float = 0.5,
                mixture_mag=None):
  """Ideal binary masks: 1 where ``|V_j|^a / |X|^a >= theta``, else 0.

  Computed as ``V_j^a >= theta |X|^a`` (no division), so where ``|X| = 0``
  every source gets 1 (the mixture there is zero; nothing to split).

  Args:
    mags: float ``[n_sources, ..., n_frames, n_bins]``, non-negative.
    power: float > 0, exponent a.
    theta: float >= 0, threshold on the ratio.
    mixture_mag: float ``[..., n_frames, n_bins]``, the mixture magnitude
      ``|X|``; default the sum of ``mags`` over sources.

  Returns:
    Masks in {0, 1}, same shape and float dtype as ``mags``; numpy if the
    inputs were numpy.

  Raises:
    ParameterError: for a bad ``power`` or ``theta``, negative values, or a
      ``mixture_mag`` whose shape differs from ``mags.shape[1:]``.
  """
  numpy_out = checks.is_numpy_input(mags, mixture_mag)
  power = _check_power(power)
  if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not theta >= 0:
    raise ParameterError(f'theta must be a number >= 0, got {theta!r}')
  v = _magnitudes(mags)
  if mixture_mag is None:
    x = tf.reduce_sum(v, axis=0)
  else:
    x = checks.real_tensor(mixture_mag, name='mixture_mag')
    checks.check_non_negative(x, name='mixture_mag')
    checks.check_same_shape(x.shape, v.shape[1:], name_a='mixture_mag',
                            name_b='mags[0]')
    x = tf.cast(x, v.dtype)
  vp = tf.pow(v, power) if power != 1.0 else v
  xp = tf.pow(x, power) if power != 1.0 else x
  mask = tf.cast(vp >= float(theta) * xp[tf.newaxis], v.dtype)
  return checks.to_output(mask, numpy_out)


def _apply(m: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
  real_dtype = tf.float64 if x.dtype == tf.complex128 else tf.float32
  m = tf.cast(m, real_dtype)
  return tf.complex(m, tf.zeros_like(m)) * x[tf.newaxis]


def apply_masks(masks, mixture_stft):
  """Masks the mixture: ``S_j = M_j X``.

  Args:
    masks: float ``[n_sources, ..., n_frames, n_bins]``, real masks.
    mixture_stft: complex ``[..., n_frames, n_bins]``.

  Returns:
    complex64 (complex128 for complex128 input)
    ``[n_sources, ..., n_frames, n_bins]``; numpy if the inputs were numpy.

  Raises:
    ParameterError: if ``masks.shape[1:]`` differs from the mixture's shape
      or the masks are complex.
  """
  numpy_out = checks.is_numpy_input(masks, mixture_stft)
  m = checks.real_tensor(masks, name='masks')
  checks.check_min_rank(m, 1, name='masks', layout=_LAYOUT)
  x = checks.complex_tensor(mixture_stft, name='mixture_stft')
  checks.check_same_shape(m.shape[1:], x.shape, name_a='masks[0]',
                          name_b='mixture_stft')
  return checks.to_output(_apply(m, x), numpy_out)


def wiener_filter(mags, mixture_stft, *, power: float = 2.0):
  """Single-channel Wiener filter from (estimated) magnitudes.

  ``S_j = V_j^p / sum_k V_k^p * X``; the estimates sum to the mixture.

  Args:
    mags: float ``[n_sources, ..., n_frames, n_bins]``, non-negative source
      magnitudes (linear amplitude).
    mixture_stft: complex ``[..., n_frames, n_bins]``.
    power: float > 0; 2 is the Wiener filter, 1 the magnitude ratio mask.

  Returns:
    complex ``[n_sources, ..., n_frames, n_bins]``; numpy if the inputs were
    numpy.

  Raises:
    ParameterError: as :func:`ratio_mask` and :func:`apply_masks`.
  """
  numpy_out = checks.is_numpy_input(mags, mixture_stft)
  power = _check_power(power)
  v = _magnitudes(mags)
  x = checks.complex_tensor(mixture_stft, name='mixture_stft')
  checks.check_same_shape(v.shape[1:], x.shape, name_a='mags[0]',
                          name_b='mixture_stft')
  return checks.to_output(_apply(_ratio_mask(v, power), x), numpy_out)
