"""Shared argument checks of the inversion package.

Value checks (negative magnitudes, NaN) run only when a tensor holds concrete
values (eager execution, numpy input); inside ``tf.function`` only the static
shape checks run, so the functions stay traceable.
"""

import numpy as np
import tensorflow as tf

from common.errors import ParameterError


def is_numpy_input(*values) -> bool:
  """True when no argument is a ``tf.Tensor`` / ``tf.Variable`` (so return numpy)."""
  return not any(isinstance(v, (tf.Tensor, tf.Variable)) for v in values
                 if v is not None)


def real_tensor(x, *, name: str) -> tf.Tensor:
  """Converts to a float tensor (float32 unless already float64).

  Raises:
    ParameterError: for complex input or a non-numeric value.
  """
  if isinstance(x, (tf.Tensor, tf.Variable)):
    t = tf.convert_to_tensor(x)
  else:
    try:
      a = np.asarray(x)
    except Exception as e:  # ragged nested lists
      raise ParameterError(f'{name} is not an array: {e}') from e
    if a.dtype.kind not in 'biuf':
      raise ParameterError(f'{name} must be real numbers, got dtype {a.dtype}')
    t = tf.convert_to_tensor(a)
  if t.dtype.is_complex:
    raise ParameterError(
        f'{name} must be real (magnitudes), got dtype {t.dtype.name}; '
        'pass tf.abs(...) of a complex STFT')
  if t.dtype not in (tf.float32, tf.float64):
    t = tf.cast(t, tf.float32)
  return t


def complex_tensor(x, *, name: str) -> tf.Tensor:
  """Converts to complex64 (complex128 stays complex128)."""
  t = tf.convert_to_tensor(x)
  if t.dtype == tf.complex128:
    return t
  if t.dtype != tf.complex64:
    t = tf.cast(t, tf.complex64)
  return t


def check_non_negative(t: tf.Tensor, *, name: str):
  """Raises ParameterError if concrete values are negative or non-finite."""
  if not tf.executing_eagerly() or not hasattr(t, 'numpy'):
    return
  a = t.numpy()
  finite = np.isfinite(a)
  if not finite.all():
    raise ParameterError(
        f'{name} holds {int((~finite).sum())} non-finite values')
  if (a < 0).any():
    raise ParameterError(
        f'{name} must be non-negative, got minimum {float(a.min())!r} '
        f'({int((a < 0).sum())} negative values)')


def check_min_rank(t: tf.Tensor, rank: int, *, name: str, layout: str):
  """Raises ParameterError if the static rank is known and below ``rank``."""
  r = t.shape.rank
  if r is not None and r < rank:
    raise ParameterError(
        f'{name} must have shape {layout} (rank >= {rank}), got shape {t.shape}')


def check_same_shape(a, b, *, name_a: str, name_b: str):
  """Raises ParameterError if two static shapes are known and differ."""
  sa, sb = tf.TensorShape(a), tf.TensorShape(b)
  if sa.rank is None or sb.rank is None:
    return
  if sa.rank != sb.rank or not sa.is_compatible_with(sb):
    raise ParameterError(
        f'{name_a} has shape {sa} but {name_b} has shape {sb}; they must match')


def to_output(t: tf.Tensor, numpy_out: bool):
  """``t.numpy()`` when the caller passed numpy, else the tensor."""
  return t.numpy() if numpy_out and hasattr(t, 'numpy') else t
