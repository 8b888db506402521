"""Small helpers shared by the flow builders: argument checks, seeds, summaries."""

from typing import Callable

import numpy as np

from common.errors import ParameterError


def check_int(name: str, value, minimum: int = 1) -> int:
  """Returns ``value`` if it is an int >= ``minimum``; else raises ParameterError."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ParameterError(f'{name} must be an int >= {minimum}, got {value!r}')
  return int(value)


def max_levels(height: int, width: int) -> int:
  """How many 2x2 squeezes a ``height x width`` image allows."""
  n = 0
  while height % 2 == 0 and width % 2 == 0 and height > 1 and width > 1:
    height, width, n = height // 2, width // 2, n + 1
  return n


def check_image_shape(image_shape, levels: int) -> tuple:
  """``(height, width, channels)`` as ints.

  Raises:
    ParameterError: unless it is a 3-tuple of positive ints whose height and
      width ``2^levels`` divides (one 2x2 squeeze per level).
  """
  try:
    shape = tuple(int(v) for v in image_shape)
  except (TypeError, ValueError) as e:
    raise ParameterError(f'image_shape must be (height, width, channels), got '
                         f'{image_shape!r}') from e
  if len(shape) != 3 or min(shape) < 1:
    raise ParameterError(f'image_shape must be (height, width, channels), got {image_shape}')
  h, w, _ = shape
  if h % 2**levels or w % 2**levels:
    raise ParameterError(
        f'{levels} levels need height and width divisible by {2**levels}; image shape '
        f'{shape} allows at most {max_levels(h, w)} levels')
  return shape


class Seeds:
  """Distinct, reproducible integer seeds for the layers of one model."""

  def __init__(self, seed: int):
    self._next = int(seed) * 100003

  def __call__(self) -> int:
    self._next += 7
    return self._next


def num_parameters(module) -> int:
  """Number of trainable values of a ``tf.Module`` (e.g. a flow distribution)."""
  return int(sum(np.prod(v.shape) for v in module.trainable_variables))


def print_summary(module, *, print_fn: Callable[[str], None] = print, max_rows: int = None):
  """Prints the trainable variables of ``module``: name, shape, size; then the total.

  Args:
    module: a ``tf.Module`` (a flow distribution built by this package).
    print_fn: called once per line.
    max_rows: print at most this many variables (None: all).

  Returns:
    The number of trainable values.
  """
  variables = sorted(module.trainable_variables, key=lambda v: v.name)
  rows = [(v.name.split(':')[0], str(tuple(v.shape)), int(np.prod(v.shape)))
          for v in variables]
  width = max([len(r[0]) for r in rows] + [8])
  print_fn(f'{"variable":<{width}}  {"shape":>16}  {"values":>10}')
  shown = rows if max_rows is None else rows[:max_rows]
  for name, shape, size in shown:
    print_fn(f'{name:<{width}}  {shape:>16}  {size:>10,d}')
  if len(shown) < len(rows):
    print_fn(f'... {len(rows) - len(shown)} more variables')
  total = sum(r[2] for r in rows)
  print_fn(f'{len(rows)} trainable variables, {total:,d} values '
           f'({getattr(module, "name", type(module).__name__)})')
  return total
