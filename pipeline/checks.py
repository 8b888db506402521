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

from typing import Optional

import numpy as np

from pipeline.errors import ParameterError

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
