"""The static report page and its media (spectrogram PNGs, playable wavs).

Everything the page shows lives under ``out_dir`` and is linked by relative
paths: the page works from any copy of the folder, from ``file://``, with no
server, no network and no external script, font or style sheet. Audio files
are hard links to the scored files where the filesystem allows (copies
otherwise), so the folder stays self-contained without doubling its size.
"""

import html
import math
import os
import shutil
from typing import Dict, List, Sequence, Tuple

import numpy as np

from evaluation import folders
from common.atomic import atomic_path

# Spectrogram images: log frequency (40 Hz to Nyquist), dB below the mixture's
# peak, clipped at DYNAMIC_RANGE_DB.
DYNAMIC_RANGE_DB = 80.0
_MAX_ROWS, _MAX_COLS = 192, 640


def _link_or_copy(src: str, dst: str):
  if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src) and \
      os.path.getsize(dst) == os.path.getsize(src):
    return
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  if os.path.exists(dst):
    os.remove(dst)
  try:
    os.link(src, dst)
  except OSError:
    shutil.copy2(src, dst)


def _power_db(y: np.ndarray, sample_rate: int) -> np.ndarray:
  """Log-frequency dB spectrogram of the mono mixdown, for a thumbnail.

  Args:
    y: float ``[n_channels, n_samples]``.
    sample_rate: int, Hz.

  Returns:
    float ``[rows, cols]`` (at most ``_MAX_ROWS x _MAX_COLS``), dB; rows are
    log-spaced bands from 40 Hz to Nyquist (max over the bins of a band),
    columns max-pooled frames.
  """
  from scipy import signal  # pylint: disable=g-import-not-at-top
  x = np.mean(np.asarray(y, np.float32), axis=0)
  n_fft = 2048 if sample_rate <= 48000 else 4096
  hop = int(min(n_fft, max(n_fft // 4, x.shape[-1] // (2 * _MAX_COLS))))
  _, _, z = signal.stft(x, nperseg=n_fft, noverlap=n_fft - hop, boundary=None)
  power = (np.abs(z) ** 2).astype(np.float64)                       # [n_bins, n_frames]
  bin_hz = sample_rate / n_fft
  edges = np.geomspace(40.0, sample_rate / 2, _MAX_ROWS + 1)[:-1]
  start = np.minimum(np.floor(edges / bin_hz).astype(int), power.shape[0] - 1)
  power = np.maximum.reduceat(power, start, axis=0)                 # [rows, n_frames]
  cols = -(-power.shape[1] // _MAX_COLS)
  pad = (-power.shape[1]) % cols
  power = np.pad(power, [(0, 0), (0, pad)])
  power = power.reshape(power.shape[0], power.shape[1] // cols, cols).max(axis=-1)
  return 10.0 * np.log10(np.maximum(power, 1e-20))


def _save_spectrogram(path: str, db: np.ndarray, peak_db: float):
  from matplotlib import image  # pylint: disable=g-import-not-at-top
  with atomic_path(path, suffix='.png') as tmp:
    image.imsave(tmp, np.clip(db, peak_db - DYNAMIC_RANGE_DB, peak_db), cmap='magma',
                 vmin=peak_db - DYNAMIC_RANGE_DB, vmax=peak_db, origin='lower', format='png')


def write_track_media(out_dir: str, track: folders.Track,
                      estimates: Dict[str, Tuple[np.ndarray, Dict[str, str]]]) -> dict:
  """Spectrograms and audio of one track under ``out_dir/media/<track>/``.

  Args:
    out_dir: the report folder.
    track: the references.
    estimates: ``{method: (float [n_sources, n_channels, n_samples], {source: path})}``.

  Returns:
    ``{'mixture': {'wav', 'png'}, 'reference': {source: {...}}, method:
    {source: {...}}}`` with paths relative to ``out_dir``. All spectrograms
    of a track share one colour scale (the mixture's peak).
  """
  base = os.path.join('media', track.name)
  mix_db = _power_db(track.mixture, track.sample_rate)
  peak = float(mix_db.max())

  def item(rel_dir, stem, y, src_path):
    rel_wav = os.path.join(base, rel_dir, f'{stem}.wav')
    rel_png = os.path.join(base, rel_dir, f'{stem}.png')
    wav, png = os.path.join(out_dir, rel_wav), os.path.join(out_dir, rel_png)
    _link_or_copy(src_path, wav)
    if not (os.path.exists(png) and os.path.getmtime(png) >= os.path.getmtime(src_path)):
      os.makedirs(os.path.dirname(png), exist_ok=True)
      _save_spectrogram(png, _power_db(y, track.sample_rate), peak)
    return {'wav': rel_wav, 'png': rel_png}

  out = {'mixture': item('', 'mixture', track.mixture, track.paths[folders.MIXTURE]),
         'reference': {s: item('reference', s, y, track.paths[s])
                       for s, y in track.sources.items()}}
  for method, (ests, paths) in estimates.items():
    out[method] = {s: item(method, s, ests[j], paths[s])
                   for j, s in enumerate(track.source_names)}
  return out


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 24px;
       color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; font-size: 13px; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #eef7ee; }
.plots { display: flex; flex-wrap: wrap; gap: 6px; }
.plots a { flex: 0 0 49%; } .plots img { width: 100%; border: 1px solid #eee; }
.cell img { display: block; width: 190px; height: 72px; }
.cell audio { width: 190px; height: 28px; }
.cell .score { width: 190px; }
.cell .score { font-size: 12px; color: #444; }
.meta { font-size: 13px; color: #555; }
"""


def _esc(x) -> str:
  return html.escape(str(x), quote=True)


_QUALITY = ('PESQ', 'STOI')


def _fmt(v, metric: str = '') -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return '&ndash;'
  if isinstance(v, float) and math.isinf(v):
    return '&infin;' if v > 0 else '&minus;&infin;'
  return f'{v:.3f}' if metric == 'STOI' else f'{v:.2f}'


def _media_cell(media: dict, caption: str = '') -> str:
  src_png, src_wav = _esc(media['png'].replace(os.sep, '/')), _esc(media['wav'].replace(
      os.sep, '/'))
  return (f'<div class="cell"><img src="{src_png}" alt="spectrogram">'
          f'<audio controls preload="none" src="{src_wav}"></audio>'
          f'<div class="score">{caption}</div></div>')


def write_html(out_dir: str, *, rows: List[dict], plots: Dict[str, str], tracks: List[dict],
               per_track: Dict[str, Dict[str, dict]], methods: Sequence[str],
               meta: dict, metrics: Sequence[str], notes: Sequence[str] = ()) -> str:
  """Writes ``out_dir/report.html``; returns its path.

  ``metrics`` are the table's columns, keys of every row
  (``evaluation.report.row_metrics``: BSS Eval and SI-SDR, then PESQ / STOI
  when the speech sources have them; blank for the other sources); ``notes``
  are printed under the table (``evaluation.report.coverage_notes``: tracks a
  median leaves out).
  """
  quality = [m for m in metrics if m in _QUALITY]
  parts = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<title>Separation report</title>', f'<style>{_CSS}</style>', '</head>', '<body>',
           '<h1>Separation report</h1>',
           f'<p class="meta">References: {_esc(meta["references_dir"])}<br>'
           f'{len(tracks)} track(s); BSS Eval v4 with {meta["window_s"]:g} s windows, '
           f'{meta["hop_s"]:g} s hop, {meta["filters_len"]}-tap filters; values are the '
           'median over tracks of the median over windows (silent windows skipped); SI-SDR '
           'and SI-SDRi over whole tracks; all in dB' +
           ('; PESQ (ITU-T P.862.2 wide band, MOS-LQO) and STOI of the speech sources, '
            'median over tracks' if quality else '') +
           (f'; {_esc(meta["quality_note"])}' if meta.get('quality_note') else '') +
           '. Tables: <a href="results.md">markdown'
           '</a>, <a href="results.csv">csv</a>, <a href="results.json">json</a>.</p>']
  # Table; best value per source and metric in bold.
  parts.append('<h2>Results</h2><table><tr><th>method</th><th>source</th>' +
               ''.join(f'<th>{_esc(m)}</th>' for m in metrics) + '<th>tracks</th></tr>')
  best = {}
  def shown(r, m):
    return m not in _QUALITY or r.get('speech')

  for r in rows:
    for m in metrics:
      v = r[m]
      if shown(r, m) and not math.isnan(v):
        key = (r['source'], m)
        best[key] = max(best.get(key, -math.inf), v)
  def is_best(r, m):
    return (len(methods) > 1 and shown(r, m) and not math.isnan(r[m]) and
            r[m] == best.get((r['source'], m)))

  for r in rows:
    cells = ''.join(f'<td class="num{" best" if is_best(r, m) else ""}">'
                    f'{_fmt(r[m], m) if shown(r, m) else ""}</td>' for m in metrics)
    parts.append(f'<tr><td>{_esc(r["method"])}</td><td>{_esc(r["source"])}</td>{cells}'
                 f'<td class="num">{r["n_tracks"]}</td></tr>')
  parts.append('</table>')
  if notes:
    parts.append('<ul class="meta">' + ''.join(f'<li>{_esc(n)}</li>' for n in notes) + '</ul>')
  parts.append('<h2>Distributions over tracks</h2><p class="meta">Per-track values (the '
               'median over windows for BSS Eval); click a plot to enlarge it.</p>'
               '<div class="plots">')
  for metric, path in plots.items():
    rel = _esc(os.path.relpath(path, out_dir).replace(os.sep, '/'))
    parts.append(f'<a href="{rel}"><img src="{rel}" alt="{_esc(metric)} box plot"></a>')
  parts.append('</div>')
  # Per track: mixture, then a row per source.
  for info in tracks:
    name = info['name']
    parts.append(f'<h2 id="track-{_esc(name)}">{_esc(name)}</h2>')
    parts.append(f'<p class="meta">{info["duration_s"]:.2f} s, {info["sample_rate"]} Hz, '
                 f'{info["n_channels"]} channel(s)</p>')
    media = info['media']
    if media is None:
      continue
    parts.append('<table><tr><th>mixture</th></tr><tr><td>' +
                 _media_cell(media['mixture']) + '</td></tr></table>')
    parts.append('<table><tr><th>source</th><th>reference</th>' +
                 ''.join(f'<th>{_esc(m)}</th>' for m in methods) + '</tr>')
    for j, source in enumerate(info['sources']):
      cells = [f'<td>{_esc(source)}</td>', '<td>' + _media_cell(media['reference'][source]) +
               '</td>']
      for method in methods:
        scores = per_track[method][name]
        caption = (f'SDR {_fmt(float(scores["median"]["SDR"][j]))} &middot; '
                   f'SIR {_fmt(float(scores["median"]["SIR"][j]))} &middot; '
                   f'SAR {_fmt(float(scores["median"]["SAR"][j]))} &middot; '
                   f'SI-SDR {_fmt(float(scores["SI-SDR"][j]))}')
        if quality and source in scores.get('quality_sources', ()):
          caption += ''.join(f' &middot; {m} {_fmt(float(scores[m][j]), m)}' for m in quality)
        cells.append('<td>' + _media_cell(media[method][source], caption) + '</td>')
      parts.append('<tr>' + ''.join(cells) + '</tr>')
    parts.append('</table>')
  parts += ['</body>', '</html>', '']
  path = os.path.join(out_dir, 'report.html')
  with atomic_path(path, suffix='.html.tmp') as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write('\n'.join(parts))
  return path
