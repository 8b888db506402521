"""Mixtures to separate, drawn from a set of test images."""

import numpy as np

from common.errors import ParameterError


def image_pairs(images: np.ndarray, *, n_mixtures: int, n_sources: int = 2,
                seed: int = 0) -> np.ndarray:
  """Draws ``n_mixtures`` tuples of distinct test images, using images evenly.

  Images are dealt from a random permutation of the set (a fresh permutation
  when one runs out), so ``n_mixtures * n_sources <= len(images)`` uses every
  image at most once -- e.g. 500 pairs from 1,000 test digits use each digit
  exactly once -- and larger requests use each image about equally often.
  A tuple that would repeat an image (at the seam of two permutations) is
  redrawn.

  Args:
    images: float ``[n, height, width, channels]``.
    n_mixtures: int > 0.
    n_sources: images per mixture.
    seed: numpy seed.

  Returns:
    float32 ``[n_sources, n_mixtures, height, width, channels]``.
  """
  n = len(images)
  if n < n_sources:
    raise ParameterError(f'need at least {n_sources} images, got {n}')
  if n_mixtures < 1:
    raise ParameterError(f'n_mixtures must be >= 1, got {n_mixtures}')
  rng = np.random.default_rng(seed)
  need = n_mixtures * n_sources
  order = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])[:need]
  idx = order.reshape(n_mixtures, n_sources)
  for row in range(n_mixtures):
    if len(set(idx[row])) < n_sources:
      idx[row] = rng.choice(n, n_sources, replace=False)
  return np.asarray(images, np.float32)[idx.T]
