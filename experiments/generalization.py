"""The generalisation matrix: every method on every condition, one table and one heat map.

A condition is a test set the project renders itself (nothing is downloaded):

- ``piano-violin``: held-out pieces (the test works) rendered with the training
  soundfonts ("seen timbre") or with soundfonts no model trained on ("unseen
  timbre": MuseScore_General and the csound GM bank), at equal level or at a
  natural balance drawn in -18 .. +18 dB (``datagen.music_set``);
- ``speech-noise``: a voice heard in training ("seen voice": the train speaker,
  other clips) or not ("unseen voice": the test speaker), with noise at an SNR
  in -5 .. 0 dB or 0 .. +5 dB (``datagen.voice_noise``).

Every method with a shipped model for the task (``experiments.separators``),
the IRM2 oracle and the mixture itself separate each condition's tracks
(``experiments.evaluate_tracks``: BSS Eval v4, SI-SDR; a report page with players
per condition); the matrix (method x condition, median and interquartile range
of the SDR over tracks, per source) goes to ``matrix.md`` / ``matrix.json``, the
heat map of the median SDR improvement over the mixture to ``matrix.png`` and
an index page linking the condition reports to ``index.html``. For speech-noise
the voice also gets PESQ (wide band) and STOI tables (method x condition, median
and interquartile range) and their heat map ``matrix_quality.png``, when the
``[quality]`` extra (``pip install pesq pystoi``) is installed; without it one
line says so. Everything resumes: rendered sets, separated tracks and scores are
kept, so rerunning after a new metric only computes that metric.

  python evaluate_generalization.py --task=piano-violin --n_tracks=3 --out_dir=out/matrix
"""

import dataclasses
import html
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.atomic import atomic_path, write_json_atomic
from common.errors import ParameterError
from evaluation.speech_quality import METRICS as QUALITY_METRICS
from experiments import evaluate_tracks
from experiments import separators


@dataclasses.dataclass(frozen=True)
class Condition:
  """One test set of the matrix.

  Attributes:
    name: folder-safe key (``unseen-natural``).
    title: the column heading (``unseen timbre, natural levels``).
    split: the builder's split spec (``test:4200:N:musescore_general+csound_gmbank``;
      ``N`` is replaced by the track count).
    options: builder options (music: ``equal_share``; speech: ``snr_range_db``).
  """

  name: str
  title: str
  split: str
  options: Tuple[Tuple[str, Any], ...] = ()


_SEEN_FONTS = 'fluidr3_gm+fluidr3mono_gm+timgm6mb'
_UNSEEN_FONTS = 'musescore_general+csound_gmbank'
CONDITIONS: Dict[str, Tuple[Condition, ...]] = {
    'piano-violin': (
        Condition('seen-equal', 'seen timbre, equal level', f'test:4100:N:{_SEEN_FONTS}',
                  (('equal_share', 1.0),)),
        Condition('seen-natural', 'seen timbre, natural levels', f'test:4200:N:{_SEEN_FONTS}',
                  (('equal_share', 0.0),)),
        Condition('unseen-equal', 'unseen timbre, equal level', f'test:4300:N:{_UNSEEN_FONTS}',
                  (('equal_share', 1.0),)),
        Condition('unseen-natural', 'unseen timbre, natural levels',
                  f'test:4400:N:{_UNSEEN_FONTS}', (('equal_share', 0.0),)),
    ),
    'speech-noise': (
        Condition('seen-low', 'seen voice, SNR -5..0 dB', 'train:5100:N',
                  (('snr_range_db', (-5.0, 0.0)),)),
        Condition('seen-high', 'seen voice, SNR 0..5 dB', 'train:5200:N',
                  (('snr_range_db', (0.0, 5.0)),)),
        Condition('unseen-low', 'unseen voice, SNR -5..0 dB', 'test:5300:N',
                  (('snr_range_db', (-5.0, 0.0)),)),
        Condition('unseen-high', 'unseen voice, SNR 0..5 dB', 'test:5400:N',
                  (('snr_range_db', (0.0, 5.0)),)),
    ),
}
ORACLE = 'IRM2'


@dataclasses.dataclass(frozen=True)
class MatrixConfig:
  """``evaluate_generalization.py``.

  Attributes:
    out_dir: ``sets/`` (rendered test sets), ``references/``, ``eval/<condition>/``
      (separations and each condition's report.html), ``matrix.{md,json,png}``,
      ``index.html``.
    task: piano-violin or speech-noise.
    n_tracks: tracks per condition.
    methods: method specs (default: every method with a shipped model for the
      task, then the IRM2 oracle).
    conditions: condition names (default: all of the task's).
    duration_s: seconds per rendered track.
    pieces_cache: the music21 parse cache (``render_music.py``'s ``pieces/``;
      parsing the corpus takes minutes once); None: ``out_dir/sets/pieces``.
  """

  out_dir: str
  task: str = 'piano-violin'
  n_tracks: int = 3
  methods: Optional[Tuple[str, ...]] = None
  conditions: Optional[Tuple[str, ...]] = None
  duration_s: Optional[float] = None
  pieces_cache: Optional[str] = None

  def __post_init__(self):
    separators.check_task(self.task)
    if self.task not in CONDITIONS:
      raise ParameterError(f'no conditions are defined for --task={self.task}')
    if not isinstance(self.n_tracks, int) or not 1 <= self.n_tracks <= 999:
      raise ParameterError(f'--n_tracks must be an int in [1, 999], got {self.n_tracks!r}')
    known = [c.name for c in CONDITIONS[self.task]]
    for name in self.conditions or ():
      if name not in known:
        raise ParameterError(f'unknown condition {name!r} of --task={self.task}; '
                             f'choose from {known}')

  def selected(self) -> List[Condition]:
    return [c for c in CONDITIONS[self.task]
            if not self.conditions or c.name in self.conditions]

  def method_specs(self) -> Tuple[str, ...]:
    if self.methods:
      return tuple(self.methods)
    shipped = sorted(m for (t, m) in separators.shipped_models() if t == self.task)
    if not shipped:
      raise ParameterError(f'no shipped model for --task={self.task}; pass --methods')
    return tuple(shipped) + (ORACLE,)


def _music_set(config: MatrixConfig, cond: Condition, n: int, folder: str) -> str:
  from datagen import music_set  # pylint: disable=g-import-not-at-top
  options = dict(cond.options)
  if config.duration_s:
    options['duration_s'] = config.duration_s
  cache = config.pieces_cache or os.path.join(config.out_dir, 'sets', 'pieces')
  music_set.build(music_set.MusicSetConfig(
      out_dir=folder, splits=(cond.split.replace(':N', f':{n}', 1),), cache_dir=cache,
      **options), progress=False)
  name = cond.split.split(':')[0]
  return os.path.join(folder, name)


def _voice_set(config: MatrixConfig, cond: Condition, n: int, folder: str) -> str:
  from datagen import voice_noise  # pylint: disable=g-import-not-at-top
  options = dict(cond.options)
  if config.duration_s:
    options['duration_s'] = config.duration_s
  split, seed, _ = cond.split.split(':')
  voice_noise.build(voice_noise.VoiceNoiseConfig(
      out_dir=folder, splits=((split, int(seed), n),), **options), progress=False)
  return os.path.join(folder, split)


def _references_from_music(render_dir: str, refs: str, n: int) -> List[str]:
  return evaluate_tracks.tracks_from_render(render_dir, refs, n_tracks=n)


def _references_from_voice(split_dir: str, refs: str, n: int) -> List[str]:
  """``NNNN/{mix_snr_XX,voice,noise}.wav`` -> ``<track>/{mixture,voice,noise}.wav``.

  The split's ``noise.wav`` is at 0 dB SNR (the mixture is ``voice + noise_gain(snr)
  * noise``); the reference is the noise as it is in the mixture, so that the
  references sum to it (the oracles' masks need that). A reference written
  unscaled by an earlier version is rewritten.
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from pipeline import waveform_pairs  # pylint: disable=g-import-not-at-top
  names = []
  for folder, snr in waveform_pairs.check_split(split_dir)[:n]:
    name = os.path.basename(folder)
    dest = os.path.join(refs, name)
    os.makedirs(dest, exist_ok=True)
    for role, filename in (('mixture', waveform_pairs.mixture_name(snr)),
                           ('voice', waveform_pairs.VOICE_WAV)):
      target = os.path.join(dest, f'{role}.wav')
      if not os.path.exists(target):
        shutil.copyfile(os.path.join(folder, filename), target)
    noise, rate = sf.read(os.path.join(folder, waveform_pairs.NOISE_WAV), dtype='float32')
    noise = (noise * np.float32(waveform_pairs.noise_gain(snr))).astype(np.float32)
    target = os.path.join(dest, 'noise.wav')
    if not (os.path.exists(target) and np.allclose(sf.read(target, dtype='float32')[0], noise,
                                                   atol=1e-6)):
      with atomic_path(target) as tmp:
        sf.write(tmp, noise, rate, subtype='FLOAT', format='WAV')
    names.append(name)
  return names


_BUILDERS: Dict[str, Tuple[Callable, Callable]] = {
    'piano-violin': (_music_set, _references_from_music),
    'speech-noise': (_voice_set, _references_from_voice),
}


def prepare_condition(config: MatrixConfig, cond: Condition, log=print) -> str:
  """Renders (or finds) the condition's set; returns its references folder."""
  build, lay_out = _BUILDERS[config.task]
  folder = os.path.join(config.out_dir, 'sets', cond.name)
  refs = os.path.join(config.out_dir, 'references', cond.name)
  t0 = time.time()
  split_dir = build(config, cond, config.n_tracks, folder)
  lay_out(split_dir, refs, config.n_tracks)
  log(f'{cond.title}: {config.n_tracks} track(s) ready ({time.time() - t0:.0f} s)')
  return refs


def _cell(row: Dict[str, Any]) -> str:
  q = row.get('quartiles', {}).get('SDR', [float('nan')] * 2)
  return f"{row['SDR']:.1f} [{q[0]:.1f}, {q[1]:.1f}]"


def matrix_rows(results: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
  """One row per (method, source): the SDR median and quartiles per condition, and SDRi."""
  rows: Dict[Tuple[str, str], Dict[str, Any]] = {}
  for cond, summary in results.items():
    mixture = {r['source']: r['SDR'] for r in summary['rows']
               if r['method'] == evaluate_tracks.MIXTURE_METHOD}
    for r in summary['rows']:
      key = (r['method'], r['source'])
      out = rows.setdefault(key, {'method': r['method'], 'source': r['source'],
                                  'cells': {}})
      cell = out['cells'][cond] = {
          'SDR': r['SDR'], 'SDRi': r['SDR'] - mixture[r['source']],
          'quartiles': r.get('quartiles', {}).get('SDR'),
          'SI-SDR': r['SI-SDR'], 'n_tracks': r['n_tracks'], 'text': _cell(r)}
      if r.get('speech'):
        for metric in QUALITY_METRICS:
          q = r.get('quartiles', {}).get(metric, [float('nan')] * 2)
          digits = 3 if metric == 'STOI' else 2
          cell[metric] = {'median': r[metric], 'quartiles': q,
                          'text': f"{r[metric]:.{digits}f} [{q[0]:.{digits}f}, "
                                  f"{q[1]:.{digits}f}]"}
  return list(rows.values())


def quality_markdown(rows: List[Dict[str, Any]], conditions: Sequence[Condition]) -> str:
  """PESQ and STOI tables (method x condition) of the speech sources; '' if none."""
  speech = [r for r in rows if any(QUALITY_METRICS[0] in c for c in r['cells'].values())]
  if not speech:
    return ''
  lines = []
  for metric, title in (('PESQ', 'PESQ (ITU-T P.862.2 wide band, MOS-LQO)'),
                        ('STOI', 'STOI')):
    lines += ['', f'{title} of the speech source(s), median over tracks [25th, 75th '
              'percentile]:', '',
              '| method | source | ' + ' | '.join(c.title for c in conditions) + ' |',
              '|---|---|' + '---:|' * len(conditions)]
    for r in speech:
      cells = [r['cells'].get(c.name, {}).get(metric, {}).get('text', '') for c in conditions]
      lines.append(f"| {r['method']} | {r['source']} | " + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def quality_heat_map(path: str, rows: List[Dict[str, Any]], conditions: Sequence[Condition]):
  """Median PESQ and STOI of the speech sources, method x condition, side by side."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  speech = [r for r in rows if any(QUALITY_METRICS[0] in c for c in r['cells'].values())]
  fig, axes = plt.subplots(1, 2, figsize=(2.0 + 3.6 * len(conditions),
                                          1.1 + 0.42 * len(speech)), squeeze=False)
  for ax, metric, (lo, hi) in zip(axes[0], QUALITY_METRICS, ((1.0, 4.5), (0.5, 1.0))):
    values = np.array([[r['cells'].get(c.name, {}).get(metric, {}).get('median', np.nan)
                        for c in conditions] for r in speech], np.float64)
    im = ax.imshow(values, cmap='viridis', vmin=lo, vmax=hi, aspect='auto')
    ax.set_xticks(range(len(conditions)), [c.title.replace(', ', ',\n') for c in conditions],
                  fontsize=8)
    ax.set_yticks(range(len(speech)), [f"{r['method']} / {r['source']}" for r in speech],
                  fontsize=8)
    for i in range(values.shape[0]):
      for j in range(values.shape[1]):
        if np.isfinite(values[i, j]):
          ax.text(j, i, f'{values[i, j]:.2f}', ha='center', va='center', fontsize=8,
                  color='white' if values[i, j] < lo + 0.6 * (hi - lo) else 'black')
    fig.colorbar(im, ax=ax)
    ax.set_title(f'median {metric}' + (' (wide band)' if metric == 'PESQ' else ''),
                 fontsize=9)
  fig.tight_layout()
  with atomic_path(path, suffix='.tmp.png') as tmp:
    fig.savefig(tmp, dpi=110)
  plt.close(fig)


def markdown(rows: List[Dict[str, Any]], conditions: Sequence[Condition], *, header: str) -> str:
  lines = [header, '',
           '| method | source | ' + ' | '.join(c.title for c in conditions) + ' |',
           '|---|---|' + '---:|' * len(conditions)]
  for r in rows:
    cells = [r['cells'].get(c.name, {}).get('text', '') for c in conditions]
    lines.append(f"| {r['method']} | {r['source']} | " + ' | '.join(cells) + ' |')
  lines += ['', 'Cells: median SDR over tracks, dB [25th, 75th percentile] (BSS Eval v4, '
            '1 s windows, median over windows per track).']
  return '\n'.join(lines) + '\n'


def heat_map(path: str, rows: List[Dict[str, Any]], conditions: Sequence[Condition]):
  """Median SDR improvement over the mixture, method/source x condition."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  shown = [r for r in rows if r['method'] != evaluate_tracks.MIXTURE_METHOD]
  values = np.array([[r['cells'].get(c.name, {}).get('SDRi', np.nan) for c in conditions]
                     for r in shown], np.float64)
  fig, ax = plt.subplots(figsize=(2.2 + 1.9 * len(conditions), 0.9 + 0.45 * len(shown)))
  lim = max(1.0, float(np.nanmax(np.abs(values)))) if np.isfinite(values).any() else 1.0
  im = ax.imshow(values, cmap='RdBu', vmin=-lim, vmax=lim, aspect='auto')
  ax.set_xticks(range(len(conditions)), [c.title.replace(', ', ',\n') for c in conditions],
                fontsize=8)
  ax.set_yticks(range(len(shown)), [f"{r['method']} / {r['source']}" for r in shown],
                fontsize=8)
  for i in range(values.shape[0]):
    for j in range(values.shape[1]):
      if np.isfinite(values[i, j]):
        ax.text(j, i, f'{values[i, j]:+.1f}', ha='center', va='center', fontsize=8)
  fig.colorbar(im, ax=ax, label='SDRi (dB)')
  ax.set_title('median SDR improvement over the unprocessed mixture (dB)', fontsize=9)
  fig.tight_layout()
  with atomic_path(path, suffix='.tmp.png') as tmp:
    fig.savefig(tmp, dpi=110)
  plt.close(fig)


def index_page(path: str, config: MatrixConfig, conditions: Sequence[Condition], table: str,
               *, quality_png: bool = False):
  links = '\n'.join(
      f'<li><a href="eval/{c.name}/report/report.html">{html.escape(c.title)}</a></li>'
      for c in conditions)
  quality = ('<p><img src="matrix_quality.png" alt="PESQ and STOI heat map"></p>'
             if quality_png else '')
  body = (f'<h1>Generalisation matrix: {html.escape(config.task)}</h1>'
          f'<p><img src="matrix.png" alt="heat map"></p>{quality}'
          f'<pre>{html.escape(table)}</pre>'
          f'<h2>Listen, condition by condition</h2><ul>{links}</ul>')
  with atomic_path(path) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(f'<!doctype html><meta charset="utf-8"><title>Generalisation matrix</title>'
              f'<body style="font-family:sans-serif">{body}</body>')


def run(config: MatrixConfig, *, log=print) -> Dict[str, Any]:
  """Renders, separates and scores every condition; writes the matrix; returns its json."""
  from common import compute  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  specs = config.method_specs()
  conditions = config.selected()
  results = {}
  for i, cond in enumerate(conditions):
    log(f'[{i + 1}/{len(conditions)}] {cond.title}')
    refs = prepare_condition(config, cond, log=log)
    results[cond.name] = evaluate_tracks.run(evaluate_tracks.TrackEvalConfig(
        references_dir=refs, out_dir=os.path.join(config.out_dir, 'eval', cond.name),
        methods=specs, task=config.task), log=lambda s: None)
  rows = matrix_rows(results)
  speed = {}
  for summary in results.values():
    for label, value in summary['seconds_per_audio_second_median'].items():
      speed.setdefault(label, []).append(value)
  header = (f'{config.task}: {config.n_tracks} track(s) per condition; '
            f'CPU {compute.cpu_description()}')
  table = markdown(rows, conditions, header=header) + quality_markdown(rows, conditions)
  notes = sorted({s['quality_note'] for s in results.values() if s.get('quality_note')})
  for note in notes:
    log(note)
    table += '\n' + note + '\n'
  quality_png = bool(quality_markdown(rows, conditions))
  doc = {'task': config.task, 'n_tracks': config.n_tracks, 'methods': list(specs),
         'conditions': [dataclasses.asdict(c) for c in conditions], 'rows': rows,
         'seconds_per_audio_second': {k: float(np.median(v)) for k, v in speed.items()},
         'cpu': compute.cpu_description(), 'wall_s': time.time() - t0,
         'quality_notes': notes}
  write_json_atomic(os.path.join(config.out_dir, 'matrix.json'), doc)
  with atomic_path(os.path.join(config.out_dir, 'matrix.md')) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(table)
  heat_map(os.path.join(config.out_dir, 'matrix.png'), rows, conditions)
  if quality_png:
    quality_heat_map(os.path.join(config.out_dir, 'matrix_quality.png'), rows, conditions)
  index_page(os.path.join(config.out_dir, 'index.html'), config, conditions, table,
             quality_png=quality_png)
  log(table)
  return doc
