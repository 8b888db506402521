"""Annealed Langevin dynamics, compiled as one ``tf.function`` over all levels."""

from typing import Callable, Optional

import tensorflow as tf

from common.errors import ParameterError
from common.checks import check_seed


def langevin_step_sizes(sigmas, step_lr):
  """``alpha_i = step_lr * sigma_i^2 / sigma_L^2``, float32 ``[num_levels]``."""
  sigmas = tf.convert_to_tensor(sigmas, tf.float32)
  return step_lr * tf.square(sigmas / sigmas[-1])


def annealed_langevin(score_fn: Callable, x_init, sigmas, *, n_steps_each: int = 100,
                      step_lr: float = 2e-5, seed=0, denoise: bool = True,
                      clip: Optional[tuple] = None, return_trajectory: bool = False):
  """Annealed Langevin sampling (Song & Ermon 2019, Algorithm 1).

  For each level i = 1..L and T = ``n_steps_each`` steps:
  ``x <- x + alpha_i s(x, i) + sqrt(2 alpha_i) z`` with
  ``alpha_i = step_lr * sigma_i^2 / sigma_L^2``; optionally a final denoising
  step ``x + sigma_L^2 s(x, L)`` (Tweedie's formula).

  The whole schedule runs in one ``tf.while_loop``; wrap the call in
  ``tf.function`` (or use :func:`make_sampler`) so that Python runs once.
  Updates and accumulations are float32 whatever the network's policy.

  Args:
    score_fn: callable ``(x, labels) -> score``; ``labels`` int32 ``[batch]``.
    x_init: float ``[batch, ...]`` starting point (e.g. U[0, 1]).
    sigmas: float ``[num_levels]``, decreasing.
    n_steps_each: int > 0, T.
    step_lr: float > 0, eps.
    seed: int or int32 ``[2]`` stateless seed; equal seeds give equal samples.
    denoise: apply the final denoising step.
    clip: optional ``(low, high)`` applied to the result.
    return_trajectory: also return the state after each level
      ``[num_levels, batch, ...]``.

  Returns:
    float32 ``[batch, ...]`` samples (and the trajectory if asked).

  Raises:
    ParameterError: for non-positive ``n_steps_each`` or ``step_lr``.
  """
  if int(n_steps_each) != n_steps_each or n_steps_each <= 0:
    raise ParameterError(f'n_steps_each must be a positive int, got {n_steps_each!r}')
  if not step_lr > 0:
    raise ParameterError(f'step_lr must be > 0, got {step_lr!r}')
  x = tf.convert_to_tensor(x_init, tf.float32)
  sigmas = tf.convert_to_tensor(sigmas, tf.float32)
  alphas = langevin_step_sizes(sigmas, step_lr)
  num_levels = tf.shape(sigmas)[0]
  seed = _as_seed(seed)
  batch = tf.shape(x)[0]
  total = num_levels * n_steps_each
  traj = tf.TensorArray(tf.float32, size=num_levels) if return_trajectory else None

  def body(t, x, traj):
    level = t // n_steps_each
    labels = tf.fill([batch], level)
    alpha = alphas[level]
    z = tf.random.stateless_normal(tf.shape(x), tf.random.experimental.stateless_fold_in(seed, t))
    x = x + alpha * score_fn(x, labels) + tf.sqrt(2.0 * alpha) * z
    if traj is not None:
      traj = tf.cond(tf.equal((t + 1) % n_steps_each, 0),
                     lambda: traj.write(level, x), lambda: traj)
    return t + 1, x, traj

  if traj is None:
    _, x = tf.while_loop(lambda t, x: t < total,
                         lambda t, x: body(t, x, None)[:2], (tf.constant(0), x))
  else:
    _, x, traj = tf.while_loop(lambda t, x, tr: t < total, body,
                               (tf.constant(0), x, traj))
  if denoise:
    last = tf.fill([batch], num_levels - 1)
    x = x + tf.square(sigmas[-1]) * score_fn(x, last)
  if clip is not None:
    x = tf.clip_by_value(x, clip[0], clip[1])
  if return_trajectory:
    return x, traj.stack()
  return x


def make_sampler(score_fn, sigmas, *, n_steps_each=100, step_lr=2e-5,
                 denoise=True, clip=(0.0, 1.0)):
  """Returns a compiled ``sample(x_init, seed) -> x`` over the full schedule."""
  sigmas = tf.constant(sigmas, tf.float32)

  @tf.function(reduce_retracing=True)
  def sample(x_init, seed):
    return annealed_langevin(score_fn, x_init, sigmas, n_steps_each=n_steps_each,
                             step_lr=step_lr, seed=seed, denoise=denoise, clip=clip)

  return sample


def _as_seed(seed):
  if isinstance(seed, int):
    return tf.constant([check_seed(seed), 0], tf.int32)
  seed = tf.convert_to_tensor(seed)
  if seed.shape.rank == 0:
    return tf.stack([tf.cast(seed, tf.int32), 0])
  return tf.cast(seed, tf.int32)
