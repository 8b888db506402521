"""Waveform separation losses in TensorFlow: SI-SNR, SNR, permutation-invariant training.

Shapes: estimates and references ``[batch, n_sources, n_samples]``; scores in
dB, higher is better; losses are the negated scores (lower is better).

* :func:`si_snr`: Conv-TasNet's scale-invariant SNR (zero-mean signals, the
  estimate projected on the reference);
* :func:`snr`: the plain SNR (``10 log10 |s|^2 / |s - s_hat|^2``, scale-aware);
* :func:`pit_scores`: the mean score of every assignment of estimates to
  references (``itertools.permutations`` order), the best one per example
  and its index; the loss of permutation-invariant training (Yu et al. 2017,
  Conv-TasNet) is its negated maximum.

``LOSSES`` names the training losses: ``'pit_si_snr'`` (voice + noise),
``'si_snr'`` and ``'snr'`` (fixed source order: piano + violin).
"""

import itertools
from typing import Callable, Dict, List, Tuple

import tensorflow as tf

from common.errors import ParameterError

EPS = 1e-8
LOSSES = ('pit_si_snr', 'si_snr', 'snr')


def si_snr(estimate, reference, *, eps: float = EPS):
  """Scale-invariant SNR of zero-mean signals, dB.

  Args:
    estimate: float32 ``[..., n_samples]``.
    reference: float32, same shape.
    eps: float > 0, added to the energies (a silent reference scores about
      ``10 log10 eps`` rather than NaN).

  Returns:
    float32 ``[...]``, dB.
  """
  est = estimate - tf.reduce_mean(estimate, axis=-1, keepdims=True)
  ref = reference - tf.reduce_mean(reference, axis=-1, keepdims=True)
  alpha = (tf.reduce_sum(est * ref, axis=-1, keepdims=True) /
           (tf.reduce_sum(ref * ref, axis=-1, keepdims=True) + eps))
  target = alpha * ref
  noise = est - target
  ratio = ((tf.reduce_sum(target * target, axis=-1) + eps) /
           (tf.reduce_sum(noise * noise, axis=-1) + eps))
  return 10.0 * tf.math.log(ratio) / tf.math.log(10.0)


def snr(estimate, reference, *, eps: float = EPS):
  """Plain SNR ``10 log10(|s|^2 / |s - s_hat|^2)``, dB; shapes as :func:`si_snr`."""
  err = reference - estimate
  ratio = ((tf.reduce_sum(reference * reference, axis=-1) + eps) /
           (tf.reduce_sum(err * err, axis=-1) + eps))
  return 10.0 * tf.math.log(ratio) / tf.math.log(10.0)


def permutations(n_sources: int) -> List[Tuple[int, ...]]:
  """Every assignment ``perm`` (``perm[j]``: the estimate given to reference ``j``)."""
  return list(itertools.permutations(range(n_sources)))


def pit_scores(estimates, references, *, metric: Callable = si_snr):
  """Scores of the best assignment of estimates to references, per example.

  Args:
    estimates: float32 ``[batch, n_sources, n_samples]``.
    references: float32, same shape.
    metric: ``(estimate, reference) -> dB`` over the last axis.

  Returns:
    ``(best, index, all)``: float32 ``[batch]``, the mean score over sources
    of the best assignment; int32 ``[batch]``, its index in
    :func:`permutations`; float32 ``[batch, n_perms]``, every assignment's mean.
  """
  k = estimates.shape[1]
  if k is None:
    raise ParameterError('pit_scores needs a static number of sources (axis 1)')
  # pair[b, i, j]: estimate i against reference j.
  pair = metric(estimates[:, :, None, :], references[:, None, :, :])
  perms = permutations(k)
  means = tf.stack([tf.add_n([pair[:, p[j], j] for j in range(k)]) / k for p in perms], axis=1)
  return (tf.reduce_max(means, axis=1), tf.argmax(means, axis=1, output_type=tf.int32), means)


def apply_permutation(estimates, index):
  """Reorders ``estimates [batch, n_sources, n_samples]`` by :func:`permutations` ``index [batch]``."""
  k = estimates.shape[1]
  table = tf.constant(permutations(k), tf.int32)          # [n_perms, k]
  order = tf.gather(table, index)                          # [batch, k]
  return tf.gather(estimates, order, batch_dims=1)


def separation_loss(name: str, estimates, references) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """``(loss, metrics)`` of a batch under the training loss ``name``.

  Args:
    name: one of ``LOSSES``.
    estimates: float32 ``[batch, n_sources, n_samples]``.
    references: float32, same shape.

  Returns:
    ``loss``: float32 scalar, the negated mean score; ``metrics``:
    ``si_snr`` (fixed order or, under PIT, of the best assignment) and
    ``snr``, dB.

  Raises:
    ParameterError: an unknown loss name.
  """
  if name not in LOSSES:
    raise ParameterError(f'loss must be one of {list(LOSSES)}, got {name!r}')
  if name == 'pit_si_snr':
    best, index, _ = pit_scores(estimates, references)
    ordered = apply_permutation(estimates, index)
    score = tf.reduce_mean(best)
    return -score, {'si_snr': score, 'snr': tf.reduce_mean(snr(ordered, references))}
  s_si = tf.reduce_mean(si_snr(estimates, references))
  s_snr = tf.reduce_mean(snr(estimates, references))
  return -(s_si if name == 'si_snr' else s_snr), {'si_snr': s_si, 'snr': s_snr}
