"""Separation experiments: mixtures from test data, BASIS, metrics, pictures.

Used by ``run_basis_sep.py``; every function takes plain arguments (no flags).
"""

import hashlib
import json
import os
import shutil
import sys
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

from basis.separate import SATURATION_LIMIT, Separator, clipped_fraction
from evaluation.image_metrics import best_permutation_psnr
from pipeline.errors import ParameterError
from training import images as image_utils
from pipeline.atomic import save_npy_atomic, write_json_atomic


def image_pairs(images: np.ndarray, *, n_mixtures: int, n_sources: int = 2,
                seed: int = 0) -> np.ndarray:
  """Draws ``n_mixtures`` tuples of distinct test images, using images evenly.

  Images are dealt from a random permutation of the set (a fresh permutation
  when one runs out), so ``n_mixtures * n_sources <= len(images)`` uses every
  image at most once -- e.g. 500 pairs from 1,000 test digits use each digit
  exactly once -- and larger requests use each image about equally often.
  A tuple that would repeat an image (at the seam of two permutations) is
  redrawn.

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
  if n_mixtures < 1:
    raise ParameterError(f'n_mixtures must be >= 1, got {n_mixtures}')
  rng = np.random.default_rng(seed)
  need = n_mixtures * n_sources
  order = np.concatenate([rng.permutation(n) for _ in range(-(-need // n))])[:need]
  idx = order.reshape(n_mixtures, n_sources)
  for row in range(n_mixtures):
    if len(set(idx[row])) < n_sources:
      idx[row] = rng.choice(n, n_sources, replace=False)
  return np.asarray(images, np.float32)[idx.T]


def fingerprint_prior_dirs(prior_dirs: Sequence[str]) -> Dict[str, str]:
  """sha256 of the json files of each prior folder (config, family, step)."""
  out = {}
  for d in dict.fromkeys(prior_dirs):
    h = hashlib.sha256()
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
      if name.endswith('.json'):
        with open(os.path.join(d, name), 'rb') as f:
          h.update(name.encode() + b'\0' + f.read())
    out[d] = h.hexdigest()[:16]
  return out


class BatchCache:
  """Finished batches of a long separation, so that a rerun resumes.

  ``<folder>/run.json`` records what the batches were computed from (the
  settings, a hash of the mixtures, the priors' fingerprints); each finished
  batch is ``batch_<start>.npy``, written atomically. Rerunning with the same
  settings reuses them; different settings raise a ``ParameterError`` naming
  the differences instead of mixing two runs.
  """

  def __init__(self, folder: str, identity: Dict):
    self.folder = folder
    path = os.path.join(folder, 'run.json')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        try:
          old = json.load(f)
        except ValueError as e:
          raise ParameterError(f'{path} is not valid json ({e}); delete {folder} '
                               'to start the separation afresh') from e
      if old != identity:
        diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        details = '; '.join(f'{k}: {old.get(k)!r} -> {identity.get(k)!r}' for k in diff)
        raise ParameterError(
            f'{folder} holds finished batches of a different separation ({details}); '
            'use another --out_dir, or delete that folder to start afresh')
    else:
      write_json_atomic(path, identity)

  def _path(self, start: int) -> str:
    return os.path.join(self.folder, f'batch_{start:07d}.npy')

  def load(self, start: int, expected_shape) -> Optional[np.ndarray]:
    path = self._path(start)
    if not os.path.exists(path):
      return None
    try:
      arr = np.load(path)
    except (ValueError, OSError, EOFError) as e:
      raise ParameterError(f'damaged batch file {path} ({e}); delete it to recompute '
                           'that batch') from e
    if arr.shape != tuple(expected_shape):
      raise ParameterError(f'{path} has shape {arr.shape}, expected '
                           f'{tuple(expected_shape)}; delete it to recompute that batch')
    return arr

  def save(self, start: int, arr: np.ndarray):
    save_npy_atomic(self._path(start), arr)

  def remove(self):
    shutil.rmtree(self.folder, ignore_errors=True)


def mixtures_digest(mixtures: np.ndarray) -> str:
  arr = np.ascontiguousarray(mixtures, np.float32)
  return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]


def _eta(seconds: float) -> str:
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  return f'{h}h{rem // 60:02d}m' if h else f'{rem // 60}m{rem % 60:02d}s'


class _LevelProgress:
  """Reports each finished level of a batch: a redrawn bar on a terminal, else log lines."""

  def __init__(self, log, n_levels: int, n_batches: int, tty: Optional[bool] = None):
    self.log = log
    self.n_levels = n_levels
    self.n_batches = n_batches
    self.tty = sys.stderr.isatty() if tty is None else tty
    self.batch = 0
    self.done = 0
    self.t0 = time.time()

  def start(self, batch: int):
    self.batch = batch
    self.done = 0
    self.t0 = time.time()

  def __call__(self, level: int, sigma: float):
    del level  # levels a schedule skips are not counted
    self.done += 1
    done = self.done
    elapsed = time.time() - self.t0
    left = elapsed / done * (self.n_levels - done)
    text = (f'batch {self.batch + 1}/{self.n_batches}: level {done}/{self.n_levels} '
            f'(sigma {sigma:.3g}), {_eta(elapsed)} in, batch ETA {_eta(left)}')
    if self.tty:
      bar = '#' * done + '.' * (self.n_levels - done)
      end = '\n' if done == self.n_levels else ''
      sys.stderr.write(f'\r  [{bar}] {text}  {end}')
      sys.stderr.flush()
    else:
      self.log(f'  {text}')


def separate_in_batches(separator: Separator, mixtures: np.ndarray, *, batch_size: int,
                        seed: int = 0, init=None, log=print,
                        cache: Optional[BatchCache] = None,
                        on_batch: Optional[Callable[[np.ndarray], str]] = None,
                        stats: Optional[Dict] = None,
                        level_progress: bool = True) -> np.ndarray:
  """Runs a separator over ``[n, ...]`` mixtures in batches; ``[K, n, ...]`` out.

  Batch ``b`` always uses seed ``seed + b * batch_size``, so results do not
  depend on where a run was interrupted. With ``cache``, finished batches are
  saved and reused. ``on_batch(estimates_so_far)`` may return a short text
  (e.g. the running PSNR) added to the progress line. ``stats``, when given,
  receives ``computed`` and ``resumed`` mixture counts and ``seconds`` spent
  computing. With ``level_progress`` every finished noise level is reported
  (a bar on a terminal, a log line otherwise); the results are the same
  either way.
  """
  out = []
  n = len(mixtures)
  t0 = time.time()
  computed = 0
  n_batches = -(-n // batch_size)
  levels = (_LevelProgress(log, len(separator.active_levels), n_batches)
            if level_progress else None)
  for start in range(0, n, batch_size):
    if levels is not None:
      levels.start(start // batch_size)
    chunk = mixtures[start:start + batch_size]
    est = None
    if cache is not None:
      est = cache.load(start, (separator.num_sources, len(chunk)) + chunk.shape[1:])
    resumed = est is not None
    if not resumed:
      if len(chunk) < batch_size:  # pad: keep one compiled shape
        pad = np.repeat(chunk[-1:], batch_size - len(chunk), axis=0)
        est = separator(np.concatenate([chunk, pad]), seed=seed + start, init=init,
                        progress=levels)
        est = est.numpy()[:, :len(chunk)]
      else:
        est = separator(chunk, seed=seed + start, init=init, progress=levels).numpy()
      computed += len(chunk)
      if cache is not None:
        cache.save(start, est)
    out.append(est)
    done = min(start + batch_size, n)
    if resumed:
      line = f'separated {done}/{n} mixtures (batch resumed from {cache.folder})'
    else:
      rate = computed / (time.time() - t0)
      line = (f'separated {done}/{n} mixtures ({rate:.3f} mixtures/s, '
              f'ETA {_eta((n - done) / rate)})')
    if on_batch is not None:
      extra = on_batch(np.concatenate(out, axis=1))
      if extra:
        line += f'; {extra}'
    log(line)
  if stats is not None:
    stats.update(computed=computed, resumed=n - computed, seconds=time.time() - t0)
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


def saturation_report(separator: Separator, estimates: np.ndarray, *, log=print,
                      limit: float = SATURATION_LIMIT) -> Dict:
  """The share of clipped estimates; warns when it passes ``limit``.

  Returns:
    ``{'clipped_fraction': float, 'saturated': bool}`` for ``results.json``,
    with ``'warning'`` (the text logged) when saturated.
  """
  fraction = clipped_fraction(estimates, separator.clip)
  out = {'clipped_fraction': fraction, 'saturated': bool(fraction > limit)}
  if out['saturated']:
    out['warning'] = (
        f'warning: {100 * fraction:.1f} % of the estimates sit exactly at the clip bounds '
        f'{tuple(float(v) for v in separator.clip)}: the chains blew up without reaching '
        f'NaN; the results are not a separation. Lower the step size (now '
        f'{separator.step_size:g}) (docs/basis.md)')
    log(out['warning'])
  return out


def _add_saturation(results: Dict, separator: Separator, estimates: np.ndarray, log):
  report = saturation_report(separator, estimates, log=log)
  warning = report.pop('warning', None)
  results.update(report)
  if warning:
    results['warnings'] = list(results.get('warnings') or []) + [warning]


def _start_output_set(out_dir: str):
  """Removes an earlier run's ``results.json`` before new outputs are written.

  ``results.json`` is written last, so the outputs beside it are one set: a
  run killed between its writes leaves no ``results.json`` (incomplete)
  rather than new estimates next to old results.
  """
  try:
    os.remove(os.path.join(out_dir, 'results.json'))
  except FileNotFoundError:
    pass


def _timing(stats: Dict) -> Dict:
  """Speed of the batches computed by this invocation (not resumed ones)."""
  out = {'seconds': stats['seconds'], 'mixtures_resumed': stats['resumed']}
  out['mixtures_per_second'] = (stats['computed'] / stats['seconds']
                                if stats['computed'] else None)
  return out


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
  results.update(_timing(stats))
  _add_saturation(results, separator, estimates, log)
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
  _start_output_set(out_dir)
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
  results.update(_timing(stats))
  _add_saturation(results, separator, estimates, log)
  results.update({
      'n_mixtures': int(len(mixtures)),
      'mean_abs_error_db_per_source': [float(v) for v in err_db.mean(axis=1)],
      'mixture_as_estimate_error_db_per_source': [float(v) for v in mix_err_db.mean(axis=1)],
      'per_patch_abs_error_db': err_db.T.tolist(),
  })
  _start_output_set(out_dir)
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
