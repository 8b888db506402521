"""Small argument checks shared by the seams where a value enters TensorFlow.

Seeds: every random draw of the toolkit is stateless and keyed by an int32
seed tensor (``tf.constant([seed, tag], tf.int32)``, ``tf.cast(seed,
tf.int32)``). TensorFlow wraps a larger Python int around silently, so seeds
0 and ``2**32`` gave the same run, and ``2**31`` the run of ``-2**31``.
:func:`check_seed` refuses every seed outside ``[0, 2**31 - 1]`` instead of
folding it: the range is what all consumers represent exactly (int32 stateless
seeds; numpy's ``default_rng`` refuses negative seeds), two billion seeds are
enough for anyone, and a refusal keeps every existing seed's run unchanged,
while a fold would need a second int32 word in seed tensors whose second word
is already a per-draw tag.
"""

from typing import Any, Optional, Tuple

import numpy as np

from common.errors import ParameterError

SEED_MAX = 2 ** 31 - 1


def check_seed(seed, *, name: str = 'seed', allow_none: bool = False) -> Optional[int]:
  """A seed as a Python int in ``[0, SEED_MAX]``, or a ParameterError naming it.

  Call it where a seed crosses into the library (``name='--seed'`` for an
  absl flag) and where it becomes an int32 tensor.

  Args:
    seed: int (Python or numpy).
    name: what to call it in the message (the flag or argument).
    allow_none: accept ``None`` (a fresh order every run) and return it.

  Returns:
    ``int(seed)``, or None when ``seed`` is None and ``allow_none``.

  Raises:
    ParameterError: for a bool, a non-integer, or a value outside
      ``[0, 2**31 - 1]`` (which int32 seed tensors would alias).
  """
  if seed is None and allow_none:
    return None
  if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
    raise ParameterError(f'{name} must be an int in [0, {SEED_MAX}], got {seed!r}')
  seed = int(seed)
  if seed < 0:
    raise ParameterError(
        f'{name}={seed} is negative: seeds must be in [0, {SEED_MAX}] (numpy refuses '
        'negative seeds)')
  if seed > SEED_MAX:
    alias = (seed + 2 ** 31) % 2 ** 32 - 2 ** 31   # what tf.constant(seed, tf.int32) gives
    raise ParameterError(
        f'{name}={seed} is outside [0, {SEED_MAX}]: random draws take int32 seeds, '
        f'where it becomes {alias} (seeds 0 and 2**32 gave the same run); pick a '
        'seed in range')
  return seed


def as_tuple(value) -> Optional[Tuple[Any, ...]]:
  """A multi-valued flag (list, tuple, one string or None) as a tuple or None."""
  if value is None:
    return None
  if isinstance(value, str):
    return (value,)
  return tuple(value)


def check_choice(value, name: str, choices):
  """Raises ParameterError unless ``value`` is one of ``choices`` (naming ``--name``)."""
  if value not in choices:
    raise ParameterError(f'--{name} must be one of {list(choices)}, got {value!r}')


def check_positive(flags, *names: str):
  """Raises ParameterError unless each named flag is a positive number.

  Args:
    flags: a FLAGS-like object.
    names: flag names (e.g. ``'batch_size'``); unset (None) flags are skipped.
  """
  for name in names:
    value = getattr(flags, name, None)
    if value is not None and not value > 0:
      raise ParameterError(f'--{name} must be > 0, got {value!r}')


def check_positive_ints(config, *names: str, prefix: str = '--', numpy_ints: bool = False):
  """Raises ParameterError unless each named field is an int > 0 (a bool is not an int).

  Args:
    config: an object with the fields (a run config: the flags of the same names).
    names: field names.
    prefix: what the message puts before a name: ``'--'`` names a run config's fields
      as flags (``--steps``), ``'unet '`` a model's, ``''`` the bare field.
    numpy_ints: numpy integers count as ints too (configs built from arrays).
  """
  kinds = (int, np.integer) if numpy_ints else int
  for name in names:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, kinds) or value <= 0:
      raise ParameterError(f'{prefix}{name} must be a positive int, got {value!r}')


def check_output_dir(path: str, flag: str = 'out_dir'):
  """Fails at start when the output folder cannot be a folder.

  Raises:
    ParameterError: ``path`` is an existing file (or lies under one).
  """
  import os  # pylint: disable=g-import-not-at-top
  probe = os.path.abspath(path)
  while probe and not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  if os.path.exists(probe) and not os.path.isdir(probe):
    where = 'is a file' if probe == os.path.abspath(path) else f'lies under the file {probe}'
    raise ParameterError(f'--{flag}={path} {where}, not a folder')
