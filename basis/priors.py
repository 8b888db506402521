"""The prior seam: anything with ``score(x, sigma)`` is a prior.

BASIS needs from a prior only the score of its noise-smoothed density,

  score(x, sigma) = grad_x log p_sigma(x),  p_sigma = p * N(0, sigma^2 I),

batched over the leading axis of ``x`` and of the same shape. ``sigma`` is a
float32 scalar tensor (the separator runs inside ``tf.function``). A prior may
also define ``validate_sigmas(sigmas)`` to reject a schedule it cannot serve
(a level-conditional NCSN knows only its trained levels); the separator calls
it once before running.

Adapters here: :class:`GaussianPrior` (closed form, for tests and as a
baseline) and :class:`NCSNPrior` (a trained score network). Flow priors (one
model per sigma, score by autodiff of ``log_prob``) live in
``basis/flow_prior.py``.
"""

from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from common.errors import ParameterError
from pipeline.config import FeatureConfig


def features_from_metadata(metadata: Dict[str, Any]):
  """The mel ``FeatureConfig`` a prior's description records, or None (images).

  Raises:
    ParameterError: recorded features whose ``image_shape`` disagrees with them.
  """
  dataset = (metadata or {}).get('dataset') or {}
  feats = dataset.get('features') if isinstance(dataset, dict) else None
  if not feats:
    return None
  feats = FeatureConfig.from_dict(feats)
  shape = metadata.get('image_shape')
  if shape is not None and tuple(shape) != feats.patch_shape:
    raise ParameterError(f'the prior records image_shape {tuple(shape)}, which does not match '
                         f'its features {feats.patch_shape}')
  return feats


class GaussianPrior:
  """x ~ N(mean, cov); the smoothed score is ``-(cov + sigma^2 I)^{-1} (x - mean)``.

  Args:
    mean: float ``[*event_shape]``.
    variance: float ``[*event_shape]`` (diagonal covariance), or None.
    covariance: float ``[D, D]`` full covariance over the flattened event
      (``D = prod(event_shape)``), or None. Give exactly one of the two.
  """

  def __init__(self, mean, *, variance=None, covariance=None):
    self.mean = tf.constant(mean, tf.float32)
    self.event_shape = tuple(self.mean.shape)
    self.metadata: Dict[str, Any] = {}
    self.features = None
    if (variance is None) == (covariance is None):
      raise ParameterError('give exactly one of variance (diagonal) or covariance (full)')
    if variance is not None:
      variance = np.broadcast_to(np.asarray(variance, np.float64), self.event_shape)
      if np.any(variance < 0):
        raise ParameterError(f'variance must be >= 0, got min {variance.min()}')
      self.variance = tf.constant(variance, tf.float32)
      self.covariance = None
    else:
      cov = np.asarray(covariance, np.float64)
      d = int(np.prod(self.event_shape))
      if cov.shape != (d, d):
        raise ParameterError(f'covariance must be [{d}, {d}], got {cov.shape}')
      if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() < -1e-9:
        raise ParameterError('covariance must be symmetric positive semi-definite')
      self.covariance = tf.constant(cov, tf.float64)
      self.variance = None

  def score(self, x, sigma):
    """``grad log N(x; mean, cov + sigma^2 I)``, float32 of the shape of ``x``."""
    x = tf.convert_to_tensor(x, tf.float32)
    sigma = tf.cast(sigma, tf.float32)
    if self.variance is not None:
      return -(x - self.mean) / (self.variance + tf.square(sigma))
    batch = tf.shape(x)[0]
    d = self.covariance.shape[0]
    diff = tf.reshape(tf.cast(x - self.mean, tf.float64), [batch, d])
    cov = self.covariance + tf.cast(tf.square(sigma), tf.float64) * tf.eye(d, dtype=tf.float64)
    sol = tf.linalg.cholesky_solve(tf.linalg.cholesky(cov), tf.transpose(diff))
    return tf.reshape(tf.cast(-tf.transpose(sol), tf.float32), tf.shape(x))


class NCSNPrior:
  """A trained NCSN score network as a prior.

  NCSN (v1) networks are conditioned on the index of a trained level, so
  the separator's schedule must use the trained sigmas
  (:meth:`validate_sigmas` checks it); NCSNv2 networks (``s(x) / sigma``)
  accept any sigma (the nearest trained level's network is used, rescaled to
  the requested sigma).

  Args:
    model: a :class:`ncsn.model.ScoreNetwork`, or a path to an exported prior
      folder (``train_ncsn.py --mode=export``).
    compute_dtype: when loading from a path: 'float32' or 'bfloat16'.
  """

  def __init__(self, model, *, compute_dtype: str = 'float32'):
    if isinstance(model, str):
      from ncsn.export import load_score_model  # pylint: disable=g-import-not-at-top
      model = load_score_model(model, compute_dtype=compute_dtype)
    self.model = model
    self._log_sigmas = tf.constant(np.log(model.trained_sigmas), tf.float32)
    self.conditional = model.config.conditional
    self.event_shape = tuple(int(v) for v in model.image_shape)
    self.metadata: Dict[str, Any] = dict(getattr(model, 'prior_metadata', None) or {})
    self.features = features_from_metadata(self.metadata)

  @property
  def sigmas(self) -> np.ndarray:
    """float64 ``[L]``, the trained levels, largest first."""
    return self.model.trained_sigmas

  def validate_sigmas(self, sigmas: Sequence[float]):
    """Raises ParameterError unless every sigma is a trained level (v1)."""
    if not self.conditional:
      return
    for s in np.asarray(sigmas, np.float64).reshape(-1):
      self.model.level_index(s)

  def score(self, x, sigma):
    sigma = tf.cast(sigma, tf.float32)
    idx = tf.argmin(tf.abs(self._log_sigmas - tf.math.log(sigma)), output_type=tf.int32)
    labels = tf.fill([tf.shape(x)[0]], idx)
    s = self.model(x, labels)
    if not self.conditional:
      # s(x) / sigma_idx from the network; rescale to the requested sigma.
      s = s * tf.exp(tf.gather(self._log_sigmas, idx)) / sigma
    return s


def check_prior(prior, index: Optional[int] = None):
  """Raises ParameterError if ``prior`` has no callable ``score``."""
  if not callable(getattr(prior, 'score', None)):
    where = '' if index is None else f' (source {index})'
    raise ParameterError(
        f'prior{where} of type {type(prior).__name__} has no method score(x, sigma)')
