"""One comparison report: score many methods against references, tables, plots, a page.

``run(ReportConfig)`` (``evaluate_separation.py``) reads a references folder and
one estimates folder per method in the MUSDB / museval layout
(``evaluation.folders``), and writes into ``out_dir``::

  results.md, results.csv, results.json   median over tracks of each track's
                                          median SDR/SIR/SAR/ISR, and SI-SDR(i),
                                          per method and source
  boxplot_<metric>.png                    one box per method and source, over tracks
  report.html                             the table, the plots, and per track the
                                          mixture, references and estimates as
                                          spectrograms and <audio> players
  scores/<method>/<track>.json            framewise scores of one track (the cache)
  media/<track>/...                       spectrogram PNGs and the wavs the page plays

Scores follow SiSEC / museval: BSS Eval v4 on ``window_s`` windows (NaN
windows skipped), median over windows per track, then median over tracks.
SI-SDR is computed once per whole track (jointly over channels), SI-SDRi
against the mixture.

A silent estimate (all zeros over the whole track) is the worst separation,
not a perfect one: its SI-SDR, SI-SDRi and SDR are ``-inf`` and count in the
medians; its SIR, SAR and ISR are undefined (BSS Eval skips every window
where an estimate or a reference is silent, for every source of the track).
Each row says how many tracks each metric's median covers (``scored``) and
why a track was left out (``dropped``); the tables print a note per such row.

Speech sources (``speech_sources``; by default a source named ``voice``, the
speech of ``--task=speech-noise``) also get PESQ (ITU-T P.862.2 wide band) and
STOI per track (``evaluation.speech_quality``), in the tables (median and
interquartile range over tracks, as the other columns), the plots and the page.
They need the optional ``pesq`` / ``pystoi`` packages (the ``[quality]``
extra); without them the columns are left out and ``run`` returns one line
saying what to install (``quality_note``). A pair PESQ or STOI cannot score (a
silent reference, too short or too quiet a voice) is NaN with its reason in
the coverage notes.

A rerun skips every (method, track) whose cache file exists and was computed
from the same files (size and modification time) with the same parameters,
so an interrupted run resumes where it stopped; PESQ / STOI missing from a
cache entry (one written without them) are added to it without redoing BSS
Eval.
"""

import csv
import dataclasses
import io
import json
import math
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from evaluation import folders
from evaluation import report_html
from evaluation import speech_quality
from evaluation.audio_metrics import si_sdr
from evaluation.bss_eval import METRICS, bss_eval_v4, nanmedian
from common.atomic import atomic_path, write_json_atomic
from common.errors import ParameterError

TABLE_METRICS = METRICS + ('SI-SDR', 'SI-SDRi')
QUALITY_METRICS = speech_quality.METRICS          # ('PESQ', 'STOI'): speech sources only
DEFAULT_SPEECH_SOURCES = speech_quality.DEFAULT_SPEECH_SOURCES
UNITS = {'PESQ': 'MOS-LQO', 'STOI': ''}
CACHE_VERSION = 2   # 2: silent estimates and references recorded
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')


@dataclasses.dataclass(frozen=True)
class ReportConfig:
  """What ``evaluate_separation.py`` scores and where it writes.

  Attributes:
    references_dir: ``<track>/mixture.wav`` + ``<track>/<source>.wav``.
    estimates: ``((method name, folder), ...)``, each folder
      ``<track>/<source>.wav``; names become folder and column names.
    out_dir: output folder.
    window_s: float > 0, BSS Eval window, seconds.
    hop_s: float > 0, BSS Eval hop, seconds.
    filters_len: int > 0, BSS Eval distortion filter length, samples.
    tracks: track names to score (default: every track of the references).
    pad_or_truncate: zero-pad or cut estimates of another length (museval's
      behaviour) instead of raising.
    media: write spectrograms and audio into the page.
    progress: show a progress bar over tracks.
    speech_sources: the sources that are speech, scored with PESQ and STOI too
      (when the packages are installed); () for none.
  """

  references_dir: str
  estimates: Tuple[Tuple[str, str], ...]
  out_dir: str
  window_s: float = 1.0
  hop_s: float = 1.0
  filters_len: int = 512
  tracks: Optional[Tuple[str, ...]] = None
  pad_or_truncate: bool = False
  media: bool = True
  progress: bool = False
  speech_sources: Tuple[str, ...] = DEFAULT_SPEECH_SOURCES

  def __post_init__(self):
    if not self.estimates:
      raise ParameterError('estimates is empty: give at least one NAME=DIR')
    names = [n for n, _ in self.estimates]
    for name, folder in self.estimates:
      if not _NAME_RE.match(name):
        raise ParameterError(
            f'method name {name!r} must start with a letter or digit and hold only '
            'letters, digits and _.+-')
      if not os.path.isdir(folder):
        raise ParameterError(f'estimates folder {folder!r} of method {name!r} does not exist')
    if len(set(names)) != len(names):
      raise ParameterError(f'method names repeat: {names}')
    if 'reference' in names or 'mixture' in names:
      raise ParameterError(f"'reference' and 'mixture' are reserved, got methods {names}")


def parse_estimates(specs: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
  """``['NAME=DIR', ...]`` -> ``((NAME, DIR), ...)``.

  Raises:
    ParameterError: for an entry without ``=``.
  """
  out = []
  for spec in specs:
    name, sep, folder = spec.partition('=')
    if not sep or not name or not folder:
      raise ParameterError(f'--estimates entries must be NAME=DIR, got {spec!r}')
    out.append((name.strip(), folder.strip()))
  return tuple(out)


# ------------------------------------------------------------------- json
def _to_json(x):
  """Floats (NaN -> None, +-inf -> 'inf'/'-inf') in nested lists."""
  arr = np.asarray(x, np.float64)
  if arr.ndim == 0:
    v = float(arr)
    return None if math.isnan(v) else ('inf' if v == math.inf else
                                       '-inf' if v == -math.inf else v)
  return [_to_json(a) for a in arr]


def _from_json(x) -> np.ndarray:
  def conv(v):
    if isinstance(v, list):
      return [conv(a) for a in v]
    return np.nan if v is None else float(v)
  return np.asarray(conv(x), np.float64)


def _signature(paths: Sequence[str], config: ReportConfig) -> dict:
  files = []
  for p in paths:
    st = os.stat(p)
    files.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
  return {'version': CACHE_VERSION, 'window_s': config.window_s, 'hop_s': config.hop_s,
          'filters_len': config.filters_len, 'pad_or_truncate': config.pad_or_truncate,
          'files': files}


# ---------------------------------------------------------------- scoring
def score_track(track: folders.Track, estimates: np.ndarray, *, window_s: float = 1.0,
                hop_s: float = 1.0, filters_len: int = 512,
                speech_sources: Sequence[str] = ()) -> dict:
  """All metrics of one method on one track.

  Args:
    track: the references.
    estimates: float ``[n_sources, n_channels, n_samples]`` in
      ``track.source_names`` order.
    window_s, hop_s, filters_len: BSS Eval settings.
    speech_sources: sources also scored with PESQ and STOI (:func:`score_quality`;
      the packages must be installed).

  Returns:
    ``{'sources': [...], 'framewise': {metric: [n_sources, n_windows]},
    'median': {metric: [n_sources]}, 'SI-SDR': [n_sources], 'SI-SDRi':
    [n_sources], 'silent_estimate': [n_sources], 'silent_reference':
    [n_sources]}`` (numpy arrays, dB; bools), with ``speech_sources`` also
    :func:`score_quality`'s keys. A silent estimate's median SDR is ``-inf``
    (see the module docstring).
  """
  refs = track.stacked_sources()
  estimates = np.asarray(estimates)
  result = bss_eval_v4(refs, estimates, sample_rate=track.sample_rate, window_s=window_s,
                       hop_s=hop_s, filters_len=filters_len)
  value = si_sdr(estimates, refs, axis=(-2, -1))
  mixture_value = si_sdr(np.broadcast_to(track.mixture, refs.shape), refs, axis=(-2, -1))
  silent_est = ~np.any(estimates != 0, axis=(-2, -1))
  silent_ref = ~np.any(refs != 0, axis=(-2, -1))
  median = result.medians()
  median['SDR'] = np.where(silent_est & ~silent_ref, -np.inf, median['SDR'])
  with np.errstate(invalid='ignore'):
    improvement = value - mixture_value
  out = {'sources': track.source_names, 'framewise': result.framewise(),
         'median': median, 'SI-SDR': value, 'SI-SDRi': improvement,
         'silent_estimate': silent_est, 'silent_reference': silent_ref,
         'window_s': window_s, 'hop_s': hop_s}
  if any(s in track.source_names for s in speech_sources):
    out.update(score_quality(track, estimates, speech_sources))
  return out


def score_quality(track: folders.Track, estimates: np.ndarray,
                  speech_sources: Sequence[str]) -> dict:
  """PESQ (wide band) and STOI of the speech sources of one track.

  Args:
    track: the references.
    estimates: float ``[n_sources, n_channels, n_samples]`` in ``track.source_names``
      order.
    speech_sources: the sources to score (others get NaN).

  Returns:
    ``{'PESQ': [n_sources], 'STOI': [n_sources], 'quality_sources': [source, ...],
    'quality_notes': {source: {metric: why}}}``: NaN where a source is not speech
    or a pair could not be scored (``evaluation.speech_quality``).

  Raises:
    ParameterError: the ``pesq`` / ``pystoi`` packages are missing.
  """
  names = track.source_names
  out = {m: np.full(len(names), np.nan) for m in QUALITY_METRICS}
  scored, notes = [], {}
  for j, source in enumerate(names):
    if source not in speech_sources:
      continue
    q = speech_quality.speech_quality(track.sources[source], estimates[j], track.sample_rate)
    for m in QUALITY_METRICS:
      out[m][j] = q[m]
    if q['notes']:
      notes[source] = q['notes']
    scored.append(source)
  out.update(quality_sources=scored, quality_notes=notes)
  return out


def _cache_path(out_dir: str, method: str, track: str) -> str:
  return os.path.join(out_dir, 'scores', method, f'{track}.json')


def _read_cache(path: str, signature: dict) -> Optional[dict]:
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except (OSError, ValueError):
    return None
  if data.get('signature') != signature:
    return None
  out = {'sources': data['sources'],
         'framewise': {k: _from_json(v) for k, v in data['framewise'].items()},
         'median': {k: _from_json(v) for k, v in data['median'].items()},
         'SI-SDR': _from_json(data['SI-SDR']), 'SI-SDRi': _from_json(data['SI-SDRi']),
         'silent_estimate': np.asarray(data['silent_estimate'], bool),
         'silent_reference': np.asarray(data['silent_reference'], bool)}
  quality = data.get('quality')
  if quality:
    out.update({m: _from_json(quality[m]) for m in QUALITY_METRICS})
    out.update(quality_sources=list(quality['sources']), quality_notes=quality['notes'])
  return out


def _write_cache(path: str, scores: dict, signature: dict):
  write_json_atomic(path, {
      'signature': signature, 'sources': scores['sources'],
      'framewise': {k: _to_json(v) for k, v in scores['framewise'].items()},
      'median': {k: _to_json(v) for k, v in scores['median'].items()},
      'SI-SDR': _to_json(scores['SI-SDR']), 'SI-SDRi': _to_json(scores['SI-SDRi']),
      'silent_estimate': [bool(v) for v in scores['silent_estimate']],
      'silent_reference': [bool(v) for v in scores['silent_reference']],
      **({'quality': {**{m: _to_json(scores[m]) for m in QUALITY_METRICS},
                      'sources': list(scores['quality_sources']),
                      'notes': scores['quality_notes']}}
         if 'quality_sources' in scores else {})})


# ----------------------------------------------------------------- tables
def metrics_of(per_track: Dict[str, Dict[str, dict]]) -> Tuple[str, ...]:
  """The table's metrics: :data:`TABLE_METRICS`, then PESQ / STOI if any track has them."""
  quality = any(scores.get('quality_sources') for tracks in per_track.values()
                for scores in tracks.values())
  return TABLE_METRICS + (QUALITY_METRICS if quality else ())


def _is_speech(tracks: Dict[str, dict], source: str) -> bool:
  return any(source in scores.get('quality_sources', ()) for scores in tracks.values())


def aggregate(per_track: Dict[str, Dict[str, dict]], methods: Sequence[str],
              sources: Sequence[str]) -> List[dict]:
  """Median over tracks of the per-track medians.

  Args:
    per_track: ``{method: {track: scores}}`` as :func:`score_track` returns.
    methods: method order.
    sources: source order.

  Returns:
    rows ``{'method', 'source', 'n_tracks', SDR, SIR, SAR, ISR, SI-SDR,
    SI-SDRi, 'quartiles', 'scored', 'dropped', 'silent_estimates'}``: floats, dB (NaN where
    no track has a value); ``scored`` ``{metric: tracks in its median}``,
    ``dropped`` ``{metric: {track: why}}`` for the metrics that left tracks
    out, ``silent_estimates`` the tracks whose estimate is silent (scored
    ``-inf``). When any track has PESQ / STOI (:func:`metrics_of`), every row
    also has ``PESQ`` and ``STOI`` (NaN for a source that is not speech) and
    ``'speech'`` (bool).
  """
  metrics = metrics_of(per_track)
  rows = []
  for method in methods:
    tracks = per_track.get(method, {})
    for source in sources:
      row = {'method': method, 'source': source}
      values = track_values(tracks, source)
      for metric in metrics:
        row[metric] = float(nanmedian(values[metric])) if values[metric] else math.nan
      # The spread over tracks (interquartile range) of the headline metrics.
      row['quartiles'] = {m: _quartiles(values[m]) for m in ('SDR', 'SI-SDR') +
                          metrics[len(TABLE_METRICS):]}
      row['n_tracks'] = len(values['SDR'])
      if len(metrics) > len(TABLE_METRICS):
        row['speech'] = _is_speech(tracks, source)
      row.update(coverage(tracks, source))
      rows.append(row)
  return rows


def _quartiles(values) -> List[float]:
  """``[q25, q75]`` of the finite values (NaN, NaN when there are none)."""
  v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
  if not v.size:
    return [math.nan, math.nan]
  return [float(np.percentile(v, 25)), float(np.percentile(v, 75))]


def _why_dropped(scores: dict, j: int, metric: str) -> str:
  if metric in QUALITY_METRICS:
    source = scores['sources'][j]
    return scores.get('quality_notes', {}).get(source, {}).get(metric, 'not a number')
  if bool(scores.get('silent_reference', [False] * (j + 1))[j]):
    return 'silent reference'
  if bool(scores.get('silent_estimate', [False] * (j + 1))[j]):
    return 'silent estimate'
  return ('no window scored: in every window a reference or an estimate of some source is '
          'silent' if metric in METRICS else 'not a number')


def _value(scores: dict, metric: str, j: int) -> Optional[float]:
  """One track's value of ``metric`` for source ``j``; None where it was not scored."""
  if metric in METRICS:
    return float(scores['median'][metric][j])
  if metric in QUALITY_METRICS:
    if scores['sources'][j] not in scores.get('quality_sources', ()):
      return None
  return float(scores[metric][j])


def coverage(tracks: Dict[str, dict], source: str) -> dict:
  """Which tracks each metric's median of ``source`` covers, and why others are out.

  Returns:
    ``{'scored': {metric: n}, 'dropped': {metric: {track: why}}` (metrics
    with drops only), 'silent_estimates': [track, ...]}``; PESQ / STOI only
    where ``source`` is speech.
  """
  metrics = TABLE_METRICS + (QUALITY_METRICS if _is_speech(tracks, source) else ())
  scored = {m: 0 for m in metrics}
  dropped: Dict[str, Dict[str, str]] = {}
  silent = []
  for name, scores in tracks.items():
    if source not in scores['sources']:
      continue
    j = scores['sources'].index(source)
    if bool(scores.get('silent_estimate', [False] * (j + 1))[j]):
      silent.append(name)
    for metric in metrics:
      value = _value(scores, metric, j)
      if value is None:
        continue
      if math.isnan(value):
        dropped.setdefault(metric, {})[name] = _why_dropped(scores, j, metric)
      else:
        scored[metric] += 1
  return {'scored': scored, 'dropped': dropped, 'silent_estimates': silent}


def coverage_notes(rows: List[dict]) -> List[str]:
  """One line per row whose medians leave out tracks or score silent estimates."""
  notes = []
  for r in rows:
    parts = []
    if r.get('silent_estimates'):
      names = ', '.join(r['silent_estimates'])
      parts.append(f"silent estimate in {len(r['silent_estimates'])} of {r['n_tracks']} "
                   f'track(s) ({names}): SDR, SI-SDR and SI-SDRi score it -inf (the worst)')
    groups: Dict[Tuple[Tuple[str, str], ...], List[str]] = {}
    for metric in r.get('scored', {}):
      if r.get('dropped', {}).get(metric):
        groups.setdefault(tuple(sorted(r['dropped'][metric].items())), []).append(metric)
    for dropped, metrics in groups.items():
      why = '; '.join(f'{track}: {reason}' for track, reason in dropped)
      parts.append(f"{', '.join(metrics)} cover {r['scored'][metrics[0]]} of "
                   f"{r['n_tracks']} track(s), dropped {why}")
    if parts:
      notes.append(f"{r['method']} / {r['source']}: " + '; '.join(parts))
  return notes


def track_values(tracks: Dict[str, dict], source: str) -> Dict[str, List[float]]:
  """``{metric: [one value per track]}`` for one source (per-track medians);
  PESQ / STOI over the tracks that scored them for ``source``."""
  out = {m: [] for m in TABLE_METRICS + QUALITY_METRICS}
  for scores in tracks.values():
    if source not in scores['sources']:
      continue
    j = scores['sources'].index(source)
    for metric in out:
      value = _value(scores, metric, j)
      if value is not None:
        out[metric].append(value)
  return out


def _fmt(v: float, metric: str = '') -> str:
  digits = 3 if metric == 'STOI' else 2
  return 'nan' if math.isnan(v) else ('inf' if v == math.inf else
                                      '-inf' if v == -math.inf else f'{v:.{digits}f}')


def row_metrics(rows: List[dict]) -> Tuple[str, ...]:
  """The columns of ``rows``: :data:`TABLE_METRICS`, then PESQ / STOI if they have them."""
  return TABLE_METRICS + (QUALITY_METRICS if any('PESQ' in r for r in rows) else ())


def _cell(r: dict, metric: str) -> str:
  """A table cell; blank for PESQ / STOI of a source that is not speech."""
  if metric in QUALITY_METRICS and not r.get('speech'):
    return ''
  return _fmt(r[metric], metric)


def table_markdown(rows: List[dict]) -> str:
  """The results table as GitHub markdown (dB, two decimals; PESQ MOS-LQO, STOI), then
  a note for each row whose medians leave out tracks (:func:`coverage_notes`)."""
  metrics = row_metrics(rows)
  head = ['method', 'source'] + list(metrics) + ['tracks']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * 2 + '---:|' * (len(head) - 2)]
  for r in rows:
    cells = [r['method'], r['source']] + [_cell(r, m) for m in metrics] + [str(r['n_tracks'])]
    lines.append('| ' + ' | '.join(cells) + ' |')
  notes = coverage_notes(rows)
  if notes:
    lines += [''] + [f'- {n}' for n in notes]
  return '\n'.join(lines) + '\n'


def _write_text(path: str, text: str):
  with atomic_path(path, suffix='.tmp') as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)


def write_tables(out_dir: str, rows: List[dict], *, meta: dict) -> Dict[str, str]:
  """Writes results.md, results.csv and results.json; returns their paths."""
  paths = {k: os.path.join(out_dir, f'results.{k}') for k in ('md', 'csv', 'json')}
  metrics = row_metrics(rows)
  note = (f"Median over tracks of the per-track median over {meta['window_s']:g} s windows "
          f"(hop {meta['hop_s']:g} s) of BSS Eval v4; SI-SDR(i) over whole tracks; dB.")
  if len(metrics) > len(TABLE_METRICS):
    note += (' PESQ (ITU-T P.862.2 wide band, MOS-LQO) and STOI of the speech sources, '
             'median over tracks.')
  if meta.get('quality_note'):
    note += ' ' + meta['quality_note'] + '.'
  _write_text(paths['md'], note + '\n\n' + table_markdown(rows))
  buf = io.StringIO()
  writer = csv.writer(buf)
  writer.writerow(['method', 'source'] + list(metrics) + ['n_tracks'])
  for r in rows:
    writer.writerow([r['method'], r['source']] + [
        '' if m in QUALITY_METRICS and not r.get('speech') else
        repr(r[m]) if not math.isnan(r[m]) else 'nan' for m in metrics] + [r['n_tracks']])
  _write_text(paths['csv'], buf.getvalue())
  write_json_atomic(paths['json'], {
      **meta, 'notes': coverage_notes(rows),
      'rows': [{k: (_to_json(v) if isinstance(v, float) else v) for k, v in r.items()}
               for r in rows]})
  return paths


def write_boxplots(out_dir: str, per_track: Dict[str, Dict[str, dict]],
                   methods: Sequence[str], sources: Sequence[str]) -> Dict[str, str]:
  """One PNG per metric: a panel per source, a box per method over tracks (PESQ / STOI:
  the speech sources only).

  Returns:
    ``{metric: path}``.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  paths = {}
  for metric in metrics_of(per_track):
    panels = list(sources)
    if metric in QUALITY_METRICS:
      panels = [s for s in sources
                if any(_is_speech(per_track.get(m, {}), s) for m in methods)]
    width = min(12.0, 1.5 + 0.8 * len(methods) * len(panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 3.6), squeeze=False,
                             sharey=True)
    for ax, source in zip(axes[0], panels):
      data = []
      for method in methods:
        v = np.array(track_values(per_track.get(method, {}), source)[metric])
        data.append(v[np.isfinite(v)])
      ax.boxplot(data, showfliers=True, medianprops={'color': 'black'}, widths=0.6)
      ax.set_xticks(range(1, len(methods) + 1), methods, rotation=30, ha='right',
                    fontsize=8)
      ax.set_title(f'{metric}: {source}', fontsize=10)
      ax.grid(axis='y', alpha=0.3)
    unit = UNITS.get(metric, 'dB')
    axes[0][0].set_ylabel(f'{metric} ({unit})' if unit else metric)
    fig.tight_layout()
    path = os.path.join(out_dir, f'boxplot_{metric}.png')
    with atomic_path(path, suffix='.png') as tmp:
      fig.savefig(tmp, dpi=90, format='png')
    plt.close(fig)
    paths[metric] = path
  return paths


# -------------------------------------------------------------------- run
def run(config: ReportConfig) -> dict:
  """Scores every method on every track and writes tables, plots and the page.

  Returns:
    ``{'rows': aggregate rows, 'paths': {name: path}, 'computed': number of
    (method, track) pairs scored now, 'cached': number read from the cache,
    'quality_added': cached pairs that got PESQ / STOI now, 'quality_note': None
    or the one line saying PESQ / STOI were left out and what to install}``.

  Raises:
    ParameterError: for missing folders, tracks or sources, and files whose
      sample rate, channel count or length differ (see ``evaluation.folders``).
  """
  track_names = (list(config.tracks) if config.tracks else
                 folders.list_tracks(config.references_dir))
  methods = [name for name, _ in config.estimates]
  os.makedirs(config.out_dir, exist_ok=True)
  per_track = {m: {} for m in methods}
  tracks_info = []
  sources: List[str] = []
  computed = cached = quality_added = 0
  quality_note = None
  speech = tuple(config.speech_sources)
  iterator = track_names
  if config.progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(track_names, unit='track', desc='evaluate_separation')
  for name in iterator:
    track = folders.load_track(config.references_dir, name)
    sources += [s for s in track.source_names if s not in sources]
    wanted = [s for s in track.source_names if s in speech]
    if wanted and quality_note is None:
      quality_note = speech_quality.missing() or ''
    if quality_note:
      wanted = []
    loaded = {}
    for method, folder in config.estimates:
      ests, paths = folders.load_estimates(folder, track, method=method,
                                           pad_or_truncate=config.pad_or_truncate)
      loaded[method] = (ests, paths)
      signature = _signature(list(track.paths.values()) + list(paths.values()), config)
      cache = _cache_path(config.out_dir, method, name)
      scores = _read_cache(cache, signature)
      if scores is None:
        scores = score_track(track, ests, window_s=config.window_s, hop_s=config.hop_s,
                             filters_len=config.filters_len, speech_sources=wanted)
        _write_cache(cache, scores, signature)
        computed += 1
      else:
        cached += 1
        if set(wanted) - set(scores.get('quality_sources', ())):
          scores.update(score_quality(track, ests, wanted))
          _write_cache(cache, scores, signature)
          quality_added += 1
      if 'quality_sources' in scores:    # the table shows only what this run asks for
        scores['quality_sources'] = [q for q in scores['quality_sources'] if q in wanted]
      per_track[method][name] = scores
    media = (report_html.write_track_media(config.out_dir, track, loaded)
             if config.media else None)
    tracks_info.append({'name': name, 'sources': track.source_names, 'media': media,
                        'sample_rate': track.sample_rate,
                        'duration_s': track.mixture.shape[-1] / track.sample_rate,
                        'n_channels': track.mixture.shape[0]})
  rows = aggregate(per_track, methods, sources)
  meta = {'references_dir': os.path.abspath(config.references_dir),
          'estimates': {m: os.path.abspath(f) for m, f in config.estimates},
          'window_s': config.window_s, 'hop_s': config.hop_s,
          'filters_len': config.filters_len, 'tracks': track_names,
          'speech_sources': list(speech), 'quality_note': quality_note or None}
  paths = write_tables(config.out_dir, rows, meta=meta)
  plots = write_boxplots(config.out_dir, per_track, methods, sources)
  paths.update({f'boxplot_{k}': v for k, v in plots.items()})
  paths['html'] = report_html.write_html(
      config.out_dir, rows=rows, plots=plots, tracks=tracks_info, per_track=per_track,
      methods=methods, meta=meta, metrics=row_metrics(rows), notes=coverage_notes(rows))
  return {'rows': rows, 'paths': paths, 'computed': computed, 'cached': cached,
          'quality_added': quality_added, 'quality_note': quality_note or None}
