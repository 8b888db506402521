"""Quality against network calls: which BASIS options buy their calls back.

On a CPU the score calls are the whole cost of a separation, so every sampler
setting is judged by separation quality per call. A study is a grid of
*rows* (named :class:`basis.Separator` options) by *budgets* (score calls
per source); every cell separates the same mixtures with the same seeds, so
rows differ only in their options. Each finished cell is written to
``<out_dir>/cells/`` at once, and a rerun of the same study skips it (a long
study killed half way continues where it stopped).

  python basis_calls_study.py --out_dir=out/basis_calls     # docs/basis.md table

The rows (``ROWS``) and how a budget becomes steps per level
(:func:`level_steps_for`) are here; image mixtures are scored with PSNR
(best permutation, as ``run_basis_sep.py``).
"""

import dataclasses
import json
import os
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from basis.separate import Separator
from common import assets
from common.atomic import atomic_path, write_json_atomic
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MNIST_PRIOR = assets.prior_dir('ncsn_mnist')

# Row name -> options. 'step_size' is delta; 'start_level' (index into the
# schedule) is a warm start; 'profile' spreads the steps over the levels.
ROWS: Dict[str, Dict] = {
    'basis': dict(constraint='likelihood', step_size=3e-5),
    'denoise': dict(constraint='likelihood', step_size=3e-5, denoise=True),
    'step_6e-5': dict(constraint='likelihood', step_size=6e-5),
    'front_loaded': dict(constraint='likelihood', step_size=3e-5, profile='front'),
    'warm_start': dict(constraint='likelihood', step_size=3e-5, start_level=2),
    'hard': dict(constraint='hard', step_size=3e-5),
    'hard_6e-5': dict(constraint='hard', step_size=6e-5),
    'hard_6e-5_denoise': dict(constraint='hard', step_size=6e-5, denoise=True),
}
PROFILES = ('uniform', 'front')


def level_steps_for(calls: int, n_levels: int, *, start_level: int = 0, denoise: bool = False,
                    profile: str = 'uniform') -> List[int]:
  """Steps per level that spend ``calls`` score calls per source.

  The Tweedie step takes one call; the rest go to the levels from
  ``start_level`` on: equally ('uniform', the remainder to the first levels),
  or 'front' loaded (weights falling linearly from 2 to 1, more steps where
  the noise is large).

  Raises:
    ParameterError: for fewer calls than levels to run, or an unknown profile.
  """
  if profile not in PROFILES:
    raise ParameterError(f'unknown profile {profile!r}; choose one of {list(PROFILES)}')
  active = n_levels - start_level
  steps_total = int(calls) - int(denoise)
  if active < 1 or steps_total < active:
    raise ParameterError(f'{calls} calls cannot give each of {active} level(s) a step')
  if profile == 'uniform':
    weights = np.ones(active)
  else:
    weights = np.linspace(2.0, 1.0, active)
  raw = weights / weights.sum() * steps_total
  steps = np.maximum(1, np.floor(raw)).astype(int)
  order = np.argsort(-(raw - steps), kind='stable')
  i = 0
  while steps.sum() < steps_total:
    steps[order[i % active]] += 1
    i += 1
  while steps.sum() > steps_total:
    j = int(np.argmax(steps))
    steps[j] -= 1
  return [0] * start_level + [int(v) for v in steps]


def row_schedule(row: Dict, calls: int, n_levels: int) -> Tuple[List[int], int, Dict]:
  """A row at ``calls`` per source: ``(steps per level, start level, other options)``.

  ``start_level`` and ``profile`` are consumed; ``denoise`` (which takes one of
  the calls) stays among the options.
  """
  options = dict(row)
  start_level = int(options.pop('start_level', 0))
  steps = level_steps_for(calls, n_levels, start_level=start_level,
                          denoise=bool(options.get('denoise', False)),
                          profile=options.pop('profile', 'uniform'))
  return steps, start_level, options


def separator_for(priors, sigmas, row: Dict, calls: int, *, mixing='mean',
                  clip=(0.0, 1.0)) -> Separator:
  """The :class:`Separator` of one cell (row options at ``calls`` per source)."""
  steps, start_level, options = row_schedule(row, calls, len(sigmas))
  start_sigma = float(sigmas[start_level]) if start_level else None
  return Separator(priors, sigmas=sigmas, steps_per_sigma=steps, mixing=mixing, clip=clip,
                   start_sigma=start_sigma, **options)


def _cell_path(out_dir: str, row: str, calls: int) -> str:
  return os.path.join(out_dir, 'cells', f'{row}@{calls}.json')


def run_cells(priors, sigmas, sources: np.ndarray, cells: Sequence[Tuple[str, int]], *,
              out_dir: str, score: Callable, mixing='mean', clip=(0.0, 1.0),
              batch_size: Optional[int] = None, seed: int = 0, rows: Optional[Dict] = None,
              identity: Optional[Dict] = None, log=print) -> List[Dict]:
  """Separates the same mixtures once per (row, calls) cell; one json per cell.

  Args:
    priors: one prior per source (a shared object is scored in one call).
    sigmas: the schedule, largest first.
    sources: ``[K, n, ...]`` ground truth; the mixtures are ``mixing(sources)``.
    cells: ``(row name, calls per source)`` pairs.
    out_dir: ``cells/<row>@<calls>.json`` go there.
    score: ``(estimates [K, n, ...], sources) -> per-mixture values [n]``.
    mixing: the separators' mixing ('sum', 'mean' or a callable).
    clip: the separators' final clip.
    batch_size: mixtures per compiled call (default: all at once).
    seed: batch ``b`` uses ``seed + b * batch_size`` in every cell.
    rows: row name -> options (default :data:`ROWS`).
    identity: json-able description of the study; a cell written under a
      different identity is recomputed, not reused.

  Returns:
    One dict per cell: ``row``, ``calls_per_source``, ``settings``, ``mean``,
    ``median``, ``std``, ``seconds``, ``per_mixture``.
  """
  from basis.mixing import get_mixing  # pylint: disable=g-import-not-at-top
  rows = ROWS if rows is None else rows
  mixtures = np.asarray(get_mixing(mixing)(sources))
  n = len(mixtures)
  batch_size = batch_size or n
  out = []
  for i, (name, calls) in enumerate(cells):
    if name not in rows:
      raise ParameterError(f'unknown row {name!r}; choose from {sorted(rows)}')
    path = _cell_path(out_dir, name, calls)
    sep = separator_for(priors, sigmas, rows[name], calls, mixing=mixing, clip=clip)
    expect = {'identity': identity or {}, 'settings': sep.settings(), 'n_mixtures': n,
              'seed': seed, 'batch_size': batch_size}
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        try:
          cell = json.load(f)
        except ValueError:
          cell = {}
      if all(cell.get(k) == v for k, v in expect.items()):
        log(f'[{i + 1}/{len(cells)}] {name} @ {calls} calls: done before ({path})')
        out.append(cell)
        continue
    t0 = time.time()
    parts = []
    for start in range(0, n, batch_size):
      chunk = mixtures[start:start + batch_size]
      if len(chunk) < batch_size:   # one compiled shape
        pad = np.repeat(chunk[-1:], batch_size - len(chunk), axis=0)
        est = sep(np.concatenate([chunk, pad]), seed=seed + start).numpy()[:, :len(chunk)]
      else:
        est = sep(chunk, seed=seed + start).numpy()
      parts.append(est)
    seconds = time.time() - t0
    values = np.asarray(score(np.concatenate(parts, axis=1), sources), np.float64)
    cell = dict(expect, row=name, calls_per_source=sep.calls_per_source,
                mean=float(values.mean()), median=float(np.median(values)),
                std=float(values.std()), seconds=seconds,
                per_mixture=[float(v) for v in values])
    write_json_atomic(path, cell)
    log(f'[{i + 1}/{len(cells)}] {name} @ {sep.calls_per_source} calls: mean '
        f'{cell["mean"]:.2f}, median {cell["median"]:.2f} ({seconds:.0f} s)')
    out.append(cell)
  return out


def psnr_per_mixture(estimates, sources):
  """Mean over sources of the best-permutation PSNR, per mixture."""
  from evaluation.image_metrics import best_permutation_psnr  # pylint: disable=g-import-not-at-top
  per_source, _ = best_permutation_psnr(estimates, sources)
  return per_source.mean(axis=1)


def table(cells: Sequence[Dict], reference: Optional[float] = None,
          unit: str = 'dB') -> str:
  """A markdown table: one row per study row, mean / median per budget."""
  budgets = sorted({c['calls_per_source'] for c in cells})
  names = list(dict.fromkeys(c['row'] for c in cells))
  by = {(c['row'], c['calls_per_source']): c for c in cells}
  head = '| row | ' + ' | '.join(f'{b} calls' for b in budgets) + ' |'
  lines = [head, '|' + '---|' * (len(budgets) + 1)]
  for name in names:
    vals = []
    for b in budgets:
      c = by.get((name, b))
      vals.append(f"{c['mean']:.2f} / {c['median']:.2f}" if c else '')
    lines.append(f'| {name} | ' + ' | '.join(vals) + ' |')
  if reference is not None:
    lines.append(f'| no separation | {reference:.2f} {unit} at 0 calls |' +
                 ' |' * (len(budgets) - 1))
  return '\n'.join(lines)


def plot(path: str, cells: Sequence[Dict], *, reference: Optional[float] = None,
         ylabel: str = 'mean PSNR (dB)', title: str = ''):
  """Mean against calls per source, one line per row (log x), atomically."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for name in dict.fromkeys(c['row'] for c in cells):
    pts = sorted((c['calls_per_source'], c['mean']) for c in cells if c['row'] == name)
    xs, ys = zip(*pts)
    ax.plot(xs, ys, marker='o', label=name)
  if reference is not None:
    ax.axhline(reference, color='gray', linestyle='--', label='no separation')
  ax.set_xscale('log')
  ax.set_xlabel('score-network calls per source')
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  with atomic_path(path, suffix='.png') as tmp:
    fig.savefig(tmp, dpi=120)
  plt.close(fig)


@dataclasses.dataclass(frozen=True)
class CallStudyConfig:
  """The MNIST study of docs/basis.md ("Fewer network calls").

  Attributes:
    out_dir: folder for ``cells/``, ``results.json``, ``table.md``,
      ``psnr_vs_calls.png``.
    prior_dir: an exported NCSN prior (default: the shipped MNIST prior).
    n_pairs: test pairs (drawn as ``run_basis_sep.py`` draws them).
    curve_rows: rows run at every budget of ``budgets``.
    budgets: calls per source of the curves.
    option_rows: rows run at ``option_budgets`` only (each option alone).
    option_budgets: calls per source of the option rows.
    batch_size: pairs per compiled call (default: all).
    seed: pair draw and Langevin noise.
    precision: 'auto', 'float32' or 'bfloat16' (the score network).
  """

  out_dir: str
  prior_dir: str = MNIST_PRIOR
  n_pairs: int = 200
  curve_rows: Tuple[str, ...] = ('basis', 'hard_6e-5_denoise')
  budgets: Tuple[int, ...] = (50, 100, 200, 500, 1000)
  option_rows: Tuple[str, ...] = ('denoise', 'step_6e-5', 'front_loaded', 'warm_start',
                                  'hard', 'hard_6e-5')
  option_budgets: Tuple[int, ...] = (200,)
  batch_size: Optional[int] = None
  seed: int = 0
  precision: str = 'auto'

  def __post_init__(self):
    for name in tuple(self.curve_rows) + tuple(self.option_rows):
      if name not in ROWS:
        raise ParameterError(f'unknown row {name!r}; choose from {sorted(ROWS)}')
    if self.n_pairs < 1:
      raise ParameterError(f'n_pairs must be >= 1, got {self.n_pairs}')
    for b in tuple(self.budgets) + tuple(self.option_budgets):
      if b < 10:
        raise ParameterError(f'budgets must be >= 10 calls (one step per level), got {b}')

  def cells(self) -> List[Tuple[str, int]]:
    """Cheapest first, so that a short session still gets whole columns."""
    out = [(r, b) for b in self.budgets for r in self.curve_rows]
    out += [(r, b) for b in self.option_budgets for r in self.option_rows]
    return sorted(dict.fromkeys(out), key=lambda rb: (rb[1], rb[0] not in self.curve_rows))


def run(config: CallStudyConfig, log=print) -> Dict:
  """Runs the study's cells, then writes results.json, table.md and the plot."""
  from experiments.mixtures import image_pairs  # pylint: disable=g-import-not-at-top
  from basis.priors import NCSNPrior  # pylint: disable=g-import-not-at-top
  from common import compute  # pylint: disable=g-import-not-at-top
  from pipeline import datasets  # pylint: disable=g-import-not-at-top
  os.makedirs(config.out_dir, exist_ok=True)
  dtype = compute.resolve_precision(config.precision, log=log)
  prior = NCSNPrior(config.prior_dir, compute_dtype=dtype)
  sigmas = np.sort(np.asarray(prior.sigmas, np.float64))[::-1]
  ds, info = datasets.get_dataset('mnist', 'test', batch_size=None, shuffle=False)
  images = np.stack([x.numpy() for x in ds])
  sources = image_pairs(images, n_mixtures=config.n_pairs, n_sources=2, seed=config.seed)
  split = np.broadcast_to(sources.mean(axis=0, keepdims=True), sources.shape)
  reference = float(psnr_per_mixture(split, sources).mean())
  identity = {'prior_dir': os.path.relpath(config.prior_dir, ROOT), 'dataset': 'mnist',
              'data_note': info.get('note'), 'precision': dtype}
  cpu = compute.cpu_description()
  log(f'{len(config.cells())} cells on {config.n_pairs} MNIST test pairs ({cpu}); '
      f'no separation: {reference:.2f} dB')
  cells = run_cells([prior, prior], sigmas, sources, config.cells(), out_dir=config.out_dir,
                    score=psnr_per_mixture, batch_size=config.batch_size, seed=config.seed,
                    identity=identity, log=log)
  text = table(cells, reference)
  results = {'config': dataclasses.asdict(config), 'cpu': cpu, 'identity': identity,
             'no_separation_psnr_db': reference,
             'cells': [{k: v for k, v in c.items() if k != 'per_mixture'} for c in cells]}
  write_json_atomic(os.path.join(config.out_dir, 'results.json'), results)
  with atomic_path(os.path.join(config.out_dir, 'table.md'), suffix='.md') as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(f'Mean / median PSNR (dB) of {config.n_pairs} MNIST test pairs against score '
              f'calls per source ({cpu}).\n\n{text}\n')
  plot(os.path.join(config.out_dir, 'psnr_vs_calls.png'), cells, reference=reference,
       title=f'BASIS on {config.n_pairs} MNIST pairs, shipped NCSN prior')
  log(text)
  return results


# The audio rows: the dB power sum is not linear, so no hard constraint; delta
# 2e-5 is the audio default (docs/audio_separation.md).
AUDIO_ROWS: Dict[str, Dict] = {
    'basis': dict(step_size=2e-5),
    'denoise': dict(step_size=2e-5, denoise=True),
    'step_4e-5': dict(step_size=4e-5),
    'warm_start_2': dict(step_size=2e-5, start_level=2),
    'warm_start_4': dict(step_size=2e-5, start_level=4),
    'warm_start_2_denoise': dict(step_size=2e-5, start_level=2, denoise=True),
}


def run_audio_cells(references_dir: str, tracks: Sequence[str], cells: Sequence[Tuple[str, int]],
                    *, out_dir: str, prior_dirs: Optional[Sequence[str]] = None,
                    rows: Optional[Dict] = None, precision: str = 'auto',
                    log=print) -> List[Dict]:
  """The audio curve: median BSS Eval v4 SDR (Wiener inversion) per source against calls.

  Each cell separates every track with ``separate_audio``'s pipeline at the
  row's options; ``<out_dir>/audio_cells/<row>@<calls>.json`` holds the per
  track, per source median SDR and the medians over tracks (a rerun skips it).

  Args:
    references_dir: ``<track>/mixture.wav`` + ``<track>/<source>.wav``.
    tracks: track folder names.
    cells: ``(row, calls per source)`` pairs, rows from ``rows``.
    prior_dirs: the priors (default: the shipped piano and violin).
    rows: row name -> options (default :data:`AUDIO_ROWS`).
  """
  from evaluation import folders  # pylint: disable=g-import-not-at-top
  from evaluation.report import score_track  # pylint: disable=g-import-not-at-top
  from experiments import basis_separator  # pylint: disable=g-import-not-at-top
  from experiments import separators  # pylint: disable=g-import-not-at-top
  from experiments.resume import fingerprint_prior_dirs  # pylint: disable=g-import-not-at-top
  rows = AUDIO_ROWS if rows is None else rows
  prior_dirs = tuple(prior_dirs or basis_separator.DEFAULT_PRIOR_DIRS)
  fingerprints = {os.path.basename(d): f for d, f in fingerprint_prior_dirs(prior_dirs).items()}
  with open(os.path.join(prior_dirs[0], 'config.json'), encoding='utf-8') as f:
    n_levels = int(json.load(f)['schedule']['num_levels'])
  out = []
  for i, (name, calls) in enumerate(cells):
    if name not in rows:
      raise ParameterError(f'unknown audio row {name!r}; choose from {sorted(rows)}')
    steps, start_level, options = row_schedule(rows[name], calls, n_levels)
    path = os.path.join(out_dir, 'audio_cells', f'{name}@{calls}.json')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        cell = json.load(f)
      if (cell.get('tracks') == list(tracks) and cell.get('steps') == steps
          and cell.get('prior_fingerprints') == fingerprints):
        log(f'[{i + 1}/{len(cells)}] audio {name} @ {calls} calls: done before')
        out.append(cell)
        continue
    t0 = time.time()
    per_track = {}
    sources = None
    sep = separators.load_separator(
        'basis', prior_dirs=prior_dirs, steps_per_sigma=tuple(steps), start_level=start_level,
        precision=precision, check_step=False, log=None, **options)
    sources = list(sep.sources)
    for track in tracks:
      ref = folders.load_track(references_dir, track, sources=sources)
      estimates = sep.separate(ref.mixture.mean(axis=0), ref.sample_rate)
      est = np.stack([estimates[s] for s in ref.source_names])[:, None]
      scores = score_track(ref, est)
      per_track[track] = [float(v) for v in scores['median']['SDR']]
    sdr = np.array(list(per_track.values()))            # [n_tracks, n_sources]
    cell = {'row': name, 'calls_per_source': calls, 'steps': steps, 'tracks': list(tracks),
            'prior_fingerprints': fingerprints,
            'sources': sources, 'options': rows[name], 'per_track_sdr': per_track,
            'median_sdr': [float(v) for v in np.nanmedian(sdr, axis=0)],
            'mean': float(np.nanmean(np.nanmedian(sdr, axis=0))),
            'seconds': time.time() - t0}
    write_json_atomic(path, cell)
    log(f'[{i + 1}/{len(cells)}] audio {name} @ {calls} calls: median SDR '
        + ', '.join(f'{s} {v:.2f}' for s, v in zip(sources, cell['median_sdr']))
        + f' dB ({cell["seconds"]:.0f} s)')
    out.append(cell)
  return out



@dataclasses.dataclass(frozen=True)
class AudioCallStudyConfig:
  """The audio curve of docs/basis.md: median SDR after Wiener against calls.

  Attributes:
    out_dir: ``audio_cells/``, ``audio_results.json``,
      ``audio_table.md``, ``sdr_vs_calls.png``.
    references_dir: ``<track>/mixture.wav`` + ``<track>/<source>.wav``
      (e.g. ``evaluate_audio_priors.py``'s ``<out_dir>/references``).
    tracks: track folders (default: all).
    cells: ``(row, calls)`` pairs, rows of :data:`AUDIO_ROWS`.
    prior_dirs: the priors (default: the shipped piano and violin).
    precision: 'auto', 'float32' or 'bfloat16'.
  """

  out_dir: str
  references_dir: str
  tracks: Optional[Tuple[str, ...]] = None
  cells: Tuple[Tuple[str, int], ...] = (
      ('basis', 100), ('basis', 200), ('basis', 1000),
      ('warm_start_2_denoise', 100), ('warm_start_2_denoise', 200))
  prior_dirs: Optional[Tuple[str, ...]] = None
  precision: str = 'auto'

  def __post_init__(self):
    for name, calls in self.cells:
      if name not in AUDIO_ROWS:
        raise ParameterError(f'unknown audio row {name!r}; choose from {sorted(AUDIO_ROWS)}')
      if calls < 1:
        raise ParameterError(f'budgets must be >= 1 call, got {calls}')


def audio_table(cells: Sequence[Dict]) -> str:
  """Markdown: one line per cell, the median SDR of each source."""
  sources = cells[0]['sources'] if cells else []
  lines = ['| row | calls per source | ' + ' | '.join(f'{s} SDR' for s in sources) + ' |',
           '|---|---:|' + '---:|' * len(sources)]
  for c in sorted(cells, key=lambda c: (c['row'], c['calls_per_source'])):
    lines.append(f"| {c['row']} | {c['calls_per_source']} | "
                 + ' | '.join(f'{v:.2f}' for v in c['median_sdr']) + ' |')
  return '\n'.join(lines)


def run_audio(config: AudioCallStudyConfig, log=print) -> Dict:
  """Runs the audio cells, then writes audio_results.json, audio_table.md and the plot."""
  from evaluation import folders  # pylint: disable=g-import-not-at-top
  from common import compute  # pylint: disable=g-import-not-at-top
  tracks = list(config.tracks or folders.list_tracks(config.references_dir))
  cpu = compute.cpu_description()
  log(f'{len(config.cells)} audio cells on {len(tracks)} tracks of {config.references_dir} '
      f'({cpu})')
  cells = run_audio_cells(config.references_dir, tracks, config.cells, out_dir=config.out_dir,
                          prior_dirs=config.prior_dirs, precision=config.precision, log=log)
  text = audio_table(cells)
  results = {'config': dataclasses.asdict(config), 'cpu': cpu, 'tracks': tracks,
             'cells': cells}
  write_json_atomic(os.path.join(config.out_dir, 'audio_results.json'), results)
  with atomic_path(os.path.join(config.out_dir, 'audio_table.md'), suffix='.md') as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(f'Median over {len(tracks)} tracks of the BSS Eval v4 SDR (dB) after Wiener '
              f'inversion, against score calls per source ({cpu}).\n\n{text}\n')
  plot(os.path.join(config.out_dir, 'sdr_vs_calls.png'), cells,
       ylabel='median SDR, mean of the sources (dB)',
       title=f'BASIS + Wiener on {len(tracks)} piano + violin test tracks')
  log(text)
  return results
