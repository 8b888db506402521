"""Any set of registered separators on a references folder, scored in one table.

The references folder is the MUSDB / museval layout (``<track>/mixture.wav``
and ``<track>/<source>.wav``). Every method goes through the separator seam
(``experiments.separators``): models (``basis``, and every method registered
later) are loaded once, oracles (``IBM1``, ``IRM2``, ...) are built per track
from its true sources, and the mixture itself ("mixture-as-estimate": what not
separating scores) runs beside them. Each method's estimates go to
``methods/<label>/<track>/<source>.wav``; ``evaluation.report`` then writes the
table (median SDR / SIR / SAR / ISR / SI-SDR per method and source; PESQ and
STOI of the speech sources, ``voice`` by default, when the ``[quality]`` extra
is installed), box plots and ``report.html``. A finished (method, track) pair
is skipped on a rerun: it is neither separated nor scored again (the report's
score cache is kept), so rerunning after a new metric only adds that metric.

A method spec is ``NAME`` or ``NAME:key=value,key=value`` with the method's
options (``basis:phase=misi``; ``unet:model_dir=runs/unet``); its label in the
tables is the method's (``BASIS-misi``). BASIS reuses one separation for every
phase method of the same track (its mel estimates are kept in memory).

Used by ``make demo`` (one shipped track), ``evaluate_audio_priors.py`` (the
held-out test split of the rendered piano / violin set) and
``evaluate_separation.py --methods``.
"""

import dataclasses
import json
import os
import shutil
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from common.atomic import write_json_atomic
from common.errors import ParameterError
from common.result_cache import digest
from evaluation import speech_quality
from experiments import separators
from pipeline import audio

MIXTURE_METHOD = 'mixture-as-estimate'
DEFAULT_ORACLES = ('IBM1', 'IRM1', 'IRM2')
DONE = 'done.json'


@dataclasses.dataclass(frozen=True)
class TrackEvalConfig:
  """Attributes:
    references_dir: ``<track>/mixture.wav`` + ``<track>/<source>.wav``.
    out_dir: ``methods/<label>/<track>/<source>.wav``, ``report/``, ``summary.json``.
    tracks: track names (default: every track, sorted).
    methods: method specs (``separators.parse_spec``), models and oracles alike; the
      mixture-as-estimate is always added.
    task: the task whose shipped models the model methods load (None: the default).
    method_options: ``{method name: options}`` given to every spec of that
      method (e.g. ``{'basis': {'prior_dirs': (...), 'sampler': 'paper'}}``);
      a spec's own options win.
    extra_estimates: ``(name, folder)`` pairs of estimates made elsewhere
      (``<track>/<source>.wav``), scored in the same table.
    speech_sources: sources also scored with PESQ and STOI (``evaluation.report``).
  """

  references_dir: str
  out_dir: str
  tracks: Optional[Tuple[str, ...]] = None
  methods: Tuple[str, ...] = ('basis', 'basis:phase=misi') + DEFAULT_ORACLES
  task: Optional[str] = None
  method_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
  extra_estimates: Tuple[Tuple[str, str], ...] = ()
  speech_sources: Tuple[str, ...] = speech_quality.DEFAULT_SPEECH_SOURCES

  def __post_init__(self):
    if not self.methods and not self.extra_estimates:
      raise ParameterError('methods is empty: give at least one method')
    for spec in self.methods:
      separators.parse_spec(spec)


def _label(spec_name: str, options: Dict[str, Any]) -> str:
  return separators.get_method(spec_name).table_label(options)


def _write_track(folder: str, signals: Dict[str, np.ndarray], sample_rate: int,
                 identity: Dict[str, Any]):
  os.makedirs(folder, exist_ok=True)
  marker = os.path.join(folder, DONE)
  if os.path.exists(marker):
    os.remove(marker)
  for name, y in signals.items():
    audio.write_wav(os.path.join(folder, f'{name}.wav'), y, sample_rate, subtype='FLOAT')
  write_json_atomic(marker, identity)


def _is_done(folder: str, identity: Dict[str, Any]) -> bool:
  path = os.path.join(folder, DONE)
  if not os.path.exists(path):
    return False
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f) == json.loads(json.dumps(identity, default=str))
  except (OSError, ValueError):
    return False


class _Methods:
  """The configured methods: labels, loaded models (once), oracles per track."""

  def __init__(self, config: TrackEvalConfig, log):
    self.specs: List[Tuple[str, str, Dict[str, Any]]] = []
    for spec in config.methods:
      name, options = separators.parse_spec(spec)
      options = {**dict(config.method_options.get(name) or {}), **options}
      self.specs.append((_label(name, options), name, options))
    labels = [label for label, _, _ in self.specs]
    if len(set(labels)) != len(labels):
      raise ParameterError(f'two method specs give the same table label: {labels}')
    self.config = config
    self.log = log
    self._loaded: Dict[str, separators.Separation] = {}

  def labels(self) -> List[str]:
    return [label for label, _, _ in self.specs] + [MIXTURE_METHOD]

  def separation(self, label: str, name: str, options: Dict[str, Any], track) -> Any:
    if separators.get_method(name).oracle is not None:
      refs = {n: s.mean(axis=0) for n, s in track.sources.items()}
      return separators.oracle_separator(name, refs, track.sample_rate, **options)
    if label not in self._loaded:
      opts = dict(options)
      model_dir = opts.pop('model_dir', None)
      self._loaded[label] = separators.load_separator(
          name, task=self.config.task if model_dir is None else None, model_dir=model_dir,
          log=None, **opts)
    return self._loaded[label]


def separate_track(methods: _Methods, track, methods_dir: str, *, log=print) -> Dict[str, Any]:
  """One track through every method; returns seconds per method."""
  mixture = track.mixture.mean(axis=0)
  timing = {}
  for label, name, options in methods.specs:
    folder = os.path.join(methods_dir, label, track.name)
    sep = methods.separation(label, name, options, track)
    # The inputs' content, not only their paths: a references folder rewritten in place
    # (a fixed reference gain, another render) must not keep the old separations; an
    # oracle also depends on the true sources.
    identity = {'method': label, 'separation': sep.identity(),
                'mixture': track.paths['mixture'], 'input': digest(mixture)}
    if separators.get_method(name).oracle is not None:
      identity['references'] = {n: digest(s) for n, s in sorted(track.sources.items())}
    if _is_done(folder, identity):
      continue
    missing = [s for s in sep.sources if s not in track.sources]
    if missing:
      raise ParameterError(f'{label} separates {list(sep.sources)}, but track {track.name} '
                           f'has no reference for {missing}')
    t0 = time.time()
    estimates = sep.separate(mixture, track.sample_rate)
    timing[label] = time.time() - t0
    _write_track(folder, estimates, track.sample_rate, identity)
  folder = os.path.join(methods_dir, MIXTURE_METHOD, track.name)
  identity = {'method': MIXTURE_METHOD}
  written = [os.path.join(folder, f'{n}.wav') for n in track.sources]
  # Rewritten only when the reference mixture is newer (a rewrite would void the scores).
  if not (_is_done(folder, identity) and all(
      os.path.exists(p) and os.path.getmtime(p) >= os.path.getmtime(track.paths['mixture'])
      for p in written)):
    _write_track(folder, {n: mixture for n in track.sources}, track.sample_rate, identity)
  return timing


def run(config: TrackEvalConfig, *, log=print) -> Dict[str, Any]:
  """Separates every track with every method (finished ones are skipped) and scores them."""
  from evaluation import folders  # pylint: disable=g-import-not-at-top
  from evaluation import report  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  tracks = list(config.tracks) if config.tracks else folders.list_tracks(config.references_dir)
  methods = _Methods(config, log)
  methods_dir = os.path.join(config.out_dir, 'methods')
  timing_path = os.path.join(config.out_dir, 'timing.json')
  timing: Dict[str, Any] = {}
  if os.path.exists(timing_path):
    with open(timing_path, encoding='utf-8') as f:
      timing = json.load(f)
  durations = {}
  for i, name in enumerate(tracks):
    track = folders.load_track(config.references_dir, name)
    durations[name] = track.mixture.shape[-1] / track.sample_rate
    seconds = separate_track(methods, track, methods_dir, log=log)
    if not seconds:
      log(f'[{i + 1}/{len(tracks)}] {name}: done in an earlier run')
    else:
      log(f'[{i + 1}/{len(tracks)}] {name}: ' + ', '.join(
          f'{label} {s:.1f} s' for label, s in seconds.items()))
      timing.setdefault(name, {}).update(seconds)
      write_json_atomic(timing_path, timing)
  report_dir = os.path.join(config.out_dir, 'report')
  # The page, tables and plots are written anew; the score cache (scores/, checked
  # against each file's size and time) and the media (checked by time) are kept.
  if os.path.isdir(report_dir):
    for entry in os.listdir(report_dir):
      if entry not in ('scores', 'media'):
        path = os.path.join(report_dir, entry)
        if os.path.isdir(path):
          shutil.rmtree(path)
        else:
          os.remove(path)
  result = report.run(report.ReportConfig(
      references_dir=config.references_dir, out_dir=report_dir, tracks=tuple(tracks),
      estimates=tuple((m, os.path.join(methods_dir, m)) for m in methods.labels()) +
      tuple(config.extra_estimates), speech_sources=tuple(config.speech_sources)))
  if result['quality_note']:
    log(result['quality_note'])
  speed = {}
  for label in methods.labels()[:-1]:
    ratios = [timing[t][label] / durations[t] for t in tracks
              if label in timing.get(t, {}) and t in durations]
    if ratios:
      speed[label] = float(np.median(ratios))
  from common import compute  # pylint: disable=g-import-not-at-top
  summary = {
      'n_tracks': len(tracks), 'methods': methods.labels(), 'rows': result['rows'],
      'tables': result['paths'], 'report_html': os.path.join(report_dir, 'report.html'),
      'seconds_per_audio_second_median': speed, 'cpu': compute.cpu_description(),
      'quality_note': result['quality_note'], 'scored_now': result['computed'],
      'scored_before': result['cached'], 'quality_added': result['quality_added'],
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
