"""Scale-invariant SDR / SNR, their improvements, and the best permutation.

SI-SDR (Le Roux et al., 2019): with ``alpha = <s_hat, s> / ||s||^2``,

  SI-SDR = 10 log10(||alpha s||^2 / ||alpha s - s_hat||^2)

SI-SNR is the same after removing the mean of both signals (Conv-TasNet's
training objective). A multichannel image is scored as one signal (one
``alpha`` for all its channels) when ``axis`` covers the channel axis too.
"""

import itertools
from typing import Callable, Tuple

import numpy as np

from common.errors import ParameterError


def _pair(estimate, reference):
  est = np.asarray(estimate, np.float64)
  ref = np.asarray(reference, np.float64)
  if est.shape != ref.shape:
    raise ParameterError(
        f'estimate shape {est.shape} != reference shape {ref.shape}')
  if est.ndim == 0 or est.size == 0:
    raise ParameterError(f'need non-empty signals [..., n_samples], got shape {est.shape}')
  return est, ref


def si_sdr(estimate, reference, *, zero_mean: bool = False, axis=-1) -> np.ndarray:
  """Scale-invariant signal-to-distortion ratio, dB.

  Args:
    estimate: float ``[..., n_samples]`` (or any shape; ``axis`` says which
      axes form one signal).
    reference: float, same shape.
    zero_mean: subtract each signal's mean first (SI-SNR).
    axis: int or tuple of ints, the axes of one signal (e.g. ``(-2, -1)`` for
      ``[..., n_channels, n_samples]`` images scored jointly).

  Returns:
    float64 array of the remaining (batch) shape, dB; ``inf`` for an exact
    (scaled) copy, ``-inf`` for a silent (all-zero) estimate -- nothing of
    the reference recovered, the worst score, not a perfect one -- and NaN
    where the reference is silent.

  Raises:
    ParameterError: for mismatched shapes or empty input.
  """
  est, ref = _pair(estimate, reference)
  if zero_mean:
    est = est - est.mean(axis=axis, keepdims=True)
    ref = ref - ref.mean(axis=axis, keepdims=True)
  ref_energy = np.sum(ref * ref, axis=axis, keepdims=True)
  with np.errstate(divide='ignore', invalid='ignore'):
    alpha = np.sum(est * ref, axis=axis, keepdims=True) / ref_energy
    target = alpha * ref
    signal = np.sum(target * target, axis=axis)
    noise = np.sum((est - target) ** 2, axis=axis)
    out = 10.0 * np.log10(signal / noise)
  silent = np.squeeze(ref_energy == 0, axis=axis)
  silent_estimate = np.sum(est * est, axis=axis) == 0
  # (A silent estimate has alpha = 0 and no error beyond the target: 0 / 0,
  # which must not read as an exact copy.)
  out = np.where(noise == 0, np.inf, out)
  out = np.where(silent_estimate, -np.inf, out)
  return np.where(silent, np.nan, out)


def si_snr(estimate, reference, *, axis=-1) -> np.ndarray:
  """SI-SDR of the zero-mean signals (Conv-TasNet's SI-SNR), dB; see :func:`si_sdr`."""
  return si_sdr(estimate, reference, zero_mean=True, axis=axis)


def si_sdr_improvement(estimate, reference, mixture, *, zero_mean: bool = False,
                       axis=-1) -> np.ndarray:
  """SI-SDR(i): SI-SDR of the estimate minus SI-SDR of the mixture, dB.

  Args:
    estimate: float ``[..., n_samples]``.
    reference: float, same shape.
    mixture: float, broadcastable to the same shape (e.g. ``[n_samples]``
      against ``[n_sources, n_samples]``).
    zero_mean: SI-SNR(i) instead.
    axis: as in :func:`si_sdr`.

  Returns:
    float64, the batch shape, dB.
  """
  est, ref = _pair(estimate, reference)
  mix = np.broadcast_to(np.asarray(mixture, np.float64), ref.shape)
  return (si_sdr(est, ref, zero_mean=zero_mean, axis=axis) -
          si_sdr(mix, ref, zero_mean=zero_mean, axis=axis))


def best_permutation(estimates, references, *,
                     metric: Callable[..., np.ndarray] = si_sdr,
                     **metric_kwargs) -> Tuple[np.ndarray, np.ndarray]:
  """Assigns estimates to references by the best mean score.

  Separators with one prior per source know which estimate is which, but
  symmetric ones (two identical priors, permutation-invariant networks) do
  not; this finds, per example, the assignment with the highest mean score
  (the mean over sources of ``metric``; NaN pairs count as -inf, ``inf`` as a
  large number).

  Args:
    estimates: float ``[n_sources, ..., n_samples]``.
    references: float, same shape.
    metric: ``metric(estimate, reference, **metric_kwargs)`` -> dB, higher is
      better, reducing the signal axes (default :func:`si_sdr` over the last).
    **metric_kwargs: passed on (e.g. ``zero_mean=True``, ``axis=(-2, -1)``).

  Returns:
    ``(scores, permutation)``: float64 ``[n_sources, *batch]``, the score of
    each reference under the best assignment, and int ``[n_sources,
    *batch]``, the estimate index assigned to each reference.

  Raises:
    ParameterError: for mismatched shapes or fewer than 1 source.
  """
  est, ref = _pair(estimates, references)
  k = est.shape[0]
  if est.ndim < 2:
    raise ParameterError(f'need [n_sources, ..., n_samples], got shape {est.shape}')
  # pair[i, j]: estimate i against reference j.
  pair = np.stack([np.stack([metric(est[i], ref[j], **metric_kwargs) for j in range(k)])
                   for i in range(k)])
  batch_shape = pair.shape[2:]
  flat = pair.reshape(k, k, -1)
  finite = np.nan_to_num(flat, nan=-1e300, posinf=1e300, neginf=-1e300)
  if k <= 7:
    perms = np.array(list(itertools.permutations(range(k))))       # [n_perm, k]
    totals = finite[perms, np.arange(k)].sum(axis=1)                # [n_perm, batch]
    best = perms[np.argmax(totals, axis=0)].T                       # [k, batch]
  else:
    from scipy.optimize import linear_sum_assignment  # pylint: disable=g-import-not-at-top
    best = np.empty((k, flat.shape[-1]), np.int64)
    for b in range(flat.shape[-1]):
      rows, cols = linear_sum_assignment(-np.clip(finite[..., b], -1e12, 1e12))
      best[cols, b] = rows
  scores = flat[best, np.arange(k)[:, np.newaxis], np.arange(flat.shape[-1])]
  return scores.reshape((k,) + batch_shape), best.reshape((k,) + batch_shape)
