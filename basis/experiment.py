"""Separation experiments: mixtures from test data, BASIS, metrics, pictures.

Used by ``run_basis_sep.py``; every function takes plain arguments (no flags).
"""

import json
import os
import time
from typing import Dict, Optional

import numpy as np

from basis.separate import Separator
from evaluation.image_metrics import best_permutation_psnr
from pipeline.errors import ParameterError
from training import images as image_utils
from training.loop import write_json_atomic


def image_pairs(images: np.ndarray, *, n_mixtures: int, n_sources: int = 2,
                seed: int = 0) -> np.ndarray:
  """Draws ``n_mixtures`` tuples of distinct test images.

  Args:
    images: float ``[n, height, width, channels]``.
    n_mixtures: int > 0.
    n_sources: images per mixture.
    seed: numpy seed.

  Returns:
    float32 ``[n_sources, n_mixtures, height, width, channels]``.
  """
  n = len(images)
  if n < n_sources:
    raise ParameterError(f'need at least {n_sources} images, got {n}')
  rng = np.random.default_rng(seed)
  idx = np.stack([rng.choice(n, n_sources, replace=False) for _ in range(n_mixtures)], 1)
  return np.asarray(images, np.float32)[idx]


def separate_in_batches(separator: Separator, mixtures: np.ndarray, *, batch_size: int,
                        seed: int = 0, init: str = 'uniform', log=print) -> np.ndarray:
  """Runs a separator over ``[n, ...]`` mixtures in batches; ``[K, n, ...]`` out."""
  out = []
  n = len(mixtures)
  t0 = time.time()
  for start in range(0, n, batch_size):
    chunk = mixtures[start:start + batch_size]
    if len(chunk) < batch_size:  # pad: keep one compiled shape
      pad = np.repeat(chunk[-1:], batch_size - len(chunk), axis=0)
      est = separator(np.concatenate([chunk, pad]), seed=seed + start, init=init)
      est = est.numpy()[:, :len(chunk)]
    else:
      est = separator(chunk, seed=seed + start, init=init).numpy()
    out.append(est)
    done = min(start + batch_size, n)
    rate = done / (time.time() - t0)
    log(f'separated {done}/{n} mixtures ({rate:.2f} mixtures/s)')
  return np.concatenate(out, axis=1)


def save_image_grid(path: str, mixtures, estimates, references, *, n_rows: int = 8,
                    colormap: Optional[str] = None):
  """Rows of [mixture | estimate_1..K | reference_1..K] as one PNG."""
  k = estimates.shape[0]
  rows = []
  for i in range(min(n_rows, mixtures.shape[0])):
    rows += [mixtures[i]] + [estimates[j, i] for j in range(k)] + [
        references[j, i] for j in range(k)]
  imgs = np.clip(np.stack(rows), 0.0, 1.0)
  if colormap and imgs.shape[-1] == 1:
    imgs = image_utils.colorize(imgs, cmap=colormap)
  image_utils.save_png(path, image_utils.make_grid(imgs, ncols=1 + 2 * k), scale=3)


def run_image_separation(separator: Separator, sources: np.ndarray, *, mixing_fn,
                         out_dir: str, batch_size: int, seed: int = 0,
                         description: Optional[Dict] = None, init: str = 'uniform',
                         log=print) -> Dict:
  """Mixes ``sources``, separates, scores PSNR (best permutation), saves all.

  Args:
    separator: a :class:`Separator` (its ``clip`` should be (0, 1) for images).
    sources: float ``[K, n, height, width, channels]`` ground truth in [0, 1].
    mixing_fn: the separator's mixing function (to build the mixtures).
    out_dir: where ``results.json``, ``separation.png``, ``estimates.npy`` go.
    batch_size: mixtures per compiled call.
    seed: run seed.
    description: json-able settings recorded in ``results.json``.

  Returns:
    The results dict.
  """
  os.makedirs(out_dir, exist_ok=True)
  mixtures = np.asarray(mixing_fn(sources))
  t0 = time.time()
  estimates = separate_in_batches(separator, mixtures, batch_size=batch_size, seed=seed,
                                  init=init, log=log)
  seconds = time.time() - t0
  per_source, perm = best_permutation_psnr(estimates, sources)
  per_mixture = per_source.mean(axis=1)
  results = dict(description or {})
  results.update({
      'n_mixtures': int(len(mixtures)),
      'mean_psnr_db': float(np.mean(per_mixture)),
      'median_psnr_db': float(np.median(per_mixture)),
      'std_psnr_db': float(np.std(per_mixture)),
      'seconds': seconds,
      'mixtures_per_second': len(mixtures) / seconds,
      'per_mixture': [{'psnr_db': float(p), 'psnr_per_source_db': [float(v) for v in s],
                       'permutation': [int(v) for v in q]}
                      for p, s, q in zip(per_mixture, per_source, perm)],
  })
  np.save(os.path.join(out_dir, 'estimates.npy'), estimates)
  # Reorder estimates by the chosen permutation for the picture.
  ordered = np.stack([estimates[perm[:, j], np.arange(len(mixtures))]
                      for j in range(estimates.shape[0])])
  save_image_grid(os.path.join(out_dir, 'separation.png'), mixtures, ordered, sources)
  write_json_atomic(os.path.join(out_dir, 'results.json'), results)
  return results


def run_mel_separation(separator: Separator, sources: np.ndarray, *, mixing_fn,
                       out_dir: str, batch_size: int, features: Dict, seed: int = 0,
                       description: Optional[Dict] = None, log=print) -> Dict:
  """Mel patches: each source has its own prior, so no permutation is searched.

  Errors are reported in dB (mean absolute dB difference per patch and
  source, over the [min_db, max_db] range of the features). The estimates
  ``[K, n, n_mels, frames, 1]`` (unit scale) and the feature parameters are
  saved for the inversion step.
  """
  os.makedirs(out_dir, exist_ok=True)
  mixtures = np.asarray(mixing_fn(sources))
  t0 = time.time()
  estimates = separate_in_batches(separator, mixtures, batch_size=batch_size, seed=seed,
                                  log=log)
  seconds = time.time() - t0
  min_db, max_db = 10 * np.log10(features['amin']), 10 * np.log10(features['amax'])
  span = max_db - min_db
  axes = tuple(range(2, estimates.ndim))
  err_db = np.mean(np.abs(estimates - sources), axis=axes) * span          # [K, n]
  mix_err_db = np.mean(np.abs(mixtures[None] - sources), axis=axes) * span  # baseline
  results = dict(description or {})
  results.update({
      'n_mixtures': int(len(mixtures)), 'seconds': seconds,
      'mixtures_per_second': len(mixtures) / seconds,
      'mean_abs_error_db_per_source': [float(v) for v in err_db.mean(axis=1)],
      'mixture_as_estimate_error_db_per_source': [float(v) for v in mix_err_db.mean(axis=1)],
      'per_patch_abs_error_db': err_db.T.tolist(),
  })
  np.save(os.path.join(out_dir, 'estimates.npy'), estimates)
  np.save(os.path.join(out_dir, 'mixtures.npy'), mixtures)
  np.save(os.path.join(out_dir, 'references.npy'), sources)
  with open(os.path.join(out_dir, 'features.json'), 'w') as f:
    json.dump(features, f, indent=2, sort_keys=True)
  save_image_grid(os.path.join(out_dir, 'separation.png'), mixtures, estimates, sources,
                  n_rows=4, colormap='magma')
  write_json_atomic(os.path.join(out_dir, 'results.json'), results)
  return results
