"""PSNR of separated images, with the best assignment of estimates to sources."""

import itertools

import numpy as np

from common.errors import ParameterError


def psnr(estimate, reference, *, data_range: float = 1.0, axis=None) -> np.ndarray:
  """Peak signal-to-noise ratio ``10 log10(range^2 / MSE)`` in dB.

  Args:
    estimate, reference: float arrays of the same shape.
    data_range: peak-to-peak range of the data (1 for images in [0, 1]).
    axis: axes of the mean squared error (None: all).

  Returns:
    float64 array (or scalar); ``inf`` where the MSE is 0.

  Raises:
    ParameterError: for mismatched shapes.
  """
  est = np.asarray(estimate, np.float64)
  ref = np.asarray(reference, np.float64)
  if est.shape != ref.shape:
    raise ParameterError(f'estimate shape {est.shape} != reference shape {ref.shape}')
  mse = np.mean((est - ref) ** 2, axis=axis)
  with np.errstate(divide='ignore'):
    return 10.0 * np.log10(data_range ** 2 / mse)


def best_permutation_psnr(estimates, references, *, data_range: float = 1.0):
  """Per-example PSNR under the best permutation of the sources.

  Separation by generative priors does not know which estimate is which
  source; for each example the permutation with the lowest mean MSE over
  sources is chosen (as in the BASIS evaluation).

  Args:
    estimates, references: float ``[n_sources, batch, ...]``.
    data_range: as in :func:`psnr`.

  Returns:
    ``(psnr_per_source, permutation)``: float64 ``[batch, n_sources]`` PSNR of
    each reference source (dB) and int ``[batch, n_sources]``, the estimate
    index assigned to each reference.
  """
  est = np.asarray(estimates, np.float64)
  ref = np.asarray(references, np.float64)
  if est.shape != ref.shape or est.ndim < 2:
    raise ParameterError(
        f'need estimates and references of equal shape [n_sources, batch, ...], got '
        f'{est.shape} and {ref.shape}')
  k, b = est.shape[:2]
  axes = tuple(range(1, est.ndim - 1))  # per-example axes of est[i]
  # mse[i, j, n]: estimate i against reference j, example n.
  mse = np.stack([np.mean((est[i] - ref[j]) ** 2, axis=axes) if axes else
                  (est[i] - ref[j]) ** 2 for i in range(k) for j in range(k)]).reshape(k, k, b)
  perms = list(itertools.permutations(range(k)))
  cost = np.stack([np.mean([mse[p[j], j] for j in range(k)], axis=0) for p in perms])
  best = np.argmin(cost, axis=0)
  perm = np.array([perms[i] for i in best])                     # [b, k]
  chosen = np.stack([mse[perm[:, j], j, np.arange(b)] for j in range(k)], axis=1)
  with np.errstate(divide='ignore'):
    return 10.0 * np.log10(data_range ** 2 / chosen), perm
