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

Options that spend fewer network calls (issue 15, docs/basis.md "Fewer network
calls"), each needing nothing of a prior but ``score(x, sigma)``:

- ``steps_per_sigma`` per level: a sequence spreads the steps unevenly (0 skips
  a level).
- ``start_sigma`` (warm start, as SDEdit): every source starts from the mixture
  split as the mixing implies (``basis.mixing.split_mixture``) plus
  N(0, start_sigma^2) noise at that level; the levels above it are skipped.
- ``denoise`` (Tweedie): a final x + sigma_L^2 s(x, sigma_L) after the last
  level (one more call).
- ``constraint='hard'`` for linear mixing (sum, mean): the last source is the
  mixture minus the others and only the others move, each by its own score
  minus the last source's (the "Dirac" likelihood of Multi-Source Diffusion
  Models); there is no likelihood weight, and the estimates satisfy the
  mixture exactly (up to the final ``clip``).
"""

from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from basis.mixing import (get_mixing, is_linear_mixing, project_onto_mixture, solve_last_source,
                          split_mixture)
from basis.priors import check_prior
from common.errors import ParameterError
from common.checks import check_seed


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


CONSTRAINTS = ('likelihood', 'hard')


def _level_steps(steps_per_sigma, n_levels: int) -> np.ndarray:
  """Steps of each level, ``[L]`` int64, from an int (every level) or a sequence."""
  if np.ndim(steps_per_sigma) == 0:
    if (isinstance(steps_per_sigma, bool) or int(steps_per_sigma) != steps_per_sigma
        or steps_per_sigma <= 0):
      raise ParameterError(f'steps_per_sigma must be a positive int, got {steps_per_sigma!r}')
    return np.full(n_levels, int(steps_per_sigma), np.int64)
  steps = list(steps_per_sigma)
  if len(steps) != n_levels:
    raise ParameterError(f'steps_per_sigma lists {len(steps)} levels, the schedule has '
                         f'{n_levels} sigmas')
  if any(isinstance(v, bool) or int(v) != v or v < 0 for v in steps):
    raise ParameterError(f'steps per level must be ints >= 0, got {steps}')
  return np.asarray(steps, np.int64)


def _level_of(sigmas: np.ndarray, sigma: float) -> int:
  """Index of ``sigma`` in the schedule (relative tolerance 1e-4), else ParameterError."""
  if not (isinstance(sigma, (int, float, np.floating, np.integer)) and np.isfinite(sigma)
          and sigma > 0):
    raise ParameterError(f'start_sigma must be a positive number, got {sigma!r}')
  close = np.flatnonzero(np.abs(sigmas - sigma) <= 1e-4 * sigma)
  if not len(close):
    raise ParameterError(
        f'start_sigma {sigma:g} is not a level of the schedule (the warm start begins at '
        f'one of its levels): choose one of {[float(f"{v:.4g}") for v in sigmas]}')
  return int(close[0])


class Separator:
  """A compiled BASIS separator for fixed priors, mixing and schedule.

  Reuse one instance for many batches of the same shape: the compiled step
  is traced once. :func:`separate` is the one-call interface.

  Args:
    priors: sequence of K >= 2 objects with ``score(x, sigma)``.
    sigmas: float ``[L]`` decreasing noise levels.
    steps_per_sigma: int > 0, Langevin steps per level (T); or a sequence of
      L ints >= 0, the steps of each level (0 skips it).
    step_size: float > 0, delta.
    mixing: 'sum', 'mean' or a callable ``[K, batch, ...] -> [batch, ...]``
      (default 'sum'); for dB mel patches ``DbPowerSum.from_features(features)``.
    likelihood_scale: multiplies the 1 / sigma_i^2 weight (1: the paper);
      unused with ``constraint='hard'``.
    clip: optional ``(low, high)`` applied to the final estimates.
    start_sigma: None (start from ``init`` at the first level), or one of
      ``sigmas``: warm start from the split mixture (or from estimates given
      as ``init``) plus noise of that std, skipping the levels above it.
    denoise: end with the Tweedie step x + sigma_L^2 s(x, sigma_L) (with the
      hard constraint, projected back onto the mixture).
    constraint: 'likelihood' (BASIS: a Gaussian likelihood of std sigma_i) or
      'hard' (the mixture holds exactly; mixing 'sum' or 'mean' only).

  Raises:
    ParameterError: K < 2, a prior without ``score``, NaN/inf or
      non-decreasing ``sigmas``, a NaN/inf or non-positive ``step_size``, a
      NaN/inf or negative ``likelihood_scale``, ``clip`` without low < high,
      steps that are not ints >= 0 (or all 0 after the start level), a
      ``start_sigma`` outside the schedule, a hard constraint on a mixing that
      is not linear.
  """

  def __init__(self, priors: Sequence, *, sigmas, steps_per_sigma=100,
               step_size: float = 3e-5, mixing='sum', likelihood_scale: float = 1.0,
               clip=None, start_sigma: Optional[float] = None, denoise: bool = False,
               constraint: str = 'likelihood'):
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
    level_steps = _level_steps(steps_per_sigma, len(sig))
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
    start_level = 0
    if start_sigma is not None:
      start_level = _level_of(sig, start_sigma)
      level_steps[:start_level] = 0
    if not level_steps.sum() > 0:
      raise ParameterError(f'no Langevin steps to run: steps per level {level_steps.tolist()}'
                           + (f' from start_sigma {start_sigma:g}' if start_sigma else ''))
    if constraint not in CONSTRAINTS:
      raise ParameterError(f'constraint must be one of {list(CONSTRAINTS)}, got {constraint!r}')
    mixing_fn = get_mixing(mixing)
    if constraint == 'hard' and not is_linear_mixing(mixing_fn):
      raise ParameterError(
          f"constraint='hard' needs a linear mixing ('sum' or 'mean'), got {mixing_fn!r}: "
          "the last source must be solvable from the mixture and the others (the dB "
          "power sum is not linear); use constraint='likelihood'")
    for p in priors:
      if hasattr(p, 'validate_sigmas'):
        p.validate_sigmas(sig)
    self.priors = priors
    self.num_sources = len(priors)
    self.sigmas = sig
    self.steps_per_sigma = (int(steps_per_sigma) if np.ndim(steps_per_sigma) == 0
                            else tuple(int(v) for v in level_steps))
    self.level_steps = level_steps
    self._offsets = np.concatenate([[0], np.cumsum(level_steps)]).astype(np.int64)
    self.active_levels = [int(i) for i in np.flatnonzero(level_steps > 0)]
    self.start_sigma = None if start_sigma is None else float(sig[start_level])
    self.denoise = bool(denoise)
    self.constraint = constraint
    self.step_size = float(step_size)
    self.mixing = mixing_fn
    self.likelihood_scale = float(likelihood_scale)
    self.clip = clip
    self._groups = _group_priors(priors)
    self._run = tf.function(self._run_levels, reduce_retracing=True)

  @property
  def calls_per_source(self) -> int:
    """Score-network evaluations per source of one separation."""
    return int(self.level_steps.sum()) + int(self.denoise)

  def settings(self) -> dict:
    """The schedule and options, json-able (for results.json and resume caches)."""
    return {
        'sigmas': [float(v) for v in self.sigmas],
        'steps_per_sigma': (self.steps_per_sigma if isinstance(self.steps_per_sigma, int)
                            else list(self.steps_per_sigma)),
        'step_size': self.step_size, 'likelihood_scale': self.likelihood_scale,
        'clip': None if self.clip is None else [float(v) for v in self.clip],
        'num_sources': self.num_sources, 'start_sigma': self.start_sigma,
        'denoise': self.denoise, 'constraint': self.constraint,
        'calls_per_source': self.calls_per_source}

  def _locate(self, global_step: int):
    """(level, step within the level) of a global step index."""
    level = int(np.searchsorted(self._offsets[1:], global_step, side='right'))
    return level, int(global_step - self._offsets[level])

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

  def _with_last_solved(self, free, mixture):
    """``[K, ...]``: the K - 1 free sources and the last one the hard constraint gives."""
    return tf.concat([free, solve_last_source(self.mixing, mixture, free)[None]], axis=0)

  def warm_start(self, mixture, seed, start=None):
    """``start`` (``[K, batch, ...]``; None: the split mixture) plus N(0, start_sigma^2)
    noise, ``[K, batch, ...]``."""
    if start is None:
      start = split_mixture(self.mixing, mixture, self.num_sources)[None]
    noise = tf.random.stateless_normal(
        (self.num_sources,) + tuple(mixture.shape), tf.constant([check_seed(seed), 0x3A37], tf.int32))
    return start + self.start_sigma * noise

  # ---------------------------------------------------------------- schedule
  def _run_levels(self, xs, mixture, seed, first_level, last_level):
    """Runs levels ``[first_level, last_level)``; returns (xs, bad_step)."""
    sigmas = tf.constant(self.sigmas, tf.float32)
    ends = tf.constant(self._offsets[1:], tf.int64)
    offsets = tf.constant(self._offsets, tf.int64)
    sigma_min = sigmas[-1]
    hard = self.constraint == 'hard'

    def body(g, xs, bad):
      level = tf.cast(tf.searchsorted(ends, g[None], side='right')[0], tf.int32)
      sigma = sigmas[level]
      eta = self.step_size * tf.square(sigma / sigma_min)
      global_step = tf.cast(g, tf.int32)
      z = tf.random.stateless_normal(
          tf.shape(xs), tf.random.experimental.stateless_fold_in(seed, global_step))
      scores = self.scores(xs, sigma)
      if hard:
        # Only the free sources move; d x_K / d x_k = -1 for sum and mean.
        drift = scores[:-1] - scores[-1:]
        xs = self._with_last_solved(xs[:-1] + eta * drift + tf.sqrt(2.0 * eta) * z[:-1],
                                    mixture)
      else:
        weight = self.likelihood_scale / tf.square(sigma)
        drift = scores + weight * self.likelihood_grad(xs, mixture)
        xs = xs + eta * drift + tf.sqrt(2.0 * eta) * z
      finite = tf.reduce_all(tf.math.is_finite(xs))
      bad = tf.where(tf.logical_and(bad < 0, tf.logical_not(finite)), global_step, bad)
      return g + 1, xs, bad

    end = offsets[last_level]
    _, xs, bad = tf.while_loop(
        lambda g, xs, bad: tf.logical_and(g < end, bad < 0), body,
        (offsets[first_level], xs, tf.constant(-1)))
    return xs, bad

  def _denoise(self, xs, mixture):
    """Tweedie: x + sigma_L^2 s(x, sigma_L) (projected onto the mixture when hard)."""
    sigma = tf.constant(self.sigmas[-1], tf.float32)
    xs = xs + tf.square(sigma) * self.scores(xs, sigma)
    if self.constraint == 'hard':
      xs = project_onto_mixture(self.mixing, mixture, xs)
    return xs

  @staticmethod
  def _checked_init(init, shape) -> tf.Tensor:
    xs = tf.convert_to_tensor(init, tf.float32)
    if tuple(xs.shape) != shape:
      raise ParameterError(f'init must have shape {shape} ([K, *mixture.shape]), '
                           f'got {tuple(xs.shape)}')
    if not bool(tf.reduce_all(tf.math.is_finite(xs))):
      raise ParameterError('init holds NaN or infinite values')
    return xs

  def __call__(self, mixture, *, seed=0, init=None, progress: Optional[Callable] = None,
               return_trajectory: bool = False):
    """Separates a batch of mixtures.

    Args:
      mixture: float ``[batch, ...]``.
      seed: int; equal seeds give equal results.
      init: float ``[K, batch, ...]`` starting point, 'uniform' (U[0, 1], the
        NCSN choice), 'normal' (N(0, I), the flow choice) or None ('uniform').
        With a warm start (``start_sigma``): None (begin from the split
        mixture) or an array, the estimates to begin from instead (for
        example another separator's), noise of ``start_sigma`` added.
      progress: optional callable ``(level, sigma)`` called after each level;
        when given (or with ``return_trajectory``) levels run one compiled
        call each, otherwise the whole schedule is one call.
      return_trajectory: also return the estimates after each level that
        runs, ``[L_run, K, batch, ...]`` (before the final denoising step).

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
    seed_t = tf.constant([check_seed(seed), 0x5EED], tf.int32)
    if self.start_sigma is not None:
      if isinstance(init, str):
        raise ParameterError(f'init={init!r} and a warm start (start_sigma '
                             f'{self.start_sigma:g}) exclude each other: the warm start '
                             'begins from the split mixture or from given estimates')
      xs = self.warm_start(mixture, seed, None if init is None else
                           self._checked_init(init, shape))
    elif init is None or isinstance(init, str):
      kind = init or 'uniform'
      init_seed = tf.constant([check_seed(seed), 0x1417], tf.int32)
      if kind == 'uniform':
        xs = tf.random.stateless_uniform(shape, init_seed)
      elif kind == 'normal':
        xs = tf.random.stateless_normal(shape, init_seed)
      else:
        raise ParameterError(f"init must be an array, 'uniform' or 'normal', got {init!r}")
    else:
      xs = self._checked_init(init, shape)
    if self.constraint == 'hard':
      xs = self._with_last_solved(xs[:-1], mixture)
    first_sigma = self.sigmas[self.active_levels[0]]
    if not getattr(self, '_checked', False):
      # One eager evaluation on a single example checks every prior's output
      # shape and finiteness with a clear error (inside tf.function it would
      # be wrapped, and a NaN would read as a divergence).
      first = self.scores(xs[:, :1], tf.constant(first_sigma, tf.float32))
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
              f'scores at sigma {first_sigma:.4g} for finite input: the prior is broken, '
              'not the step size')
      self._checked = True
    stepwise = progress is not None or return_trajectory
    if stepwise:
      spans = [(i, i + 1) for i in self.active_levels]
    else:
      spans = [(self.active_levels[0], len(self.sigmas))]
    trajectory = []
    for first, last in spans:
      xs, bad = self._run(xs, mixture, seed_t, tf.constant(first), tf.constant(last))
      bad = int(bad)
      if bad >= 0:
        level, step = self._locate(bad)
        raise DivergenceError(
            f'BASIS diverged (NaN/inf) at level {level} (sigma={self.sigmas[level]:.4g}), '
            f'step {step}; lower step_size (now {self.step_size:g}): '
            'basis.stability_table(prior, clean_data, sigmas, step_size) shows how close '
            'each level is to the limit (docs/basis.md)')
      if return_trajectory:
        trajectory.append(xs)
      if progress is not None:
        progress(last - 1, float(self.sigmas[last - 1]))
    if self.denoise:
      xs = self._denoise(xs, mixture)
      if not bool(tf.reduce_all(tf.math.is_finite(xs))):
        raise DivergenceError('the final denoising step gave NaN/inf values')
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
             likelihood_scale=1.0, clip=None, progress=None, start_sigma=None,
             denoise=False, constraint='likelihood'):
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
    return_trajectory: also return ``[L_run, K, batch, ...]``.
    likelihood_scale: multiplies the 1/sigma^2 likelihood weight.
    clip: optional ``(low, high)`` for the final estimates (images: (0, 1)).
    progress: optional ``(level, sigma)`` callback.
    start_sigma, denoise, constraint: see :class:`Separator`.

  Returns:
    float32 ``[K, batch, ...]`` (and the trajectory when asked).

  Raises:
    ParameterError: K < 2, a prior without ``score``, a score of the wrong
      shape, a bad schedule, or a sigma a prior cannot serve.
    DivergenceError: the chains diverged.
  """
  sep = Separator(priors, sigmas=sigmas, steps_per_sigma=steps_per_sigma,
                  step_size=step_size, mixing=mixing or 'sum',
                  likelihood_scale=likelihood_scale, clip=clip, start_sigma=start_sigma,
                  denoise=denoise, constraint=constraint)
  return sep(mixture, seed=0 if seed is None else seed, init=init, progress=progress,
             return_trajectory=return_trajectory)
