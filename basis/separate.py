"""BASIS: Bayesian Annealed SIgnal Source separation (Jayaram & Thickstun 2020).

Annealed Langevin dynamics on all K sources at once, each pulled by its own
prior and all held together by the mixture constraint. At level i
(sigma_1 > ... > sigma_L), for ``steps_per_sigma`` steps and every source k:

  x_k <- x_k + eta_i [ s_k(x_k, sigma_i) + (1 / sigma_i^2) (dg/dx_k)^T (m - g(x)) ]
             + sqrt(2 eta_i) z_k,                 eta_i = delta (sigma_i / sigma_L)^2

The likelihood weight 1/gamma_i^2 uses gamma_i = sigma_i (the constraint is
annealed with the noise). All K sources and the whole batch advance in one
compiled step; sources that share a prior object are scored in one batched
call. Updates and accumulations are float32.
"""

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from basis.mixing import get_mixing
from basis.priors import check_prior
from pipeline.errors import ParameterError


class DivergenceError(FloatingPointError):
  """The Langevin chains produced NaN or infinite values."""


def _group_priors(priors):
  """[(prior, [source indices])] with one entry per distinct prior object."""
  groups = []
  for k, p in enumerate(priors):
    for q, idx in groups:
      if q is p:
        idx.append(k)
        break
    else:
      groups.append((p, [k]))
  return groups


class Separator:
  """A compiled BASIS separator for fixed priors, mixing and schedule.

  Reuse one instance for many batches of the same shape: the compiled step
  is traced once. :func:`separate` is the one-call interface.

  Args:
    priors: sequence of K >= 2 objects with ``score(x, sigma)``.
    sigmas: float ``[L]`` decreasing noise levels.
    steps_per_sigma: int > 0, Langevin steps per level (T).
    step_size: float > 0, delta.
    mixing: 'sum', 'mean' or a callable ``[K, batch, ...] -> [batch, ...]``
      (default 'sum'); for dB mel patches ``DbPowerSum.from_features(features)``.
    likelihood_scale: multiplies the 1 / sigma_i^2 weight (1: the paper).
    clip: optional ``(low, high)`` applied to the final estimates.

  Raises:
    ParameterError: K < 2, a prior without ``score``, NaN/inf or
      non-decreasing ``sigmas``, a NaN/inf or non-positive ``step_size``, a
      NaN/inf or negative ``likelihood_scale``, ``clip`` without low < high.
  """

  def __init__(self, priors: Sequence, *, sigmas, steps_per_sigma: int = 100,
               step_size: float = 3e-5, mixing='sum', likelihood_scale: float = 1.0,
               clip=None):
    priors = list(priors)
    if len(priors) < 2:
      raise ParameterError(f'BASIS separates K >= 2 sources; got {len(priors)} prior(s)')
    for k, p in enumerate(priors):
      check_prior(p, k)
    sig = np.asarray(sigmas, np.float64).reshape(-1)
    if len(sig) and not np.all(np.isfinite(sig)):
      raise ParameterError(f'sigmas must be finite, got {sig} (NaN or inf at level(s) '
                           f'{np.flatnonzero(~np.isfinite(sig)).tolist()})')
    if len(sig) < 1 or np.any(sig <= 0) or np.any(np.diff(sig) > 0):
      raise ParameterError(f'sigmas must be positive and non-increasing, got {sig}')
    if int(steps_per_sigma) != steps_per_sigma or steps_per_sigma <= 0:
      raise ParameterError(f'steps_per_sigma must be a positive int, got {steps_per_sigma!r}')
    if not np.isfinite(step_size):
      raise ParameterError(f'step_size must be a finite number > 0, got {step_size!r}')
    if not step_size > 0:
      raise ParameterError(f'step_size must be > 0, got {step_size!r}')
    if not np.isfinite(likelihood_scale) or likelihood_scale < 0:
      raise ParameterError(f'likelihood_scale must be a finite number >= 0, got '
                           f'{likelihood_scale!r}')
    if clip is not None:
      low, high = (float(v) for v in clip)
      if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ParameterError(f'clip must be (low, high) with finite low < high, got {clip!r}')
    for p in priors:
      if hasattr(p, 'validate_sigmas'):
        p.validate_sigmas(sig)
    self.priors = priors
    self.num_sources = len(priors)
    self.sigmas = sig
    self.steps_per_sigma = int(steps_per_sigma)
    self.step_size = float(step_size)
    self.mixing = get_mixing(mixing)
    self.likelihood_scale = float(likelihood_scale)
    self.clip = clip
    self._groups = _group_priors(priors)
    self._run = tf.function(self._run_levels, reduce_retracing=True)

  # ------------------------------------------------------------------ pieces
  def scores(self, xs, sigma):
    """Prior scores of all sources, ``[K, batch, ...]`` (one call per prior)."""
    out = [None] * self.num_sources
    batch = tf.shape(xs)[1]
    for prior, idx in self._groups:
      x = tf.concat([xs[k] for k in idx], axis=0) if len(idx) > 1 else xs[idx[0]]
      s = tf.convert_to_tensor(prior.score(x, sigma))
      if s.shape.rank is not None and x.shape.rank is not None and s.shape != x.shape:
        raise ParameterError(
            f'prior {type(prior).__name__} returned a score of shape {s.shape} for '
            f'input of shape {x.shape}; score(x, sigma) must keep the shape of x')
      s = tf.cast(s, tf.float32)
      parts = tf.split(s, len(idx), axis=0) if len(idx) > 1 else [s]
      for k, part in zip(idx, parts):
        out[k] = tf.reshape(part, tf.shape(xs[k]))
    del batch
    return tf.stack(out, axis=0)

  def likelihood_grad(self, xs, mixture):
    """``(dg/dx_k)^T (m - g(x))`` for every k, ``[K, batch, ...]``."""
    with tf.GradientTape() as tape:
      tape.watch(xs)
      residual = mixture - self.mixing(xs)
      half_sq = 0.5 * tf.reduce_sum(tf.square(residual))
    return -tape.gradient(half_sq, xs)

  # ---------------------------------------------------------------- schedule
  def _run_levels(self, xs, mixture, seed, first_level, last_level):
    """Runs levels ``[first_level, last_level)``; returns (xs, bad_step)."""
    sigmas = tf.constant(self.sigmas, tf.float32)
    steps = self.steps_per_sigma
    sigma_min = sigmas[-1]

    def body(t, xs, bad):
      level = first_level + t // steps
      sigma = sigmas[level]
      eta = self.step_size * tf.square(sigma / sigma_min)
      weight = self.likelihood_scale / tf.square(sigma)
      global_step = level * steps + t % steps
      z = tf.random.stateless_normal(
          tf.shape(xs), tf.random.experimental.stateless_fold_in(seed, global_step))
      drift = self.scores(xs, sigma) + weight * self.likelihood_grad(xs, mixture)
      xs = xs + eta * drift + tf.sqrt(2.0 * eta) * z
      finite = tf.reduce_all(tf.math.is_finite(xs))
      bad = tf.where(tf.logical_and(bad < 0, tf.logical_not(finite)), global_step, bad)
      return t + 1, xs, bad

    total = (last_level - first_level) * steps
    _, xs, bad = tf.while_loop(
        lambda t, xs, bad: tf.logical_and(t < total, bad < 0), body,
        (tf.constant(0), xs, tf.constant(-1)))
    return xs, bad

  def __call__(self, mixture, *, seed=0, init=None, progress: Optional[Callable] = None,
               return_trajectory: bool = False):
    """Separates a batch of mixtures.

    Args:
      mixture: float ``[batch, ...]``.
      seed: int; equal seeds give equal results.
      init: float ``[K, batch, ...]`` starting point, 'uniform' (U[0, 1], the
        NCSN choice), 'normal' (N(0, I), the flow choice) or None ('uniform').
      progress: optional callable ``(level, sigma)`` called after each level;
        when given (or with ``return_trajectory``) levels run one compiled
        call each, otherwise the whole schedule is one call.
      return_trajectory: also return the estimates after each level,
        ``[L, K, batch, ...]``.

    Returns:
      float32 ``[K, batch, ...]`` source estimates (and the trajectory).

    Raises:
      ParameterError: for a mixture of rank 0, a NaN/inf mixture or ``init``,
        an ``init`` of the wrong shape, a mixing function whose output is not
        the mixture's shape, or a prior whose first score is NaN/inf.
      DivergenceError: NaN/inf in the chains (names the level and step).
    """
    mixture = tf.convert_to_tensor(mixture, tf.float32)
    if mixture.shape.rank is None or mixture.shape.rank < 1:
      raise ParameterError(f'mixture must be [batch, ...], got shape {mixture.shape}')
    if not bool(tf.reduce_all(tf.math.is_finite(mixture))):
      raise ParameterError('mixture holds NaN or infinite values')
    shape = (self.num_sources,) + tuple(mixture.shape)
    seed_t = tf.constant([int(seed), 0x5EED], tf.int32)
    if init is None or isinstance(init, str):
      kind = init or 'uniform'
      init_seed = tf.constant([int(seed), 0x1417], tf.int32)
      if kind == 'uniform':
        xs = tf.random.stateless_uniform(shape, init_seed)
      elif kind == 'normal':
        xs = tf.random.stateless_normal(shape, init_seed)
      else:
        raise ParameterError(f"init must be an array, 'uniform' or 'normal', got {init!r}")
    else:
      xs = tf.convert_to_tensor(init, tf.float32)
      if tuple(xs.shape) != shape:
        raise ParameterError(f'init must have shape {shape} ([K, *mixture.shape]), '
                             f'got {tuple(xs.shape)}')
      if not bool(tf.reduce_all(tf.math.is_finite(xs))):
        raise ParameterError('init holds NaN or infinite values')
    if not getattr(self, '_checked', False):
      # One eager evaluation on a single example checks every prior's output
      # shape and finiteness with a clear error (inside tf.function it would
      # be wrapped, and a NaN would read as a divergence).
      first = self.scores(xs[:, :1], tf.constant(self.sigmas[0], tf.float32))
      mixed = self.mixing(xs[:, :1])
      if tuple(mixed.shape) != (1,) + tuple(mixture.shape[1:]):
        raise ParameterError(
            f'the mixing function maps sources [K, batch, ...] of shape '
            f'{tuple(xs[:, :1].shape)} to {tuple(mixed.shape)}, the mixture needs '
            f'{(1,) + tuple(mixture.shape[1:])}: it must reduce the source axis only')
      for prior, idx in self._groups:
        if not bool(tf.reduce_all(tf.math.is_finite(tf.gather(first, idx)))):
          raise ParameterError(
              f'prior {type(prior).__name__} (source(s) {idx}) returned NaN or infinite '
              f'scores at sigma {self.sigmas[0]:.4g} for finite input: the prior is broken, '
              'not the step size')
      self._checked = True
    levels = len(self.sigmas)
    stepwise = progress is not None or return_trajectory
    spans = [(i, i + 1) for i in range(levels)] if stepwise else [(0, levels)]
    trajectory = []
    for first, last in spans:
      xs, bad = self._run(xs, mixture, seed_t, tf.constant(first), tf.constant(last))
      bad = int(bad)
      if bad >= 0:
        level, step = divmod(bad, self.steps_per_sigma)
        raise DivergenceError(
            f'BASIS diverged (NaN/inf) at level {level} (sigma={self.sigmas[level]:.4g}), '
            f'step {step}; lower step_size (now {self.step_size:g}): '
            'basis.stability_table(prior, clean_data, sigmas, step_size) shows how close '
            'each level is to the limit (docs/basis.md)')
      if return_trajectory:
        trajectory.append(xs)
      if progress is not None:
        progress(last - 1, float(self.sigmas[last - 1]))
    if self.clip is not None:
      xs = tf.clip_by_value(xs, self.clip[0], self.clip[1])
    if return_trajectory:
      return xs, tf.stack(trajectory, axis=0)
    return xs


SATURATION_LIMIT = 0.5


def clipped_fraction(estimates, clip) -> float:
  """Share of the estimates that sit exactly at either clip bound.

  A run that blew up without reaching NaN ends with most values pinned to the
  bounds by the final clip (e.g. all 0 or 1 for images); a good run has a few
  percent there (the background of MNIST digits, the dB floor of silence).

  Args:
    estimates: float ``[K, batch, ...]`` after the final clip.
    clip: the ``(low, high)`` bounds, or None (nothing is clipped: 0).

  Returns:
    float in [0, 1].
  """
  if clip is None:
    return 0.0
  x = np.asarray(estimates)
  if x.size == 0:
    return 0.0
  low, high = (np.float32(v) for v in clip)
  return float(np.mean((x <= low) | (x >= high)))


def separate(mixture, priors, *, sigmas, steps_per_sigma=100, step_size=3e-5,
             mixing=None, seed=None, init=None, return_trajectory=False,
             likelihood_scale=1.0, clip=None, progress=None):
  """Separates ``mixture`` into K sources with BASIS (one call).

  Args:
    mixture: float ``[batch, ...]``.
    priors: K >= 2 objects with ``score(x, sigma) -> Tensor`` (the score of the
      noise-smoothed prior, same shape as ``x``); use one object for sources
      that share a prior (they are scored in one batched call).
    sigmas: float ``[L]`` decreasing levels (paper: 10 from 1 to 0.01).
    steps_per_sigma: T (paper: 100).
    step_size: delta (paper code 3e-5).
    mixing: 'sum' (default), 'mean' or a callable (for dB mel patches
      ``basis.DbPowerSum.from_features(features)``).
    seed: int or None (0).
    init: see :meth:`Separator.__call__`.
    return_trajectory: also return ``[L, K, batch, ...]``.
    likelihood_scale: multiplies the 1/sigma^2 likelihood weight.
    clip: optional ``(low, high)`` for the final estimates (images: (0, 1)).
    progress: optional ``(level, sigma)`` callback.

  Returns:
    float32 ``[K, batch, ...]`` (and the trajectory when asked).

  Raises:
    ParameterError: K < 2, a prior without ``score``, a score of the wrong
      shape, a bad schedule, or a sigma a prior cannot serve.
    DivergenceError: the chains diverged.
  """
  sep = Separator(priors, sigmas=sigmas, steps_per_sigma=steps_per_sigma,
                  step_size=step_size, mixing=mixing or 'sum',
                  likelihood_scale=likelihood_scale, clip=clip)
  return sep(mixture, seed=0 if seed is None else seed, init=init, progress=progress,
             return_trajectory=return_trajectory)
