"""A family of noise-conditioned flows as a BASIS prior.

BASIS needs ``score(x, sigma) = grad_x log p_sigma(x)``. A flow gives it by
automatic differentiation of ``log_prob``: for the level ``sigma_i`` the
separator asks for, the flow fine-tuned on data + ``N(0, sigma_i^2)`` noise
(``train_glow.py --mode=finetune_noise``) is a model of ``p_sigma_i``. The
family serves only its own levels: :meth:`FlowFamilyPrior.validate_sigmas`
rejects a schedule with other sigmas.

Inside ``tf.function`` (the separator's compiled loop) ``sigma`` is a scalar
tensor; the member is chosen with ``tf.switch_case`` over the family's
levels (the nearest level in log-sigma), so one compiled step serves every
level.
"""

import functools
from typing import Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from common.errors import ParameterError


class FlowFamilyPrior:
  """One flow per noise level; the score is ``grad_x log_prob`` of the level's flow.

  Args:
    family: a family folder (``family.json``, see ``flow_models.family``), or
      a sequence of ``(sigma, distribution)`` pairs, where each distribution
      has ``log_prob(x)`` over events ``[height, width, channels]`` (any
      ``tfd.Distribution``, e.g. a flow from ``flow_models.train_lib.load_flow``).
    rtol: float > 0, relative tolerance when matching a requested sigma to a
      family level.
    allow_incomplete: with a folder, use the finished levels of an unfinished
      family.

  Raises:
    ParameterError: an empty family, non-positive or repeated sigmas,
      members with different event shapes, or a bad folder.
  """

  def __init__(self, family: Union[str, Sequence[Tuple[float, object]]], *,
               rtol: float = 1e-3, allow_incomplete: bool = False):
    self.folder = family if isinstance(family, str) else None
    if isinstance(family, str):
      from flow_models.family import load_family  # pylint: disable=g-import-not-at-top
      sigmas, distributions, self.metadata = load_family(
          family, allow_incomplete=allow_incomplete)
      pairs = list(zip(sigmas, distributions))
    else:
      pairs = list(family)
      self.metadata = {}
    if not pairs:
      raise ParameterError('a flow family needs at least one (sigma, distribution) pair')
    pairs.sort(key=lambda p: float(p[0]))
    sig = np.asarray([float(s) for s, _ in pairs], np.float64)
    if np.any(~np.isfinite(sig)) or np.any(sig <= 0):
      raise ParameterError(f'family sigmas must be finite and > 0, got {sig.tolist()}')
    if np.any(np.diff(np.log(sig)) < 2 * np.log1p(rtol)):
      raise ParameterError(f'family sigmas must be distinct (rtol {rtol}), got {sig.tolist()}')
    self.distributions = [d for _, d in pairs]
    shapes = {tuple(int(v) for v in d.event_shape) for d in self.distributions}
    if len(shapes) != 1:
      raise ParameterError(f'family members have different event shapes {sorted(shapes)}')
    self.event_shape = shapes.pop()
    from basis.priors import features_from_metadata  # pylint: disable=g-import-not-at-top
    self.features = features_from_metadata(self.metadata.get('description') or self.metadata)
    self.rtol = float(rtol)
    self._sigmas = sig
    self._log_sigmas = tf.constant(np.log(sig), tf.float32)

  @property
  def sigmas(self) -> np.ndarray:
    """float64 ``[L]``, the family's noise levels, ascending."""
    return self._sigmas.copy()

  def nearest_level(self, sigma: float) -> int:
    """Index of the family level nearest ``sigma`` in log-sigma (any sigma > 0)."""
    return int(np.argmin(np.abs(np.log(self._sigmas) - np.log(float(sigma)))))

  def level_index(self, sigma: float) -> int:
    """Index of the family level equal to ``sigma`` (within ``rtol``).

    Raises:
      ParameterError: if no level matches.
    """
    i = self.nearest_level(sigma)
    if not np.isclose(self._sigmas[i], float(sigma), rtol=self.rtol, atol=0.0):
      raise ParameterError(
          f'sigma={float(sigma):.6g} is not a level of this flow family '
          f'(levels: {np.array2string(self._sigmas, precision=4)}); separate with the '
          "family's sigmas")
    return i

  def validate_sigmas(self, sigmas):
    """Raises ParameterError unless every sigma is one of the family's levels."""
    for s in np.asarray(sigmas, np.float64).reshape(-1):
      self.level_index(s)

  def _grad_log_prob(self, index: int, x):
    dist = self.distributions[index]
    dtype = getattr(dist, 'dtype', None) or tf.float32
    with tf.GradientTape() as tape:
      # A fresh tensor (TFP's bijector cache keys on tensor identity): no
      # result computed outside this tape can be served from the cache.
      xd = tf.identity(tf.cast(x, dtype))
      tape.watch(xd)
      log_prob = dist.log_prob(xd)
    # Examples are independent, so the gradient of the sum is per example.
    return tf.cast(tape.gradient(log_prob, xd), tf.float32)

  def score(self, x, sigma):
    """``grad_x log p_sigma(x)`` from the flow of the nearest level.

    Args:
      x: float32 ``[batch, height, width, channels]``, data units.
      sigma: float32 scalar (tensor inside ``tf.function``); the member
        whose level is nearest in log-sigma is used (call
        :meth:`validate_sigmas` to insist on exact levels).

    Returns:
      float32 of the shape of ``x``.

    Raises:
      ParameterError: if ``x`` does not have the family's event shape.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank is not None and tuple(x.shape[1:]) != self.event_shape:
      raise ParameterError(f'flow family models events {self.event_shape}; got x of shape '
                           f'{tuple(x.shape)} (expected [batch, *{self.event_shape}])')
    if len(self.distributions) == 1:
      return self._grad_log_prob(0, x)
    index = tf.argmin(tf.abs(self._log_sigmas - tf.math.log(tf.cast(sigma, tf.float32))),
                      output_type=tf.int32)
    branches = [functools.partial(self._grad_log_prob, i, x)
                for i in range(len(self.distributions))]
    return tf.switch_case(index, branches)
