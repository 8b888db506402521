"""Separation in the latent spaces of flow priors: annealed MAP with restarts.

A flow prior is a bijection x = G(z) with z ~ N(0, I), so the posterior of K
sources given a mixture m = g(x_1, ..., x_K) can be searched over the latents,
where every prior is the same isotropic Gaussian (as in Narayanaswamy et al.
2020, and the "neural transport" of Hoffman et al. 2019). For each level
gamma_1 > ... > gamma_L of the schedule, ``steps_per_sigma`` Adam steps lower

  U(z) = sum_k ||z_k||^2 / 2 + ||m - g(G_1(z_1), ..., G_K(z_K))||^2 / (2 gamma_i^2)

for ``restarts`` independent starts z ~ N(0, init_scale^2 I) per mixture. The
mixture term is annealed like BASIS's likelihood; the Adam state carries over
from level to level. Then an exact density picks the restart: per mixture the
one with the largest sum_k log p_k(x_k) under each family's member at noise
level ``choice_sigma`` (default 0.05: a density smoothed by a little noise), or
with ``choice_sigma=0`` under the clean flows, minus ||m - g(x)||^2 / (2 gamma_L^2).
That choice is what flows can do and a score network cannot: on 100 MNIST pairs
the restart the sigma 0.046 member chose scored 4.8 dB above the first restart,
the clean flow's choice 3.3 dB (docs/flows.md "Which restart to keep").

Why not Langevin over x (:class:`basis.separate.Separator`) for flows: the
flows rate the true pair far above the blend of a mean mixture, but chains in x
stay near blends (docs/flows.md); in the latents the landscape is the
well-conditioned Gaussian plus the mixture term, and restarts cover the
separation's symmetric modes.

A Glow's inverse can overflow for latents far out in the tails; a restart whose
objective turns NaN/inf is rolled back to its last finite latents and its
gradient dropped for that step (counted in ``LatentSeparator.rollbacks`` after
a call).
"""

import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from basis.mixing import get_mixing
from basis.sampler import CHOICE_SIGMA
from basis.separate import DivergenceError
from common.checks import check_positive_ints, check_seed
from common.errors import ParameterError

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-7


def flow_of(prior):
  """The clean flow a prior stands for.

  A family folder (:class:`basis.flow_prior.FlowFamilyPrior` loaded from disk): the
  clean flow it was fine-tuned from (``family.json``'s ``base_prior``). Its
  members model data plus noise, and the lowest one (sigma 0.01) maps small
  latents to near-blank digits: with it the sampler ended at no separation
  (docs/flows.md). A family built in memory: its lowest-noise member. A
  ``tfd.TransformedDistribution``: itself.

  Raises:
    ParameterError: a prior that is not a flow, a family folder whose clean
      flow is not where ``family.json`` says.
  """
  folder = getattr(prior, 'folder', None)
  base = (getattr(prior, 'metadata', None) or {}).get('base_prior')
  if folder and base:
    from flow_models.export import load_flow  # pylint: disable=g-import-not-at-top
    path = os.path.normpath(os.path.join(folder, base))
    if not os.path.isdir(path):
      raise ParameterError(
          f"the latent sampler searches the family's clean flow, which {folder}/family.json "
          f'names as {base!r} ({path}, not found); put it back, or use --sampler=paper')
    return load_flow(path)[0]
  dists = getattr(prior, 'distributions', None)
  if dists is not None:
    dist = dists[int(np.argmin(np.asarray(prior.sigmas, np.float64)))]
  else:
    dist = prior
  if not (hasattr(dist, 'bijector') and hasattr(dist, 'log_prob')):
    raise ParameterError(
        f'the latent sampler needs flow priors (a bijector and an exact log_prob); got '
        f'{type(prior).__name__}: use --prior_kind=flow with a flow family, or another '
        '--sampler for score networks')
  return dist


class LatentSeparator:
  """Annealed MAP separation over the latents of K flow priors, best of ``restarts``.

  Duck-types :class:`basis.separate.Separator` for the batch runner
  (``num_sources``, ``clip``, ``step_size``, ``settings()``, ``calls_per_source``,
  ``separator(mixture, seed=...)``).

  Args:
    priors: K >= 2 flow priors (:class:`basis.flow_prior.FlowFamilyPrior`, searched
      through its clean flow, see :func:`flow_of`; or flow distributions with
      ``bijector`` and ``log_prob``); the same object may serve several sources.
    sigmas: float ``[L]``, decreasing annealing levels gamma_i of the mixture term.
    steps_per_sigma: int > 0, Adam steps per level.
    step_size: float > 0, Adam's learning rate (latent units).
    restarts: int > 0, independent starts per mixture; the flows' density picks one.
    choice_sigma: float >= 0. 0: the clean flows choose the restart (their
      log-density plus the mixture term at gamma_L); a noise level: each family
      prior's member nearest to it chooses by its log-density alone (a density
      smoothed by that much noise; docs/flows.md "Which restart to keep"). Priors
      that are not families keep the clean rule.
    init_scale: float > 0, std of the starting latents.
    mixing: 'sum', 'mean' or a callable ``[K, batch, ...] -> [batch, ...]``.
    clip: optional ``(low, high)`` applied to the final estimates.

  Raises:
    ParameterError: K < 2, a prior that is not a flow, bad numbers.
  """

  def __init__(self, priors: Sequence, *, sigmas, steps_per_sigma: int = 50,
               step_size: float = 0.05, restarts: int = 8,
               choice_sigma: float = CHOICE_SIGMA, init_scale: float = 0.5,
               mixing='mean', clip=None):
    if len(priors) < 2:
      raise ParameterError(f'separation needs at least 2 priors, got {len(priors)}')
    found = {}   # one flow per prior object (sources often share one)
    for p in priors:
      if id(p) not in found:
        found[id(p)] = flow_of(p)
    self.flows = [found[id(p)] for p in priors]
    if not (np.isfinite(choice_sigma) and choice_sigma >= 0):
      raise ParameterError(f'choice_sigma must be finite and >= 0, got {choice_sigma!r}')
    self.choice_sigma = float(choice_sigma)
    # The densities that choose the restart (None: the clean flows with the mixture term).
    self._judges = None
    if self.choice_sigma > 0 and all(hasattr(p, 'nearest_level') for p in priors):
      self._judges = [p.distributions[p.nearest_level(self.choice_sigma)] for p in priors]
    shapes = {tuple(int(v) for v in f.event_shape) for f in self.flows}
    if len(shapes) != 1:
      raise ParameterError(f'the flows model different event shapes {sorted(shapes)}')
    self.event_shape = shapes.pop()
    sig = np.asarray(sigmas, np.float64).reshape(-1)
    if sig.size == 0 or not np.all(np.isfinite(sig)) or np.any(sig <= 0) or np.any(
        np.diff(sig) >= 0):
      raise ParameterError(f'sigmas must be finite, > 0 and decreasing, got {sig.tolist()}')
    self.steps_per_sigma, self.restarts = steps_per_sigma, restarts
    check_positive_ints(self, 'steps_per_sigma', 'restarts', prefix='', numpy_ints=True)
    for name, value in (('step_size', step_size), ('init_scale', init_scale)):
      if not np.isfinite(value) or value <= 0:
        raise ParameterError(f'{name} must be finite and > 0, got {value!r}')
    if clip is not None and not float(clip[0]) < float(clip[1]):
      raise ParameterError(f'clip must be (low, high) with low < high, got {clip!r}')
    self.num_sources = len(self.flows)
    self.sigmas = sig
    self.steps_per_sigma = int(steps_per_sigma)
    self.step_size = float(step_size)
    self.restarts = int(restarts)
    self.init_scale = float(init_scale)
    self.mixing = get_mixing(mixing) if isinstance(mixing, str) else mixing
    self.clip = clip
    self.rollbacks = 0
    self.active_levels = list(range(len(sig)))   # per-level progress in the batch runner
    self._dims = int(np.prod(self.event_shape))
    self._latent_shapes = [tuple(int(v) for v in f.distribution.event_shape) for f in self.flows]
    for shape in self._latent_shapes:
      if int(np.prod(shape)) != self._dims:
        raise ParameterError(f'a flow with latents of shape {shape} for events '
                             f'{self.event_shape} is not a bijection the sampler can search')
    self._level = tf.function(self._run_level, reduce_retracing=True)

  @property
  def calls_per_source(self) -> int:
    """Flow evaluations (each with its gradient) per source and mixture, all restarts."""
    return self.restarts * (len(self.sigmas) * self.steps_per_sigma + 1)

  @property
  def chooser(self) -> str:
    """What chooses the restart, in words (progress lines)."""
    if self._judges:
      return f"the density of the family member nearest sigma {self.choice_sigma:g}"
    return "the clean flow's density and the mixture term"

  def settings(self) -> dict:
    """The schedule and options, json-able (results.json, resume caches)."""
    return {'sampler': 'latent', 'sigmas': [float(v) for v in self.sigmas],
            'steps_per_sigma': self.steps_per_sigma, 'step_size': self.step_size,
            'restarts': self.restarts, 'init_scale': self.init_scale,
            'choice_sigma': self.choice_sigma if self._judges else 0.0,
            'clip': None if self.clip is None else [float(v) for v in self.clip],
            'num_sources': self.num_sources, 'calls_per_source': self.calls_per_source}

  def _decode(self, z):
    """``[K, B, D]`` latents -> ``[K, B, *event]`` sources."""
    return tf.stack([
        tf.reshape(tf.cast(f.bijector.forward(tf.reshape(z[k], (-1,) + latent)), tf.float32),
                   (-1,) + self.event_shape)
        for k, (f, latent) in enumerate(zip(self.flows, self._latent_shapes))])

  def _residual(self, xs, mixture):
    """Per example ``||m - g(x)||^2`` (``[B]``)."""
    r = mixture - self.mixing(xs)
    return tf.reduce_sum(tf.reshape(r * r, (tf.shape(r)[0], -1)), axis=1)

  def _run_level(self, state, mixture, gamma, step0):
    """``steps_per_sigma`` Adam steps at level ``gamma``; state ``(z, m1, m2, z_last)``.

    ``z_last`` holds the latents of each example's last finite step: an example
    whose objective or gradient turns NaN/inf goes back to them, without an update.
    """
    b1, b2 = ADAM_BETAS
    lr = tf.constant(self.step_size, tf.float32)

    def body(i, z, m1, m2, z_last, bad):
      with tf.GradientTape() as tape:
        tape.watch(z)
        per = (0.5 * tf.reduce_sum(z * z, axis=[0, 2])
               + self._residual(self._decode(z), mixture) / (2.0 * gamma * gamma))
        ok = tf.math.is_finite(per)
        total = tf.reduce_sum(tf.where(ok, per, tf.zeros_like(per)))
      g = tape.gradient(total, z)
      ok = ok & tf.reduce_all(tf.math.is_finite(g), axis=[0, 2])
      z = tf.where(ok[None, :, None], z, z_last)
      g = tf.where(ok[None, :, None], g, tf.zeros_like(g))
      t = tf.cast(step0 + i + 1, tf.float32)
      m1 = b1 * m1 + (1 - b1) * g
      m2 = b2 * m2 + (1 - b2) * g * g
      update = lr * (m1 / (1 - b1 ** t)) / (tf.sqrt(m2 / (1 - b2 ** t)) + ADAM_EPSILON)
      return i + 1, z - update, m1, m2, z, bad + tf.reduce_sum(tf.cast(~ok, tf.int32))

    z, m1, m2, z_last = state
    _, z, m1, m2, z_last, bad = tf.while_loop(
        lambda i, *_: i < self.steps_per_sigma, body,
        (tf.constant(0), z, m1, m2, z_last, tf.constant(0)))
    return (z, m1, m2, z_last), bad

  def _final(self, z, mixture):
    """Sources, and the posterior score of each (``[B]``, -inf where not finite)."""
    xs = self._decode(z)
    judges = self._judges or self.flows
    score = tf.add_n([tf.cast(f.log_prob(tf.reshape(xs[k], (-1,) + self.event_shape)),
                              tf.float32) for k, f in enumerate(judges)])
    if self._judges is None:
      gamma = float(self.sigmas[-1])
      score = score - self._residual(xs, mixture) / (2.0 * gamma * gamma)
    return xs, tf.where(tf.math.is_finite(score), score, tf.fill(tf.shape(score), -np.inf))

  def __call__(self, mixture, *, seed=0, init=None, progress=None):
    """Separates a batch of mixtures.

    Args:
      mixture: float ``[batch, *event_shape]``.
      seed: int; equal seeds give equal results.
      init: must be None (the latents start from N(0, init_scale^2)).
      progress: optional callable ``(level, sigma)`` after each level.

    Returns:
      float32 ``[K, batch, *event_shape]``.

    Raises:
      ParameterError: a mixture of the wrong shape or with NaN/inf; an ``init``.
      DivergenceError: a mixture whose every restart ended NaN/inf.
    """
    if init is not None:
      raise ParameterError('the latent sampler starts from random latents; init must be None')
    mixture = tf.convert_to_tensor(mixture, tf.float32)
    if tuple(mixture.shape[1:]) != self.event_shape:
      raise ParameterError(f'the flows model events {self.event_shape}; got mixtures of shape '
                           f'{tuple(mixture.shape)}')
    if not bool(tf.reduce_all(tf.math.is_finite(mixture))):
      raise ParameterError('mixture holds NaN or infinite values')
    n = int(mixture.shape[0])
    r = self.restarts
    # Restart-major batch: row j * n + i is restart j of mixture i.
    tiled = tf.tile(mixture, [r] + [1] * len(self.event_shape))
    z = self.init_scale * tf.random.stateless_normal(
        (self.num_sources, r * n, self._dims), tf.constant([check_seed(seed), 0x1A7E], tf.int32))
    state = (z, tf.zeros_like(z), tf.zeros_like(z), z)
    self.rollbacks = 0
    for level, gamma in enumerate(self.sigmas):
      state, bad = self._level(state, tiled, tf.constant(gamma, tf.float32),
                               tf.constant(level * self.steps_per_sigma))
      self.rollbacks += int(bad)
      if progress is not None:
        progress(level, float(gamma))
    z, _, _, zlast = state
    xs, score = self._final(z, tiled)
    # A final step that broke an example: its last finite latents instead.
    broken = ~tf.math.is_finite(score)
    if bool(tf.reduce_any(broken)):
      xs_last, score_last = self._final(zlast, tiled)
      xs = tf.where(tf.reshape(broken, (1, -1) + (1,) * len(self.event_shape)), xs_last, xs)
      score = tf.where(broken, score_last, score)
    score = tf.reshape(score, (r, n)).numpy()
    self.last_scores = score     # [restarts, batch]: what chose each mixture's restart
    if not np.all(np.isfinite(score).any(axis=0)):
      lost = np.flatnonzero(~np.isfinite(score).any(axis=0)).tolist()
      raise DivergenceError(f'every restart of mixture(s) {lost} ended NaN/inf; lower '
                            f'step_size (now {self.step_size:g}) or init_scale')
    pick = np.argmax(score, axis=0)
    xs = tf.reshape(xs, (self.num_sources, r, n) + self.event_shape).numpy()
    self.last_estimates = xs     # [K, restarts, batch, ...], unclipped (studies of the choice)
    out = xs[:, pick, np.arange(n)]
    if self.clip is not None:
      out = np.clip(out, self.clip[0], self.clip[1])
    return tf.constant(out, tf.float32)
