"""The batch runner: any separator over many mixtures, in fixed-size batches that resume."""

import time
from typing import Callable, Dict, Optional

import numpy as np

from experiments.progress import LevelProgress, format_eta
from experiments.resume import BatchCache
from common.errors import ParameterError


def separate_in_batches(separator: Callable, mixtures: np.ndarray, *, batch_size: int,
                        seed: int = 0, init=None, log=print,
                        cache: Optional[BatchCache] = None,
                        on_batch: Optional[Callable[[np.ndarray], str]] = None,
                        stats: Optional[Dict] = None,
                        level_progress: bool = True,
                        num_sources: Optional[int] = None) -> np.ndarray:
  """Runs a separator over ``[n, ...]`` mixtures in batches; ``[K, n, ...]`` out.

  Batch ``b`` always uses seed ``seed + b * batch_size``, so results do not
  depend on where a run was interrupted. A short last batch is padded with
  copies of its last mixture (one compiled shape) and the padding dropped.
  With ``cache``, finished batches are saved and reused. ``on_batch(estimates_so_far)``
  may return a short text (e.g. the running PSNR) added to the progress line.
  ``stats``, when given, receives ``computed`` and ``resumed`` mixture counts
  and ``seconds`` spent computing.

  Args:
    separator: any callable ``separator(mixtures, *, seed, **kwargs)`` that
      maps ``[batch_size, ...]`` mixtures to ``[K, batch_size, ...]``
      estimates (array or tensor), e.g. a :class:`basis.separate.Separator`.
      ``kwargs`` holds ``init`` when it is not None, and ``progress`` (called
      with ``(level, sigma)`` after each noise level) when the separator has
      ``active_levels`` and ``level_progress`` is on.
    mixtures: ``[n, ...]``.
    batch_size: int > 0, mixtures per call.
    seed: int, the run seed.
    init: passed on to the separator (when not None): a string as it is, an
      array ``[K, n, ...]`` (one start per mixture) cut like the mixtures.
    log: receives one progress line per batch.
    cache: a :class:`experiments.resume.BatchCache`.
    on_batch, stats: see above.
    level_progress: report every finished noise level (a bar on a terminal,
      a log line otherwise); the results are the same either way.
    num_sources: K, for checking cached batches (default: the separator's
      ``num_sources``).

  Returns:
    ``[K, n, ...]`` numpy estimates.

  Raises:
    ParameterError: a ``cache`` but no way to know K, or a damaged or
      foreign cached batch.
  """
  if num_sources is None:
    num_sources = getattr(separator, 'num_sources', None)
  if cache is not None and num_sources is None:
    raise ParameterError('a batch cache needs num_sources (the separator has no '
                         'num_sources attribute)')
  active_levels = getattr(separator, 'active_levels', None)
  out = []
  n = len(mixtures)
  t0 = time.time()
  computed = 0
  n_batches = -(-n // batch_size)
  levels = (LevelProgress(log, len(active_levels), n_batches)
            if level_progress and active_levels is not None else None)
  kwargs = {}
  per_item = init is not None and not isinstance(init, str)
  if per_item:
    init = np.asarray(init, np.float32)
    if init.ndim < 2 or init.shape[1] != n or init.shape[2:] != mixtures.shape[1:]:
      raise ParameterError(f'init must be [K, {n}, ...] (one start per mixture of shape '
                           f'{tuple(mixtures.shape[1:])}), got shape {init.shape}')
  elif init is not None:
    kwargs['init'] = init
  if levels is not None:
    kwargs['progress'] = levels
  for start in range(0, n, batch_size):
    if levels is not None:
      levels.start(start // batch_size)
    chunk = mixtures[start:start + batch_size]
    est = None
    if cache is not None:
      est = cache.load(start, (num_sources, len(chunk)) + chunk.shape[1:])
    resumed = est is not None
    if not resumed:
      if per_item:
        kwargs['init'] = init[:, start:start + batch_size]
      if len(chunk) < batch_size:  # pad: keep one compiled shape
        pad = np.repeat(chunk[-1:], batch_size - len(chunk), axis=0)
        if per_item:
          kwargs['init'] = np.concatenate(
              [kwargs['init'], np.repeat(kwargs['init'][:, -1:], len(pad), axis=1)], axis=1)
        est = separator(np.concatenate([chunk, pad]), seed=seed + start, **kwargs)
        est = np.asarray(est)[:, :len(chunk)]
      else:
        est = np.asarray(separator(chunk, seed=seed + start, **kwargs))
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
              f'ETA {format_eta((n - done) / rate)})')
    if on_batch is not None:
      extra = on_batch(np.concatenate(out, axis=1))
      if extra:
        line += f'; {extra}'
    log(line)
  if stats is not None:
    stats.update(computed=computed, resumed=n - computed, seconds=time.time() - t0)
  return np.concatenate(out, axis=1)
