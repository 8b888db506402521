"""The separator seam for waveforms: one protocol, one registry, what every method shares.

A *separator* is any object with

- ``sources``: tuple of source names (``('piano', 'violin')``);
- ``sample_rate``: int, Hz, the rate it works at;
- ``separate(audio, sample_rate) -> {source: array}``: float32 mono
  ``[n_samples]`` at ``sample_rate`` in, one ``[n_samples]`` array per source out.

and optionally ``input_peak`` (float: the mixture peak its models were trained
at; the mixture is scaled to it and the estimates back), ``chunk_s`` /
``overlap_s`` (its preferred chunk length and cross-fade, seconds),
``scale_invariant`` (True when its output level is arbitrary, as under an
SI-SNR loss) and ``identity()`` (a json-able description of the model and
settings; where present, finished chunks are cached and a rerun resumes).

:class:`Separation` wraps any separator with what is done once for all of them:

- channels: ``'mid'`` (default) separates the mean of the channels and returns
  mono estimates; ``'each'`` separates every channel and returns
  ``[n_channels, n_samples]`` estimates;
- resampling to the separator's rate and back to the input's;
- the input level: scaled to ``input_peak`` and back, so estimates are at the
  input's level;
- chunked overlap-add over any length with bounded memory (chunks of
  ``chunk_s`` with linear cross-fades over ``overlap_s``);
- level consistency: a scale-invariant separator's estimates get the gains
  that fit their sum to the mixture in least squares (no SI-SNR-scale outputs);
- a keyed cache of finished chunks (resume).

Methods are registered by name (:func:`register_method`): ``basis`` (mel BASIS
+ inversion; ``experiments.basis_separator``) and the oracles (IBM1, IRM1,
IRM2, Wiener, MWF: built from the true sources, for evaluation). Tasks name
source sets: ``piano-violin`` and ``speech-noise``. Shipped models live in
``assets/separators/<task>/<method>/separator.json``; a trained model folder
names its method in its own ``separator.json``.

  from experiments.separators import load_separator
  sep = load_separator('basis', task='piano-violin')      # or model_dir=...
  estimates = sep.separate(y, sr)                          # {'piano': ..., 'violin': ...}
"""

import dataclasses
import importlib
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common import assets
from common.errors import ParameterError
from common.result_cache import KeyedCache, digest, key_of
from pipeline import audio

SEPARATORS_DIR = assets.separators_dir()
MODEL_FILE = 'separator.json'
CHANNEL_MODES = ('mid', 'each')

TASKS: Dict[str, Tuple[str, ...]] = {
    'piano-violin': ('piano', 'violin'),
    'speech-noise': ('voice', 'noise'),
}
DEFAULT_METHOD = 'basis'
DEFAULT_TASK = 'piano-violin'


@dataclasses.dataclass(frozen=True)
class Method:
  """A registered separation method.

  Attributes:
    name: the method name (``--method``).
    load: ``(model_dir, doc, **options) -> separator`` for methods with a model
      folder (``doc`` is its ``separator.json``); None for oracles.
    oracle: ``(references, sample_rate, **options) -> separator`` for methods
      that need the true sources (evaluation only); None otherwise.
    label: ``options -> name`` in tables (default: the method name).
    description: one line for listings.
    needs_model: the method loads a model folder (shipped or given).
    model_options: options that define the model in place of a folder (basis:
      ``prior_dirs``); given any of them, no shipped model is looked up.
  """

  name: str
  load: Optional[Callable[..., Any]] = None
  oracle: Optional[Callable[..., Any]] = None
  label: Optional[Callable[[Dict[str, Any]], str]] = None
  description: str = ''
  needs_model: bool = True
  model_options: Tuple[str, ...] = ()

  def table_label(self, options: Optional[Dict[str, Any]] = None) -> str:
    return self.label(dict(options or {})) if self.label else self.name


_METHODS: Dict[str, Method] = {}


def register_method(method: Method, *, replace: bool = False) -> Method:
  """Adds a method to the registry (a taken name is an error unless ``replace``)."""
  if method.name in _METHODS and not replace:
    raise ParameterError(f'method {method.name!r} is already registered')
  if (method.load is None) == (method.oracle is None):
    raise ParameterError(f'method {method.name!r}: give exactly one of load or oracle')
  _METHODS[method.name] = method
  return method


def unregister_method(name: str):
  """Removes a method (tests register toys and remove them)."""
  _METHODS.pop(name, None)


def methods() -> List[str]:
  """Registered method names."""
  return sorted(_METHODS)


def get_method(name: str) -> Method:
  """The registered method ``name``.

  Raises:
    ParameterError: an unknown name, listing the registered ones.
  """
  if name not in _METHODS:
    raise ParameterError(f'unknown method {name!r}; registered methods: {methods()}')
  return _METHODS[name]


def parse_value(text: str):
  """A spec's option value: an int, float, bool, None or the string itself."""
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  return {'true': True, 'false': False, 'none': None}.get(text.lower(), text)


def parse_options(text: str, *, where: str) -> Dict[str, Any]:
  """``'phase=misi,sampler=paper'`` -> ``{'phase': 'misi', 'sampler': 'paper'}``.

  Args:
    text: comma-separated ``key=value`` items (empty: no options); values go
      through :func:`parse_value`.
    where: what the text came from, to start the error messages.

  Raises:
    ParameterError: an item without ``=`` or a key, or a key given twice.
  """
  options: Dict[str, Any] = {}
  for item in filter(None, text.split(',')):
    key, eq, value = item.partition('=')
    key = key.strip()
    if not eq or not key:
      raise ParameterError(f'{where}: options are key=value, got {item!r}')
    if key in options:
      raise ParameterError(f'{where}: option {key!r} is given twice')
    options[key] = parse_value(value.strip())
  return options


def parse_spec(spec: str) -> Tuple[str, Dict[str, Any]]:
  """A method spec ``NAME[:key=value,...]`` -> ``(name, options)``.

  ``'basis:phase=misi,sampler=paper'`` -> ``('basis', {'phase': 'misi', 'sampler': 'paper'})``;
  ``'synthesis:decoder=vocoder'`` -> ``('synthesis', {'decoder': 'vocoder'})``. Which
  keys a method takes is its loader's to check (:func:`load_separator`).

  Raises:
    ParameterError: an unknown method or a malformed option.
  """
  name, _, rest = spec.partition(':')
  get_method(name)
  return name, parse_options(rest, where=f'method spec {spec!r}')


def merge_options(spec: str, given: Optional[Dict[str, Any]] = None, *,
                  given_as: Optional[Dict[str, str]] = None) -> Tuple[str, Dict[str, Any]]:
  """The name and options of a method spec, with options given another way added.

  Args:
    spec: ``NAME[:key=value,...]`` (:func:`parse_spec`).
    given: options given beside the spec (a script's flags, ``method_options``).
    given_as: ``{key: how it was given}`` (``{'phase': '--phase'}``) for the keys of
      ``given`` that were given explicitly; None: all of them were (``method_options``).
      A key of ``given`` not in it is a default, which the spec overrides.

  Returns:
    ``(name, options)``: ``given`` updated with the spec's options.

  Raises:
    ParameterError: from :func:`parse_spec`; an option both in the spec and given
      explicitly (naming both, even when the values agree).
  """
  name, options = parse_spec(spec)
  given = dict(given or {})
  for key in options:
    if key in given and (given_as is None or key in given_as):
      where = f'as {given_as[key]}' if given_as is not None else 'in method_options'
      raise ParameterError(f'option {key!r} is given twice: in the method spec {spec!r} and '
                           f'{where}; give it once')
  return name, {**given, **options}


def _lazy(target: str) -> Callable[..., Any]:
  """``'module:function'`` -> a callable that imports it on first use."""
  module, _, attr = target.partition(':')

  def call(*args, **kwargs):
    return getattr(importlib.import_module(module), attr)(*args, **kwargs)

  call.__name__ = attr
  return call


def check_task(task: str) -> Tuple[str, ...]:
  """The source names of ``task``.

  Raises:
    ParameterError: an unknown task, listing the known ones.
  """
  if task not in TASKS:
    raise ParameterError(f'unknown task {task!r}; tasks: {sorted(TASKS)}')
  return TASKS[task]


def shipped_models() -> Dict[Tuple[str, str], str]:
  """``{(task, method): folder}`` of the models shipped in ``assets/separators``."""
  out = {}
  if os.path.isdir(SEPARATORS_DIR):
    for task in sorted(os.listdir(SEPARATORS_DIR)):
      for method in sorted(os.listdir(os.path.join(SEPARATORS_DIR, task))):
        folder = os.path.join(SEPARATORS_DIR, task, method)
        if os.path.isfile(os.path.join(folder, MODEL_FILE)):
          out[(task, method)] = folder
  return out


def _shipped_text() -> str:
  pairs = sorted(shipped_models())
  return ', '.join(f'--task={t} --method={m}' for t, m in pairs) or 'none'


def read_model_doc(model_dir: str) -> Dict[str, Any]:
  """``model_dir/separator.json``, checked.

  Raises:
    ParameterError: a missing folder or file, bad json, or no ``method``.
  """
  path = os.path.join(model_dir, MODEL_FILE)
  if not os.path.isdir(model_dir):
    raise ParameterError(f'model folder {model_dir} does not exist')
  if not os.path.isfile(path):
    raise ParameterError(f'{model_dir} has no {MODEL_FILE}: not a separator folder (export '
                         'a trained model, or pass the folder that holds the file)')
  try:
    with open(path, encoding='utf-8') as f:
      doc = json.load(f)
  except (OSError, ValueError) as e:
    raise ParameterError(f'{path} is not readable json ({e})') from e
  if not isinstance(doc, dict) or not isinstance(doc.get('method'), str):
    raise ParameterError(f'{path} names no method ("method": "<name>")')
  return doc


def _check_names(names: Sequence[str], where: str):
  for name in names:
    if (not isinstance(name, str) or not name or name.startswith(('.', '-')) or
        not all(c.isalnum() or c in '_-' for c in name)):
      raise ParameterError(f'{where}: source name {name!r} is not an identifier (letters, '
                           'digits, _ and -; no path separators or dots)')
  if len(set(names)) != len(names):
    raise ParameterError(f'{where}: repeated source names {list(names)}')


def load_separator(method: Optional[str] = None, *, task: Optional[str] = None,
                   model_dir: Optional[str] = None, channels: str = 'mid',
                   chunk_s: Optional[float] = None, overlap_s: Optional[float] = None,
                   cache_dir: Optional[str] = None, log=None,
                   **options) -> 'Separation':
  """A shipped or trained separator, wrapped in :class:`Separation`.

  Args:
    method: a registered method name; None: the one ``model_dir`` names, else
      ``'basis'``.
    task: a task name (``TASKS``); picks the shipped model; None:
      ``'piano-violin'`` unless ``model_dir`` is given.
    model_dir: a model folder with ``separator.json`` (a trained or exported
      model); None: the shipped model of ``(task, method)``.
    channels: ``'mid'`` or ``'each'`` (see :class:`Separation`).
    chunk_s, overlap_s: chunking; None: the separator's preference.
    cache_dir: a folder for finished chunks (resume); None: no cache.
    log: progress lines (``print``-like), or None for silence.
    **options: method options (e.g. BASIS's ``sampler``, ``phase``).

  Raises:
    ParameterError: unknown method or task, a method that needs the true
      sources (an oracle), no shipped model for ``(task, method)`` (the
      message lists what is shipped), or a model folder of another method or task.
  """
  doc = None
  if model_dir is not None:
    doc = read_model_doc(model_dir)
    if method is not None and method != doc['method']:
      raise ParameterError(f'{model_dir} holds a {doc["method"]} model, not {method} '
                           f'(--method={doc["method"]} loads it)')
    method = doc['method']
  method = method or DEFAULT_METHOD
  entry = get_method(method)
  if entry.oracle is not None:
    raise ParameterError(f'{method} is an oracle: it needs the true sources (evaluation '
                         'only: evaluate_separation.py / the evaluation runner)')
  if doc is None and entry.needs_model and not any(
      options.get(name) for name in entry.model_options):
    task = task or DEFAULT_TASK
    check_task(task)
    model_dir = shipped_models().get((task, method))
    if model_dir is None:
      raise ParameterError(f'no shipped {method} model for --task={task}; shipped: '
                           f'{_shipped_text()}; or pass --model_dir')
    doc = read_model_doc(model_dir)
  if doc is not None and task is not None and doc.get('task') not in (None, task):
    raise ParameterError(f'{model_dir} is a {doc["task"]} model, not {task}')
  model = entry.load(model_dir, doc, **options)
  _check_names(tuple(model.sources), f'{method} model')
  return Separation(model, label=entry.table_label(options), channels=channels,
                    chunk_s=chunk_s, overlap_s=overlap_s, cache_dir=cache_dir, log=log)


def oracle_separator(method: str, references: Dict[str, np.ndarray], sample_rate: int,
                     **options) -> 'Separation':
  """An oracle method built from the true sources, wrapped in :class:`Separation`."""
  entry = get_method(method)
  if entry.oracle is None:
    raise ParameterError(f'{method} is not an oracle')
  return Separation(entry.oracle(references, sample_rate, **options),
                    label=entry.table_label(options), chunk_s=0)


# --------------------------------------------------------------------------------------
# What every separator shares.


def chunk_layout(n_samples: int, chunk: int, overlap: int) -> Tuple[int, np.ndarray]:
  """Equal chunks covering ``n_samples``: the fewest of at most ``chunk`` samples.

  With ``k`` the fewest chunks of ``chunk`` samples that overlap by at least
  ``overlap``, every chunk gets the same length ``ceil((n + (k - 1) overlap) / k)``
  (at most ``chunk``), so neighbours overlap by about ``overlap`` and no
  chunk is mostly overlap; the first starts at 0, the last ends at ``n_samples``.

  Returns:
    ``(length, starts)``: the chunk length in samples and int64 ``[k]`` starts.
    One chunk (start 0, length ``n_samples``) when ``n_samples <= chunk``.
  """
  if chunk <= 0 or overlap < 0 or overlap >= chunk:
    raise ParameterError(f'need 0 <= overlap < chunk, got chunk {chunk}, overlap {overlap}')
  if n_samples <= chunk:
    return n_samples, np.zeros(1, np.int64)
  k = int(np.ceil((n_samples - overlap) / (chunk - overlap)))
  length = int(np.ceil((n_samples + (k - 1) * overlap) / k))
  return length, np.round(np.linspace(0, n_samples - length, k)).astype(np.int64)


def _ramp_weights(length: int, fade_in: int, fade_out: int) -> np.ndarray:
  w = np.ones(length, np.float64)
  if fade_in > 0:
    w[:fade_in] = (np.arange(fade_in) + 0.5) / fade_in
  if fade_out > 0:
    w[length - fade_out:] = np.minimum(w[length - fade_out:],
                                       (np.arange(fade_out)[::-1] + 0.5) / fade_out)
  return w


_GAIN_BLOCK = 1 << 18        # samples per block of mixture_consistent_gains


def mixture_consistent_gains(estimates: np.ndarray, mixture: np.ndarray) -> np.ndarray:
  """Gains ``g`` minimising ``||mixture - sum_k g_k estimates_k||^2``.

  Args:
    estimates: float ``[n_sources, n_samples]``.
    mixture: float ``[n_samples]``.

  Returns:
    float64 ``[n_sources]`` (a silent estimate keeps gain 1).
  """
  # The Gram matrix and the projections, accumulated over blocks of samples in
  # float64: memory does not grow with the length (issue 27).
  n_sources, n = np.shape(estimates)
  gram = np.zeros((n_sources, n_sources))
  proj = np.zeros(n_sources)
  for a in range(0, n, _GAIN_BLOCK):
    e = np.asarray(estimates[:, a:a + _GAIN_BLOCK], np.float64)
    gram += e @ e.T
    proj += e @ np.asarray(mixture[a:a + _GAIN_BLOCK], np.float64)
  norms = np.sqrt(np.maximum(np.diag(gram), 0.0))
  live = norms > 1e-6 * max(float(np.max(norms)), 1e-30)
  gains = np.ones(n_sources)
  if live.any():
    nl = norms[live]                            # unit columns: a well-conditioned system
    solution = np.linalg.lstsq(gram[np.ix_(live, live)] / np.outer(nl, nl), proj[live] / nl,
                               rcond=1e-10)[0]
    gains[live] = solution / nl
  return gains


class Separation:
  """Any separator, on any audio: channels, rate, level, length, resume.

  Args:
    model: a separator (see the module docstring).
    label: its name in tables and logs.
    channels: ``'mid'``: separate the channel mean, mono estimates; ``'each'``:
      every channel, estimates ``[n_channels, n_samples]``.
    chunk_s: seconds per chunk; None: ``model.chunk_s`` (else 30 s); 0 or
      less: the whole input at once.
    overlap_s: cross-fade seconds; None: ``model.overlap_s`` (else 1 s).
    cache_dir: finished chunks are kept there by key (needs ``model.identity()``).
    log: progress lines, or None.
  """

  def __init__(self, model, *, label: str, channels: str = 'mid',
               chunk_s: Optional[float] = None, overlap_s: Optional[float] = None,
               cache_dir: Optional[str] = None, log=None):
    if channels not in CHANNEL_MODES:
      raise ParameterError(f'channels must be one of {list(CHANNEL_MODES)}, got {channels!r}')
    for attr in ('sources', 'sample_rate', 'separate'):
      if not hasattr(model, attr):
        raise ParameterError(f'{type(model).__name__} is not a separator: it has no {attr!r}')
    self.model = model
    self.label = label
    self.channels = channels
    self.chunk_s = float(getattr(model, 'chunk_s', 30.0) if chunk_s is None else chunk_s)
    self.overlap_s = float(getattr(model, 'overlap_s', 1.0) if overlap_s is None
                           else overlap_s)
    if self.chunk_s > 0 and not 0 <= self.overlap_s < self.chunk_s / 2:
      raise ParameterError(f'overlap_s must be in [0, chunk_s / 2), got {self.overlap_s} '
                           f'with chunk_s {self.chunk_s}')
    identity = getattr(model, 'identity', None)
    self.cache = KeyedCache(cache_dir) if cache_dir and callable(identity) else None
    self.log = log
    self.stats: Dict[str, Any] = {}

  @property
  def sources(self) -> Tuple[str, ...]:
    return tuple(self.model.sources)

  @property
  def sample_rate(self) -> int:
    return int(self.model.sample_rate)

  def identity(self) -> Dict[str, Any]:
    """What the estimates depend on besides the input (for caches and records)."""
    ident = getattr(self.model, 'identity', None)
    return {'label': self.label, 'channels': self.channels, 'chunk_s': self.chunk_s,
            'overlap_s': self.overlap_s, 'model': ident() if callable(ident) else None}

  def separate(self, audio_in, sample_rate: int) -> Dict[str, np.ndarray]:
    """Separates a mixture.

    Args:
      audio_in: float ``[n_samples]`` or ``[n_channels, n_samples]``.
      sample_rate: int > 0, Hz, its rate.

    Returns:
      ``{source: float32 array}`` at ``sample_rate``, ``[n_samples]`` (channels
      'mid' or mono input) or ``[n_channels, n_samples]`` (channels 'each').

    Raises:
      ParameterError: empty, non-float or non-finite audio; a bad rate.
    """
    y = audio.validate_audio(audio_in, name='the mixture')
    if y.ndim > 2:
      raise ParameterError(f'the mixture must be [n_samples] or [n_channels, n_samples], got '
                           f'shape {y.shape}')
    if int(sample_rate) != sample_rate or sample_rate <= 0:
      raise ParameterError(f'sample_rate must be a positive int (Hz), got {sample_rate!r}')
    y = np.asarray(y, np.float32)
    if y.ndim == 2 and self.channels == 'mid':
      y = y.mean(axis=0)
    self.stats = {'chunks': 0, 'chunks_resumed': 0, 'seconds': 0.0}
    reset = getattr(self.model, 'reset_stats', None)
    if callable(reset):
      reset()
    if y.ndim == 1:
      return self._separate_mono(y, int(sample_rate))
    per_channel = [self._separate_mono(ch, int(sample_rate)) for ch in y]
    return {name: np.stack([c[name] for c in per_channel]) for name in self.sources}

  def _separate_mono(self, y: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    rate = self.sample_rate
    x = audio.resample(y, orig_sr=sample_rate, target_sr=rate)
    peak = float(np.max(np.abs(x)))
    input_peak = getattr(self.model, 'input_peak', None)
    gain = input_peak / peak if input_peak and peak > 0 else 1.0
    x = x * np.float32(gain)
    est = self._chunked(x)
    if getattr(self.model, 'scale_invariant', False):
      est *= mixture_consistent_gains(est, x)[:, None].astype(np.float32)
    est /= np.float32(gain)
    out = audio.resample(est, orig_sr=rate, target_sr=sample_rate)
    n = len(y)
    if out.shape[-1] < n:
      out = np.pad(out, ((0, 0), (0, n - out.shape[-1])))
    return {name: np.ascontiguousarray(out[k, :n], np.float32)
            for k, name in enumerate(self.sources)}

  def _chunk(self, x: np.ndarray) -> np.ndarray:
    key = None
    if self.cache is not None:
      key = key_of({'separation': self.identity(), 'input': digest(x)})
      hit = self.cache.get(key)
      if hit is not None:
        self.stats['chunks_resumed'] += 1
        return hit['estimates']
    t0 = time.time()
    result = self.model.separate(x, self.sample_rate)
    missing = [n for n in self.sources if n not in result]
    if missing:
      raise ParameterError(f'{self.label} returned no estimate for {missing}')
    est = np.stack([np.asarray(result[n], np.float32)[:len(x)] for n in self.sources])
    if est.shape[-1] != len(x):
      raise ParameterError(f'{self.label} returned {est.shape[-1]} samples for {len(x)}')
    self.stats['seconds'] += time.time() - t0
    self.stats['chunks'] += 1
    if key is not None:
      self.cache.put(key, {'estimates': est})
    return est

  def _chunked(self, x: np.ndarray) -> np.ndarray:
    n = len(x)
    chunk = int(round(self.chunk_s * self.sample_rate))
    if self.chunk_s <= 0 or n <= chunk:
      return self._chunk(x)
    overlap = int(round(self.overlap_s * self.sample_rate))
    chunk, starts = chunk_layout(n, chunk, overlap)
    out = np.zeros((len(self.sources), n), np.float32)
    # The summed weights of the current chunk's span only (neighbours alone overlap:
    # overlap < chunk / 2); the span before a chunk's start is final when it is added
    # and is normalised then, so nothing but ``out`` grows with the length (issue 27).
    prev, total = 0, None
    for i, s in enumerate(starts):
      fade_in = int(starts[i - 1] + chunk - s) if i else 0
      fade_out = int(s + chunk - starts[i + 1]) if i + 1 < len(starts) else 0
      w = _ramp_weights(chunk, fade_in, fade_out)
      if self.log:
        self.log(f'{self.label}: chunk {i + 1}/{len(starts)} '
                 f'({s / self.sample_rate:.1f}-{(s + chunk) / self.sample_rate:.1f} s)')
      out[:, s:s + chunk] += (self._chunk(x[s:s + chunk]) * w).astype(np.float32)
      if total is not None:
        w[:prev + chunk - s] += total[s - prev:]
        out[:, prev:s] = out[:, prev:s] / total[:s - prev]
      prev, total = s, w
    out[:, prev:] = out[:, prev:] / total
    return out


# --------------------------------------------------------------------------------------
# The built-in methods.


def _guide_label(guide: Optional[str]) -> str:
  """The label's tail for a basis ``guide`` option given in a spec (the shipped models'
  own guide is the plain label's)."""
  if not guide:
    return ''
  if guide == 'off':
    return '-alone'
  return f'-from-{os.path.basename(os.path.normpath(guide))}'


def _oracle(name: str) -> Callable[..., Any]:
  def build(references, sample_rate, **options):
    from baselines.oracles import OracleSeparator  # pylint: disable=g-import-not-at-top
    return OracleSeparator(references, sample_rate, method=name, **options)
  return build


for _name in ('IBM1', 'IBM2', 'IRM1', 'IRM2', 'Wiener', 'MWF'):
  register_method(Method(name=_name, oracle=_oracle(_name), needs_model=False,
                         description=f'{_name} oracle from the true sources'))

register_method(Method(
    name='basis', load=_lazy('experiments.basis_separator:from_model_folder'),
    label=lambda options: f"BASIS-{options.get('phase') or 'wiener'}" + _guide_label(
        options.get('guide')),
    description='BASIS with one mel prior per source, then mel inversion (refiner + phase)',
    model_options=('prior_dirs',)))

register_method(Method(
    name='unet', load=_lazy('baselines.unet:load'),
    label=lambda options: 'U-Net' + ('-wiener' if options.get('output') == 'wiener' else ''),
    description='Jansson U-Net: magnitude masks on the mixture STFT (L1-trained)'))
register_method(Method(
    name='convtasnet', load=_lazy('baselines.convtasnet:load'), label=lambda options: 'Conv-TasNet',
    description='Conv-TasNet: learnt encoder, TCN masks, decoder (SI-SNR-trained)'))
register_method(Method(
    name='synthesis', load=_lazy('synthesis.separator:load'), label=lambda options: 'Synthesis',
    description='separation by synthesis: predicted voice mel, refiner + phase retrieval '
                '(issue 25)'))
register_method(Method(
    name='synthesis-linear', load=_lazy('synthesis.separator:load'),
    label=lambda options: 'Synthesis-B1',
    description='separation by synthesis, B1: predicted linear magnitude, Griffin-Lim '
                '(issue 25)'))
