"""The image separation experiments of ``run_basis_sep.py``: mix test images (or mel
patches), separate them in batches, score, and save estimates, a picture and ``results.json``.

Every function takes plain arguments (no flags).
"""

import os
from typing import Dict, Optional

import numpy as np

from basis.separate import Separator
from evaluation.image_metrics import best_permutation_psnr
from experiments import outputs
from experiments.batches import separate_in_batches
from experiments.mixtures import image_pairs  # pylint: disable=unused-import  (the mixtures run here)
from experiments.outputs import save_image_grid
from experiments.resume import BatchCache, fingerprint_prior_dirs, mixtures_digest
from common.atomic import save_npy_atomic, write_json_atomic


def _batch_cache(out_dir: str, separator: Separator, mixtures: np.ndarray,
                 description: Optional[Dict], resume: bool, **settings
                 ) -> Optional[BatchCache]:
  """What finished batches depend on: the description and the separator."""
  if not resume:
    return None
  identity = {k: v for k, v in (description or {}).items()
              if k not in ('command', 'warnings', 'step_check')}
  identity['separator'] = {**separator.settings(), **settings}
  identity['mixtures_sha256'] = mixtures_digest(mixtures)
  identity['n_mixtures'] = int(len(mixtures))
  dirs = identity.get('prior_dirs') or ([identity['prior_dir']] if identity.get('prior_dir')
                                        else [])
  identity['prior_fingerprints'] = fingerprint_prior_dirs(dirs)
  return BatchCache(os.path.join(out_dir, 'partial'), identity)


def run_image_separation(separator: Separator, sources: np.ndarray, *, mixing_fn,
                         out_dir: str, batch_size: int, seed: int = 0,
                         description: Optional[Dict] = None, init: str = 'uniform',
                         resume: bool = True, log=print) -> Dict:
  """Mixes ``sources``, separates, scores PSNR (best permutation), saves all.

  Args:
    separator: a :class:`Separator` (its ``clip`` should be (0, 1) for images).
    sources: float ``[K, n, height, width, channels]`` ground truth in [0, 1].
    mixing_fn: the separator's mixing function (to build the mixtures).
    out_dir: where ``results.json``, ``separation.png``, ``estimates.npy`` go.
    batch_size: mixtures per compiled call.
    seed: run seed.
    description: json-able settings recorded in ``results.json`` (and, but
      for ``command``, what a resumed run must match).
    init: separator initialisation.
    resume: keep finished batches in ``<out_dir>/partial`` and reuse them
      when the same run is started again (removed once the run completes).

  Returns:
    The results dict.
  """
  os.makedirs(out_dir, exist_ok=True)
  mixtures = np.asarray(mixing_fn(sources))
  cache = _batch_cache(out_dir, separator, mixtures, description, resume,
                       batch_size=batch_size, seed=seed, init=init)

  def running_psnr(done):
    per_source, _ = best_permutation_psnr(done, sources[:, :done.shape[1]])
    return f'mean PSNR so far {per_source.mean():.2f} dB'

  stats = {}
  estimates = separate_in_batches(separator, mixtures, batch_size=batch_size, seed=seed,
                                  init=init, log=log, cache=cache, on_batch=running_psnr,
                                  stats=stats)
  per_source, perm = best_permutation_psnr(estimates, sources)
  per_mixture = per_source.mean(axis=1)
  # No separation at all: every estimate is the sources' average (the mixture
  # split equally) -- what a separator has to beat.
  split = np.broadcast_to(np.mean(sources, axis=0, keepdims=True), sources.shape)
  split_psnr, _ = best_permutation_psnr(split, sources)
  results = dict(description or {})
  results.update(outputs.timing(stats))
  outputs.add_saturation(results, separator, estimates, log)
  results.update({
      'n_mixtures': int(len(mixtures)),
      'mean_psnr_db': float(np.mean(per_mixture)),
      'equal_split_psnr_db': float(np.mean(split_psnr)),
      'median_psnr_db': float(np.median(per_mixture)),
      'std_psnr_db': float(np.std(per_mixture)),
      'per_mixture': [{'psnr_db': float(p), 'psnr_per_source_db': [float(v) for v in s],
                       'permutation': [int(v) for v in q]}
                      for p, s, q in zip(per_mixture, per_source, perm)],
  })
  outputs.start_output_set(out_dir)
  save_npy_atomic(os.path.join(out_dir, 'estimates.npy'), estimates)
  # Reorder estimates by the chosen permutation for the picture.
  ordered = np.stack([estimates[perm[:, j], np.arange(len(mixtures))]
                      for j in range(estimates.shape[0])])
  save_image_grid(os.path.join(out_dir, 'separation.png'), mixtures, ordered, sources)
  write_json_atomic(os.path.join(out_dir, 'results.json'), results)
  if cache is not None:
    cache.remove()
  return results


def run_mel_separation(separator: Separator, sources: np.ndarray, *, mixing_fn,
                       out_dir: str, batch_size: int, features: Dict, seed: int = 0,
                       description: Optional[Dict] = None, resume: bool = True,
                       log=print) -> Dict:
  """Mel patches: each source has its own prior, so no permutation is searched.

  Errors are reported in dB (mean absolute dB difference per patch and
  source, over the [min_db, max_db] range of the features). The estimates
  ``[K, n, n_mels, frames, 1]`` (unit scale) and the feature parameters are
  saved for the inversion step. ``resume`` as in :func:`run_image_separation`.
  """
  os.makedirs(out_dir, exist_ok=True)
  mixtures = np.asarray(mixing_fn(sources))
  cache = _batch_cache(out_dir, separator, mixtures, description, resume,
                       batch_size=batch_size, seed=seed)
  stats = {}
  estimates = separate_in_batches(separator, mixtures, batch_size=batch_size, seed=seed,
                                  log=log, cache=cache, stats=stats)
  min_db, max_db = 10 * np.log10(features['amin']), 10 * np.log10(features['amax'])
  span = max_db - min_db
  axes = tuple(range(2, estimates.ndim))
  err_db = np.mean(np.abs(estimates - sources), axis=axes) * span          # [K, n]
  mix_err_db = np.mean(np.abs(mixtures[None] - sources), axis=axes) * span  # baseline
  results = dict(description or {})
  results.update(outputs.timing(stats))
  outputs.add_saturation(results, separator, estimates, log)
  results.update({
      'n_mixtures': int(len(mixtures)),
      'mean_abs_error_db_per_source': [float(v) for v in err_db.mean(axis=1)],
      'mixture_as_estimate_error_db_per_source': [float(v) for v in mix_err_db.mean(axis=1)],
      'per_patch_abs_error_db': err_db.T.tolist(),
  })
  outputs.start_output_set(out_dir)
  save_npy_atomic(os.path.join(out_dir, 'estimates.npy'), estimates)
  save_npy_atomic(os.path.join(out_dir, 'mixtures.npy'), mixtures)
  save_npy_atomic(os.path.join(out_dir, 'references.npy'), sources)
  write_json_atomic(os.path.join(out_dir, 'features.json'), features)
  save_image_grid(os.path.join(out_dir, 'separation.png'), mixtures, estimates, sources,
                  n_rows=4, colormap='magma')
  write_json_atomic(os.path.join(out_dir, 'results.json'), results)
  if cache is not None:
    cache.remove()
  return results
