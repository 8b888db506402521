"""Separate a references folder with BASIS and score it against the oracles.

The references folder is the MUSDB / museval layout (``<track>/mixture.wav``
and ``<track>/<source>.wav``). For every track, ``separate_audio``'s pipeline
separates the mixture once and inverts the separated mel spectrograms with
each phase method asked for (``BASIS-wiener``, ``BASIS-misi``, ...); the
oracles (IBM / IRM / Wiener from the true sources) and the mixture itself
("mixture-as-estimate": what not separating scores) run beside it; then
``evaluation.report`` writes the table (median SDR / SIR / SAR / ISR /
SI-SDR per method and source), box plots and ``report.html``.

Used by ``make demo`` (one shipped track) and ``evaluate_audio_priors.py``
(the held-out test split of the rendered piano / violin set).
"""

import dataclasses
import os
import shutil
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from experiments import audio_separation
from pipeline import audio
from common.atomic import write_json_atomic
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform

MIXTURE_METHOD = 'mixture-as-estimate'
DEFAULT_ORACLES = ('IBM1', 'IRM1', 'IRM2')


@dataclasses.dataclass(frozen=True)
class TrackEvalConfig:
  """Attributes:
    references_dir: ``<track>/mixture.wav`` + ``<track>/<source>.wav``.
    out_dir: ``methods/<method>/<track>/<source>.wav``, ``separation/<track>/``
      (each track's separate_audio output), ``report/``, ``summary.json``.
    tracks: track names (default: every track, sorted).
    prior_dirs: one prior per source; the sources are named after them.
    phases: inversion methods applied to the one separation of each track.
    magnitude: mel -> linear magnitude of every phase method
      (``audio_separation.AudioSeparationConfig.magnitude``).
    oracles: oracle names (``baselines.oracles.parse_method``).
    sampler, steps_per_sigma, step_size, start_level, denoise, batch_size, precision,
      hop_frames: BASIS settings (``audio_separation.AudioSeparationConfig``).
  """

  references_dir: str
  out_dir: str
  tracks: Optional[Tuple[str, ...]] = None
  prior_dirs: Tuple[str, ...] = audio_separation.DEFAULT_PRIOR_DIRS
  phases: Tuple[str, ...] = ('wiener', 'misi')
  magnitude: str = 'auto'
  oracles: Tuple[str, ...] = DEFAULT_ORACLES
  sampler: str = 'fast'
  steps_per_sigma: Any = None
  step_size: float = 2e-5
  start_level: Optional[int] = None
  denoise: Optional[bool] = None
  batch_size: int = 8
  hop_frames: int = 48
  precision: str = 'auto'

  def __post_init__(self):
    if not self.phases:
      raise ParameterError('phases is empty: give at least one inversion method')


def _write_track(folder: str, signals: Dict[str, np.ndarray], sample_rate: int):
  os.makedirs(folder, exist_ok=True)
  for name, y in signals.items():
    audio.write_wav(os.path.join(folder, f'{name}.wav'), y, sample_rate, subtype='FLOAT')


def separate_track(config: TrackEvalConfig, track: str, *, log=print) -> Dict[str, Any]:
  """One track: BASIS once, every phase method, the mixture-as-estimate; returns timing."""
  methods_dir = os.path.join(config.out_dir, 'methods')
  mixture_path = os.path.join(config.references_dir, track, 'mixture.wav')
  sep_dir = os.path.join(config.out_dir, 'separation', track)
  sep = audio_separation.run(audio_separation.AudioSeparationConfig(
      input=mixture_path, out_dir=sep_dir, prior_dirs=tuple(config.prior_dirs),
      steps_per_sigma=config.steps_per_sigma, step_size=config.step_size,
      sampler=config.sampler, start_level=config.start_level, denoise=config.denoise,
      batch_size=config.batch_size, hop_frames=config.hop_frames,
      precision=config.precision, magnitude=config.magnitude, phase=config.phases[0],
      figure=False), log=log)
  rate = sep['sample_rate']
  mixture, _ = audio.load(mixture_path, sample_rate=rate)
  names = list(sep['sources'])
  signals = {f'BASIS-{config.phases[0]}': {n: audio.load(p)[0] for n, p in sep['sources'].items()}}
  if len(config.phases) > 1:
    images = np.load(os.path.join(sep_dir, 'estimates_mel.npy'))
    transform = MelTransform(FeatureConfig.from_dict(sep['features']))
    gain = 10.0 ** (sep['input_gain_db'] / 20.0)
    for phase in config.phases[1:]:
      waves = audio_separation.images_to_waveforms(images, mixture * np.float32(gain),
                                                    transform, magnitude=config.magnitude,
                                                    phase=phase)
      signals[f'BASIS-{phase}'] = {n: w / gain for n, w in zip(names, waves)}
  signals[MIXTURE_METHOD] = {n: mixture for n in names}
  for method, sig in signals.items():
    _write_track(os.path.join(methods_dir, method, track), sig, rate)
  return {'duration_s': sep['duration_s'], 'separation_s': sep['separation_s'],
          'magnitude': sep['magnitude'],
          'sources': names, 'precision': sep['precision'], 'cpu': sep['cpu']}


def method_names(config: TrackEvalConfig) -> List[str]:
  return [f'BASIS-{p}' for p in config.phases] + list(config.oracles) + [MIXTURE_METHOD]


def run(config: TrackEvalConfig, *, log=print) -> Dict[str, Any]:
  """Separates every track (a finished track is skipped on a rerun) and scores all methods."""
  from baselines import oracles  # pylint: disable=g-import-not-at-top
  from evaluation import folders  # pylint: disable=g-import-not-at-top
  from evaluation import report  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  tracks = list(config.tracks) if config.tracks else folders.list_tracks(config.references_dir)
  methods_dir = os.path.join(config.out_dir, 'methods')
  timing_path = os.path.join(config.out_dir, 'timing.json')
  timing: Dict[str, Any] = {}
  if os.path.exists(timing_path):
    import json  # pylint: disable=g-import-not-at-top
    with open(timing_path, encoding='utf-8') as f:
      timing = json.load(f)
  for i, track in enumerate(tracks):
    if track in timing and all(
        os.path.isdir(os.path.join(methods_dir, f'BASIS-{p}', track)) for p in config.phases):
      log(f'[{i + 1}/{len(tracks)}] {track}: done in an earlier run')
      continue
    log(f'[{i + 1}/{len(tracks)}] {track}')
    timing[track] = separate_track(config, track, log=log)
    write_json_atomic(timing_path, timing)
  log(f'oracles {", ".join(config.oracles)} from the true sources')
  oracles.run(oracles.OracleRunConfig(
      references_dir=config.references_dir, out_dir=methods_dir, tracks=tuple(tracks),
      oracles=tuple(oracles.parse_method(m) for m in config.oracles)))
  report_dir = os.path.join(config.out_dir, 'report')
  shutil.rmtree(report_dir, ignore_errors=True)     # BASIS estimates may be new
  result = report.run(report.ReportConfig(
      references_dir=config.references_dir, out_dir=report_dir, tracks=tuple(tracks),
      estimates=tuple((m, os.path.join(methods_dir, m)) for m in method_names(config))))
  per_patch = [t['separation_s'] / t['duration_s'] * 2.04 for t in timing.values()
               if t['separation_s']]
  summary = {
      'n_tracks': len(tracks), 'rows': result['rows'], 'tables': result['paths'],
      'report_html': os.path.join(report_dir, 'report.html'),
      'separation_s_per_2_04_s_median': float(np.median(per_patch)) if per_patch else None,
      'cpu': next(iter(timing.values()))['cpu'] if timing else None,
      'config': {k: list(v) if isinstance(v, tuple) else v
                 for k, v in dataclasses.asdict(config).items()},
      'wall_s': time.time() - t0}
  write_json_atomic(os.path.join(config.out_dir, 'summary.json'), summary)
  log('\n' + report.table_markdown(result['rows']))
  return summary


def tracks_from_render(render_dir: str, references_dir: str, *, n_tracks: Optional[int] = None,
                       sources: Sequence[str] = ('piano', 'violin')) -> List[str]:
  """Lays out a rendered split (``render_instruments.py``) as a references folder.

  ``<render_dir>/{mixture,piano,violin}/NNNNN.wav`` -> ``<references_dir>/NNNNN/
  {mixture,piano,violin}.wav`` (copies; the first ``n_tracks`` clips).

  Raises:
    ParameterError: if the render folder lacks a source folder or a clip.
  """
  for name in ('mixture',) + tuple(sources):
    if not os.path.isdir(os.path.join(render_dir, name)):
      raise ParameterError(f'{render_dir} has no {name}/ folder (expected the layout of '
                           'render_instruments.py)')
  ids = sorted(f[:-4] for f in os.listdir(os.path.join(render_dir, 'mixture'))
               if f.endswith('.wav'))[:n_tracks]
  if not ids:
    raise ParameterError(f'{render_dir}/mixture holds no wav files')
  for clip in ids:
    dest = os.path.join(references_dir, clip)
    os.makedirs(dest, exist_ok=True)
    for name in ('mixture',) + tuple(sources):
      src = os.path.join(render_dir, name, f'{clip}.wav')
      if not os.path.exists(src):
        raise ParameterError(f'{src} is missing (clip {clip})')
      if not os.path.exists(os.path.join(dest, f'{name}.wav')):
        shutil.copyfile(src, os.path.join(dest, f'{name}.wav'))
  return ids
