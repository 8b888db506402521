"""How rough is a prior's score? A check to run before a long separation.

Langevin steps ``x <- x + eta s(x) + sqrt(2 eta) z`` are stable only while
``eta`` times the local Lipschitz constant ``L`` of the score stays below about
2 (as for gradient descent). Near the data, the score of a noise-smoothed
density has ``L ~ 1 / sigma^2`` across the data manifold (exactly ``1 / (v +
sigma^2)`` for a Gaussian of variance ``v``), which is what BASIS's step rule
``eta_i = delta (sigma_i / sigma_L)^2`` is scaled for: ``eta_i / sigma_i^2 =
delta / sigma_L^2`` (0.3 with the paper's settings) at every level. A learned
score can be rougher than that; :func:`score_roughness` measures by how much
(``L sigma^2``, 1 for the ideal) and :func:`stability_table` turns it into the
``eta_i L_i`` of a schedule, so a step size can be chosen before an hour-long
run diverges. :func:`denoising_error` measures how *right* the score is, by
Tweedie's formula: the quality of a prior as BASIS sees it.
"""

from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from common.errors import ParameterError


def _levels(sigmas) -> np.ndarray:
  sigmas = np.asarray(sigmas, np.float64).reshape(-1)
  if sigmas.size == 0 or np.any(~(sigmas > 0)):
    raise ParameterError(f'sigmas must be a non-empty list of values > 0, got {sigmas}')
  return sigmas


def score_roughness(prior, x, sigma: float, *, rel_eps: float = 0.01, seed: int = 0):
  """Finite-difference Lipschitz estimate of ``prior.score(., sigma)`` around ``x``.

  For each example, ``L = |s(x + h) - s(x)| / |h|`` with a random
  perturbation ``h = rel_eps * sigma * z``, ``z ~ N(0, I)``.

  Args:
    prior: any object with ``score(x, sigma)``.
    x: float ``[batch, ...]`` points to probe (e.g. data plus ``sigma`` noise).
    sigma: the noise level.
    rel_eps: perturbation size relative to ``sigma`` (> 0).
    seed: seed of the perturbation.

  Returns:
    float64 ``[batch]``: ``L * sigma^2`` per example (1 for the ideal
    smoothed score across the data manifold; exactly ``sigma^2 / (v +
    sigma^2)`` for a Gaussian prior of variance ``v``).

  Raises:
    ParameterError: for non-positive ``sigma`` or ``rel_eps``, an empty
      batch, or a score that is not finite at ``x``.
  """
  if not sigma > 0 or not rel_eps > 0:
    raise ParameterError(f'sigma and rel_eps must be > 0, got {sigma}, {rel_eps}')
  x = tf.convert_to_tensor(x, tf.float32)
  if x.shape.rank is None or x.shape.rank < 1 or x.shape[0] == 0:
    raise ParameterError(f'x must be a non-empty batch [batch, ...], got shape {x.shape}')
  z = tf.random.stateless_normal(tf.shape(x), [int(seed), 0x2F0])
  h = float(rel_eps) * float(sigma) * z
  sig = tf.constant(sigma, tf.float32)
  s0 = np.asarray(prior.score(x, sig), np.float64)
  s1 = np.asarray(prior.score(x + h, sig), np.float64)
  if not (np.all(np.isfinite(s0)) and np.all(np.isfinite(s1))):
    raise ParameterError(f'the score is not finite at the probe points (sigma={sigma:g})')
  axes = tuple(range(1, s0.ndim))
  diff = np.sqrt(np.sum(np.square(s1 - s0), axis=axes))
  norm_h = np.sqrt(np.sum(np.square(h.numpy().astype(np.float64)), axis=axes))
  return diff / norm_h * float(sigma) ** 2


def stability_table(prior, data, sigmas: Sequence[float], step_size: float, *,
                    rel_eps: float = 0.01, seed: int = 0) -> List[Dict]:
  """``eta_i L_i`` of a BASIS / annealed-Langevin schedule, level by level.

  Each level probes ``data + sigma_i * noise`` (the points the chains should
  visit at that level).

  Args:
    prior: any object with ``score(x, sigma)``.
    data: float ``[batch, ...]`` clean examples of the prior's source.
    sigmas: the schedule (any order; ``sigma_L`` is its smallest level).
    step_size: ``delta`` of ``eta_i = delta (sigma_i / sigma_L)^2``.
    rel_eps, seed: see :func:`score_roughness`.

  Returns:
    One dict per level: ``sigma``, ``eta``, ``roughness`` (median ``L
    sigma^2``), ``roughness_p90`` and ``eta_L`` (median ``eta L``) and
    ``eta_L_p90``. Values of ``eta_L`` near or above 1 mean trouble.
  """
  sigmas = _levels(sigmas)
  data = np.asarray(data, np.float32)
  sigma_min = sigmas.min()
  rng = np.random.default_rng(seed)
  rows = []
  for sigma in sigmas:
    x = data + float(sigma) * rng.standard_normal(data.shape).astype(np.float32)
    ratio = score_roughness(prior, x, float(sigma), rel_eps=rel_eps, seed=seed)
    eta = float(step_size) * (float(sigma) / sigma_min) ** 2
    med, p90 = np.median(ratio), np.percentile(ratio, 90)
    rows.append({'sigma': float(sigma), 'eta': eta, 'roughness': float(med),
                 'roughness_p90': float(p90), 'eta_L': eta * med / sigma ** 2,
                 'eta_L_p90': eta * p90 / sigma ** 2})
  return rows


def denoising_error(prior, data, sigmas: Sequence[float], *, seed: int = 0) -> List[Dict]:
  """How well the prior's score denoises: Tweedie's formula, level by level.

  For ``x = x0 + sigma z`` the exact smoothed score gives the posterior mean
  ``E[x0 | x] = x + sigma^2 s(x)`` (Tweedie), the best denoiser in mean
  squared error. So ``MSE(x + sigma^2 s(x), x0) / sigma^2`` measures the score
  where BASIS uses it: 1 is no better than the noisy input, 0 is perfect, and
  the exact score reaches the posterior variance ratio (``v / (v + sigma^2)``
  for Gaussian data of variance ``v``). A prior can have good bits/dim and
  still a poor score: likelihood training matches densities, not their
  gradients.

  Args:
    prior: any object with ``score(x, sigma)``.
    data: float ``[batch, ...]`` clean examples of the prior's source.
    sigmas: noise levels to probe.
    seed: seed of the noise.

  Returns:
    One dict per level: ``sigma`` and ``mse_ratio`` (``MSE / sigma^2``),
    ``psnr_noisy_db`` and ``psnr_denoised_db`` (for data in [0, 1]).

  Raises:
    ParameterError: for empty data, non-positive sigmas or a non-finite score.
  """
  sigmas = _levels(sigmas)
  x0 = np.asarray(data, np.float32)
  if x0.ndim < 1 or x0.shape[0] == 0:
    raise ParameterError(f'data must be a non-empty batch [batch, ...], got shape {x0.shape}')
  rng = np.random.default_rng(seed)
  rows = []
  for sigma in sigmas:
    noise = float(sigma) * rng.standard_normal(x0.shape).astype(np.float32)
    x = x0 + noise
    s = np.asarray(prior.score(tf.constant(x), tf.constant(sigma, tf.float32)), np.float64)
    if not np.all(np.isfinite(s)):
      raise ParameterError(f'the score is not finite at the probe points (sigma={sigma:g})')
    denoised = x + float(sigma) ** 2 * s
    mse = float(np.mean(np.square(denoised - x0)))
    mse_noisy = float(np.mean(np.square(noise, dtype=np.float64)))
    rows.append({'sigma': float(sigma), 'mse_ratio': mse / float(sigma) ** 2,
                 'psnr_noisy_db': -10.0 * np.log10(mse_noisy),
                 'psnr_denoised_db': -10.0 * np.log10(mse)})
  return rows
