"""Audio files (or a folder of them) separated into one wav per source: ``separate_audio.py``.

  --input=MIX.wav    -> <out_dir>/<source>.wav, separation.json [, spectrograms.png]
  --input=FOLDER     -> <out_dir>/<file stem>/<source>.wav, ... for every audio file
                        (recursively); finished files are skipped on a rerun, and one
                        file's failure does not stop the others.

Any method of the separator seam (``experiments.separators``): the shipped
model of ``--task`` / ``--method``, or a trained one (``--model_dir``).
Outputs are float32 wavs at the input's sample rate, mono (``channels='mid'``)
or with the input's channels (``'each'``), at the input's level.

What a user owns is safe: source names must be identifiers, no output path
may be the input, and a wav that exists in the output folder but was not
written by an earlier separation there (it is not listed in that folder's
``separation.json``) is refused instead of overwritten. The outputs of one
file are one set: they are written under temporary names, the earlier run's
``separation.json`` is removed, the wavs are renamed into place and the new
``separation.json`` comes last, so a folder without ``separation.json`` holds an
incomplete set (rerun to finish it). Finished chunks are kept in
``<out_dir>/.cache`` until the run ends, so an interrupted run resumes.
"""

import dataclasses
import hashlib
import json
import os
import time
from typing import Any, Dict, List, Optional

import numpy as np

from common import compute
from common.atomic import write_json_atomic
from common.checks import check_output_dir
from common.errors import ParameterError
from common.result_cache import KeyedCache
from experiments import separators
from pipeline import audio
from pipeline.audio import AUDIO_EXTENSIONS

RECORD = 'separation.json'
CACHE = '.cache'


@dataclasses.dataclass(frozen=True)
class SeparateFilesConfig:
  """One ``separate_audio.py`` run.

  Attributes:
    input: a mixture audio file, or a folder of them (searched recursively).
    out_dir: the output folder.
    method: a method spec ``NAME[:key=value,...]`` (``separators.parse_spec``:
      a registered method and its options, ``'synthesis:decoder=vocoder'``); None:
      the method ``model_dir`` names, else basis.
    task: the source set and shipped model (piano-violin, speech-noise); None:
      piano-violin unless ``model_dir`` is given.
    model_dir: a trained model folder (with separator.json) instead of the shipped one.
    channels: mid (separate the channel mean, mono outputs) or each (every
      channel, outputs with the input's channels).
    chunk_s: seconds per chunk of the chunked inference (None: the method's; 0: whole input).
    overlap_s: cross-fade seconds between chunks (None: the method's).
    figure: write spectrograms.png beside each set (mixture and estimates).
    resume: keep finished chunks in out_dir/.cache and reuse them on a rerun.
  """

  input: str
  out_dir: str
  method: Optional[str] = None
  task: Optional[str] = None
  model_dir: Optional[str] = None
  channels: str = 'mid'
  chunk_s: Optional[float] = None
  overlap_s: Optional[float] = None
  figure: bool = True
  resume: bool = True

  def __post_init__(self):
    if not self.input:
      raise ParameterError('--input (a mixture audio file or a folder of them) is required')
    if self.channels not in separators.CHANNEL_MODES:
      raise ParameterError(f'--channels must be one of {list(separators.CHANNEL_MODES)}, '
                           f'got {self.channels!r}')
    if self.task is not None:
      separators.check_task(self.task)
    if self.method is not None:
      separators.parse_spec(self.method)


def _file_sha(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      h.update(block)
  return h.hexdigest()[:16]


def list_inputs(path: str) -> Dict[str, str]:
  """``{output sub-folder: audio file}``: ``{'': path}`` for a file, stems for a folder.

  Raises:
    ParameterError: a missing input, a folder without audio files, or two
      files with the same stem relative path.
  """
  if os.path.isfile(path):
    return {'': path}
  if not os.path.isdir(path):
    raise ParameterError(f'--input {path} does not exist')
  out: Dict[str, str] = {}
  for root, dirs, names in os.walk(path):
    dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
    for name in sorted(names):
      if name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith('.'):
        full = os.path.join(root, name)
        stem = os.path.splitext(os.path.relpath(full, path))[0]
        if stem in out:
          raise ParameterError(f'{out[stem]} and {full} would share the output folder '
                               f'{stem}/: rename one')
        out[stem] = full
  if not out:
    raise ParameterError(f'--input folder {path} holds no audio files '
                         f'({", ".join(AUDIO_EXTENSIONS)})')
  return out


def _read_record(folder: str) -> Optional[Dict[str, Any]]:
  path = os.path.join(folder, RECORD)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      doc = json.load(f)
  except (OSError, ValueError):
    return None
  return doc if isinstance(doc, dict) else None


def check_targets(folder: str, names, input_path: str):
  """Refuses outputs that would overwrite the input or a file this command did not write.

  Raises:
    ParameterError: naming the file.
  """
  record = _read_record(folder) or {}
  ours = {os.path.basename(p) for p in (record.get('sources') or {}).values()}
  if record.get('figure'):
    ours.add(os.path.basename(record['figure']))
  real_input = os.path.realpath(input_path)
  for name in list(names) + ['spectrograms.png']:
    target = os.path.join(folder, f'{name}.wav' if name != 'spectrograms.png' else name)
    if os.path.realpath(target) == real_input:
      raise ParameterError(f'the output {target} would overwrite the input; choose another '
                           '--out_dir')
    if os.path.exists(target) and os.path.basename(target) not in ours:
      raise ParameterError(f'{target} exists and was not written by an earlier separation '
                           f'there (no {RECORD} lists it); choose another --out_dir')


def _publish(folder: str, staged: Dict[str, str], record: Dict[str, Any]):
  """Moves the staged files into place as one set (see the module docstring)."""
  old = os.path.join(folder, RECORD)
  if os.path.exists(old):
    os.remove(old)
  for final, tmp in staged.items():
    os.replace(tmp, final)
  write_json_atomic(old, record)


def separate_one(separation: separators.Separation, input_path: str, folder: str, *,
                 config: SeparateFilesConfig, task: Optional[str],
                 options: Optional[Dict[str, Any]] = None, log=print) -> Dict[str, Any]:
  """Separates one file into ``folder``; returns its record (``separation.json``).

  A record there of the same input and ``separation.identity()`` (which holds the
  model and the options its output depends on) is reused (``config.resume``);
  any other is replaced. ``options`` (the method options given) are recorded as
  ``method_options``.
  """
  t0 = time.time()
  sha = _file_sha(input_path)
  identity = separation.identity()
  done = _read_record(folder)
  if (config.resume and done and done.get('input_sha256') == sha and
      done.get('identity') == identity and
      all(os.path.exists(p) for p in done.get('sources', {}).values())):
    log(f'{input_path}: done in an earlier run ({folder})')
    return dict(done, resumed=True)
  if config.resume and done and done.get('input_sha256') == sha:
    log(f'{input_path}: {folder} holds a separation with other settings or options; '
        'separating again (it is replaced)')
  check_targets(folder, separation.sources, input_path)
  y, rate = audio.load(input_path, mono=False)
  y = y[0] if y.shape[0] == 1 else y
  seconds = y.shape[-1] / rate
  channels = 1 if y.ndim == 1 else y.shape[0]
  log(f'{input_path}: {seconds:.2f} s, {channels} channel(s) at {rate} Hz -> '
      f'{separation.label} ({", ".join(separation.sources)})')
  estimates = separation.separate(y, rate)
  os.makedirs(folder, exist_ok=True)
  staged: Dict[str, str] = {}
  written: Dict[str, str] = {}
  peaks = {}
  try:
    for name in separation.sources:
      final = os.path.join(folder, f'{name}.wav')
      tmp = os.path.join(folder, f'.{name}.partial.wav')
      est = estimates[name]
      audio.write_wav(tmp, est, rate, subtype='FLOAT')
      staged[final] = tmp
      written[name] = final
      peaks[name] = float(np.max(np.abs(est)))
    figure = None
    if config.figure:
      figure = os.path.join(folder, 'spectrograms.png')
      tmp = os.path.join(folder, '.spectrograms.partial.png')
      _figure(tmp, y, estimates, rate)
      staged[figure] = tmp
  except BaseException:
    for tmp in staged.values():
      if os.path.exists(tmp):
        os.remove(tmp)
    raise
  model = separation.model
  record = {
      'input': os.path.abspath(input_path), 'input_sha256': sha, 'duration_s': seconds,
      'sample_rate': rate, 'channels': channels, 'output_channels': (
          channels if config.channels == 'each' else 1),
      'model_sample_rate': separation.sample_rate, 'method': separation.label,
      'method_options': _json_safe(options or {}), 'task': task, 'sources': written,
      'peaks': peaks, 'figure': figure,
      'identity': identity, 'chunks': dict(separation.stats),
      'model_stats': _json_safe(getattr(model, 'stats', {})),
      'settings': _json_safe(model.settings()) if hasattr(model, 'settings') else None,
      'warnings': list((getattr(model, 'stats', {}) or {}).get('warnings') or []),
      'cpu': compute.cpu_description(), 'wall_s': time.time() - t0,
      'seconds_per_audio_second': (time.time() - t0) / seconds,
      'format': 'float32 wav',
  }
  _publish(folder, staged, record)
  log(f'wrote {", ".join(written.values())} ({record["wall_s"]:.1f} s, '
      f'{record["seconds_per_audio_second"]:.2f} s per audio second)')
  return record


def _json_safe(obj):
  return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, 'tolist')
                               else str(o)))


def _figure(path: str, mixture: np.ndarray, estimates: Dict[str, np.ndarray], rate: int):
  from inversion.figures import spectrogram_figure  # pylint: disable=g-import-not-at-top
  from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
  from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
  mono = lambda a: a if a.ndim == 1 else a.mean(axis=0)
  features = FeatureConfig(sample_rate=rate, fmax=min(7600.0, rate / 2 - 1))
  clips = {'mixture': mono(mixture), **{n: mono(e) for n, e in estimates.items()}}
  spectrogram_figure(path, clips, MelTransform(features))


def run(config: SeparateFilesConfig, *, method_options: Optional[Dict[str, Any]] = None,
        log=print) -> Dict[str, Any]:
  """Separates ``config.input`` (a file or a folder); returns the summary.

  Args:
    config: the run; ``config.method`` may carry options (``'basis:phase=misi'``).
    method_options: more options of the method (keyword arguments of
      ``separators.load_separator``).
    log: progress lines.

  Raises:
    ParameterError: bad input, a method or task without a shipped model, an
      option both in ``config.method`` and ``method_options``, an option the
      method does not take, an output that would overwrite what this command
      did not write; in folder mode, after trying every file, the count of
      files that failed.
  """
  check_output_dir(config.out_dir)
  inputs = list_inputs(config.input)
  if os.path.isdir(config.input) and os.path.realpath(config.out_dir).startswith(
      os.path.realpath(config.input) + os.sep):
    raise ParameterError(f'--out_dir {config.out_dir} lies inside the --input folder; its '
                         'outputs would be read as inputs on a rerun: choose another folder')
  cache_dir = os.path.join(config.out_dir, CACHE) if config.resume else None
  method, options = (separators.merge_options(config.method, method_options)
                     if config.method is not None else (None, dict(method_options or {})))
  separation = separators.load_separator(
      method, task=config.task, model_dir=config.model_dir, channels=config.channels,
      chunk_s=config.chunk_s, overlap_s=config.overlap_s, cache_dir=cache_dir, log=log,
      **options)
  task = config.task or (None if config.model_dir else separators.DEFAULT_TASK)
  records: Dict[str, Any] = {}
  failures: List[str] = []
  for i, (stem, path) in enumerate(inputs.items()):
    folder = os.path.join(config.out_dir, stem) if stem else config.out_dir
    if len(inputs) > 1:
      log(f'[{i + 1}/{len(inputs)}] {path}')
    try:
      records[stem or os.path.basename(path)] = separate_one(
          separation, path, folder, config=config, task=task, options=options, log=log)
    except ParameterError as e:
      if len(inputs) == 1:
        raise
      failures.append(f'{path}: {e}')
      log(f'error: {path}: {e}')
  if cache_dir and not failures:
    KeyedCache(cache_dir).clear()
  if failures:
    raise ParameterError(f'{len(failures)} of {len(inputs)} files failed (the others are '
                         f'written): {failures[0]}' + (' ...' if len(failures) > 1 else ''))
  return {'n_files': len(inputs), 'records': records}
