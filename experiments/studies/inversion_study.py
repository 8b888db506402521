"""The spectrogram-inversion study of Magron & Virtanen (2023) on our speech + noise set.

Speech enhancement as two-source separation (voice, noise) from given
magnitudes: every algorithm of ``inversion.phase`` turns the two sources'
magnitudes and the mixture STFT into waveforms, and the speech estimate is
scored against the clean voice.

Setting (ALGORITHMS.md, Phase retrieval): 16 kHz, Hann window, n_fft = window
= 1024, hop 256; input SNR 10, 0 and -10 dB (``datagen.speech`` mixtures).
Two kinds of magnitudes:

* ``'exact'``: ``|STFT|`` of the true voice and the true (scaled) noise;
* ``'mel'``: estimated magnitudes -- the true ones after a round trip through
  ``n_mels`` (80) Slaney mel bands over 0-8 kHz: power mel ``|S|^2 M``, then
  ``inversion.mel_to_magnitude(method='nnls')`` (clipped pseudo-inverse + 50
  projected-gradient NNLS steps), then the square root. Nothing else is
  estimated: the mixture STFT is the true one.

Protocol (clean where the reference code's was not): the grid over ``lambdas``
x ``iterations`` runs on the *validation* split only, scored by the median
over clips of the speech's plain SDR, ``10 log10(||s||^2 / ||s - s_hat||^2)``
(the reference code's ``get_score``; BSS Eval v4 costs about 0.6 s per clip
here, too much for thousands of grid points). One setting per algorithm and
kind of magnitudes is kept: the one with the best mean over the input SNRs
(an input SNR is not known in use); the per-SNR optima are reported beside it.
The *test* split is then scored once with the chosen settings: BSS Eval v4
SDR of the speech (``evaluation.bss_eval_v4``, 1 s windows, median over
windows then over clips), SI-SDR (``evaluation.si_sdr``), plain SDR and PESQ
(wide band, when the ``pesq`` package is installed).

Algorithms (``inversion.phase.METHODS`` names): ``amplitude_mask``, ``wiener``,
``misi``, ``mix_incons``, ``mix_incons_hard_mag``, ``mag_incons_hard_mix``,
``incons_hard_mix`` and, for reference, ``gla`` / ``fgla`` per source
(started from the mixture phase; they ignore the mixture). ``mix_incons`` and
``mix_incons_hard_mag`` use the mixing weights ``V / sum V`` as in the
reference code (``mix_weights``); ``incons_hard_mix`` and the algorithms with
a hard mixing constraint use ``1/J``. The row ``mixture`` scores the
unprocessed mixture as the speech estimate.

Shapes: a split is loaded as sources ``[n_snrs, 2, n_clips, n_samples]``
(voice, scaled noise) and mixtures ``[n_snrs, n_clips, n_samples]``;
magnitudes are ``[2, n_clips, n_frames, n_bins]``.
"""

import dataclasses
import datetime
import importlib.util
import itertools
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from inversion import mel_to_linear
from inversion import phase
from datagen import speech
from common.compute import cpu_model
from common.atomic import write_json_atomic
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform

ALGORITHMS = ('amplitude_mask', 'wiener', 'misi', 'mix_incons', 'mix_incons_hard_mag',
              'mag_incons_hard_mix', 'incons_hard_mix', 'gla', 'fgla')
LAMBDA_ALGORITHMS = ('mix_incons', 'mix_incons_hard_mag', 'mag_incons_hard_mix')
ITERATIVE = ('misi',) + LAMBDA_ALGORITHMS + ('gla', 'fgla')
LABELS = {
    'mixture': 'Mixture (input)', 'amplitude_mask': 'Amplitude mask', 'wiener': 'Wiener',
    'misi': 'MISI', 'mix_incons': 'Mix+Incons', 'mix_incons_hard_mag': 'Mix+Incons_hardMag',
    'mag_incons_hard_mix': 'Mag+Incons_hardMix', 'incons_hard_mix': 'Incons_hardMix',
    'gla': 'GLA (reference)', 'fgla': 'FGLA (reference)',
}
MAGNITUDES = ('exact', 'mel')
DEFAULT_LAMBDAS = (0.0, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3)
DEFAULT_ITERATIONS = (0, 1, 2, 5, 10, 20)
RESULTS_JSON = 'study.json'
TABLES_MD = 'study.md'
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class StudyConfig:
  """What :func:`run` measures.

  Attributes:
    data_dir: a ``datagen.speech`` data set (``validation/`` and ``test/``).
    out_dir: where ``study.json``, ``study.md`` and the caches go.
    snrs_db: input SNRs, dB; their mixtures must be in the data.
    algorithms: ``inversion.phase.METHODS`` names, a subset of ``ALGORITHMS``.
    magnitudes: kinds of magnitudes, a subset of ``('exact', 'mel')``.
    lambdas: the grid of ``lam`` for ``LAMBDA_ALGORITHMS``.
    iterations: the grid of ``n_iter`` (ints in [0, 100]) for ``ITERATIVE``.
    n_mels: mel bands of the ``'mel'`` round trip.
    nnls_iter: NNLS steps of the ``'mel'`` round trip.
    mix_weights: ``'magnitude'`` or ``'equal'``, the weights of ``mix_incons``
      and ``mix_incons_hard_mag``.
    momentum: fast GLA momentum.
    sample_rate: Hz; n_fft: FFT size = Hann window length, samples;
      hop_length: samples.
    n_validation, n_test: use only the first clips of a split (None: all).
    bss_window_s: BSS Eval v4 window and hop, seconds.
    bss_filters_len: BSS Eval v4 distortion filter taps (museval: 512).
    pesq: compute PESQ on the test split (needs the ``pesq`` package).
  """
  data_dir: str
  out_dir: str
  snrs_db: Tuple[float, ...] = (10.0, 0.0, -10.0)
  algorithms: Tuple[str, ...] = ALGORITHMS
  magnitudes: Tuple[str, ...] = MAGNITUDES
  lambdas: Tuple[float, ...] = DEFAULT_LAMBDAS
  iterations: Tuple[int, ...] = DEFAULT_ITERATIONS
  n_mels: int = 80
  nnls_iter: int = mel_to_linear.DEFAULT_NNLS_ITERATIONS
  mix_weights: str = 'magnitude'
  momentum: float = 0.99
  sample_rate: int = 16000
  n_fft: int = 1024
  hop_length: int = 256
  n_validation: Optional[int] = None
  n_test: Optional[int] = None
  bss_window_s: float = 1.0
  bss_filters_len: int = 512
  pesq: bool = True

  def __post_init__(self):
    for name in ('data_dir', 'out_dir'):
      if not isinstance(getattr(self, name), str) or not getattr(self, name):
        raise ParameterError(f'{name} must be a folder path, got {getattr(self, name)!r}')
    for name, allowed in (('algorithms', ALGORITHMS), ('magnitudes', MAGNITUDES)):
      value = tuple(getattr(self, name))
      bad = [v for v in value if v not in allowed]
      if bad or not value or len(set(value)) != len(value):
        raise ParameterError(
            f'{name}={getattr(self, name)!r}: choose distinct values from {allowed} '
            f'(unknown: {bad})')
      object.__setattr__(self, name, value)
    snrs = tuple(float(s) for s in self.snrs_db)
    if not snrs or len(set(snrs)) != len(snrs):
      raise ParameterError(f'snrs_db must be distinct SNRs, got {self.snrs_db!r}')
    for s in snrs:
      speech.mixture_name(s)  # a name the data set can have
    object.__setattr__(self, 'snrs_db', snrs)
    lambdas = tuple(float(v) for v in self.lambdas)
    if not lambdas or any(not math.isfinite(v) or v < 0 for v in lambdas):
      raise ParameterError(f'lambdas must be finite numbers >= 0, got {self.lambdas!r}')
    object.__setattr__(self, 'lambdas', tuple(sorted(set(lambdas))))
    its = tuple(self.iterations)
    if not its or any(isinstance(i, bool) or int(i) != i or not 0 <= i <= 100 for i in its):
      raise ParameterError(f'iterations must be ints in [0, 100], got {self.iterations!r}')
    object.__setattr__(self, 'iterations', tuple(sorted(set(int(i) for i in its))))
    if self.mix_weights not in phase.WEIGHTS:
      raise ParameterError(f'mix_weights must be one of {phase.WEIGHTS}, got {self.mix_weights!r}')
    for name in ('n_validation', 'n_test'):
      v = getattr(self, name)
      if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
        raise ParameterError(f'{name} must be a positive int or None, got {v!r}')
    if (isinstance(self.bss_filters_len, bool) or int(self.bss_filters_len) != self.bss_filters_len
        or not 1 <= self.bss_filters_len <= 4096):
      raise ParameterError(f'bss_filters_len must be an int in [1, 4096], got {self.bss_filters_len!r}')
    if not 0 < self.bss_window_s <= 60:
      raise ParameterError(f'bss_window_s must be in (0, 60] seconds, got {self.bss_window_s!r}')
    self.features  # pylint: disable=pointless-statement  (checks the STFT settings)

  @property
  def features(self) -> FeatureConfig:
    """The study's STFT with the ``n_mels`` filterbank of the ``'mel'`` round trip."""
    return FeatureConfig(sample_rate=self.sample_rate, n_fft=self.n_fft,
                         hop_length=self.hop_length, n_mels=self.n_mels, fmin=0.0,
                         fmax=self.sample_rate / 2, power=2.0, patch_frames=64,
                         patch_samples=63 * self.hop_length)

  def signature(self, split: str) -> Dict[str, Any]:
    """What a cached result of ``split`` (``'validation'`` or ``'test'``) depends on."""
    d = dataclasses.asdict(self)
    drop = ('out_dir', 'pesq', 'n_test', 'bss_window_s', 'bss_filters_len') if split == 'validation' else (
        'out_dir', 'n_validation', 'lambdas', 'iterations')
    for k in drop:
      d.pop(k)
    return dict(d, split=split, format_version=FORMAT_VERSION)


# -------------------------------------------------------------------- data
@dataclasses.dataclass(frozen=True)
class SplitData:
  """One split at every input SNR.

  Attributes:
    names: clip folder names, ``[n_clips]``.
    sources: float32 ``[n_snrs, 2, n_clips, n_samples]``: voice, scaled noise.
    mixtures: float32 ``[n_snrs, n_clips, n_samples]``.
    snrs_db: ``[n_snrs]`` dB.
  """
  names: Tuple[str, ...]
  sources: np.ndarray
  mixtures: np.ndarray
  snrs_db: Tuple[float, ...]


def load_split(config: StudyConfig, split: str) -> SplitData:
  """Reads a split of the speech + noise set (checked by ``datagen.speech.read_split``).

  Raises:
    ParameterError: for a malformed data set, clips of different lengths, or
      a missing mixture.
  """
  limit = config.n_validation if split == 'validation' else config.n_test
  clips = speech.read_split(os.path.join(config.data_dir, split),
                            sample_rate=config.sample_rate, snrs_db=config.snrs_db,
                            limit=limit)
  lengths = sorted({c.voice.shape[0] for c in clips})
  if len(lengths) != 1:
    raise ParameterError(
        f'{config.data_dir}/{split}: clips must have one length to be batched, got '
        f'{lengths} samples')
  sources = np.stack([np.stack([c.sources(s) for c in clips], axis=1)
                      for s in config.snrs_db])
  mixtures = np.stack([np.stack([c.mixture(s) for c in clips]) for s in config.snrs_db])
  return SplitData(names=tuple(c.name for c in clips), sources=sources,
                   mixtures=mixtures, snrs_db=config.snrs_db)


def make_magnitudes(sources: np.ndarray, kind: str, transform: MelTransform, *,
                    nnls_iter: int) -> tf.Tensor:
  """Source magnitudes for the study.

  Args:
    sources: float ``[2, n_clips, n_samples]``.
    kind: ``'exact'`` (``|STFT|``) or ``'mel'`` (through the transform's mel
      filterbank and back with NNLS).
    transform: the study's ``MelTransform``.
    nnls_iter: NNLS steps for ``'mel'``.

  Returns:
    float32 ``[2, n_clips, n_frames, n_bins]``, linear magnitudes.
  """
  mags = tf.abs(transform.stft(sources))
  if kind == 'exact':
    return mags
  if kind != 'mel':
    raise ParameterError(f'magnitude kind must be one of {MAGNITUDES}, got {kind!r}')
  mel = transform.spectrogram_to_mel(tf.square(mags))
  return tf.convert_to_tensor(mel_to_linear.mel_to_magnitude(
      mel, method='nnls', transform=transform, n_iter=nnls_iter))


# ------------------------------------------------------------------ metrics
def plain_sdr(estimate, reference) -> np.ndarray:
  """``10 log10(||s||^2 / ||s - s_hat||^2)`` over the last axis, dB (float64)."""
  est = np.asarray(estimate, np.float64)
  ref = np.asarray(reference, np.float64)
  num = np.sum(ref * ref, axis=-1)
  den = np.sum((ref - est) ** 2, axis=-1)
  with np.errstate(divide='ignore'):
    return 10 * np.log10(num / np.maximum(den, 1e-300))


def pesq_scores(estimates: np.ndarray, references: np.ndarray,
                sample_rate: int) -> np.ndarray:
  """Wide-band PESQ per clip (:func:`evaluation.speech_quality.pesq_wb`), NaN where it
  cannot score.

  Args:
    estimates, references: float ``[n_clips, n_samples]``.
    sample_rate: Hz (other rates than 16000 are resampled to it).

  Returns:
    float64 ``[n_clips]``.
  """
  from evaluation import speech_quality  # pylint: disable=g-import-not-at-top
  return np.asarray([speech_quality.pesq_wb(ref, est, sample_rate)[0]
                     for ref, est in zip(references, estimates)], np.float64)


def speech_scores(estimates: np.ndarray, references: np.ndarray, *, sample_rate: int,
                  window_s: float, with_pesq: bool,
                  filters_len: int = 512) -> Dict[str, List[float]]:
  """Per-clip scores of the speech estimate.

  Args:
    estimates: float ``[2, n_clips, n_samples]`` (speech, noise estimates).
    references: float ``[2, n_clips, n_samples]``.
    sample_rate: Hz.
    window_s: BSS Eval v4 window and hop, seconds.
    with_pesq: compute PESQ.
    filters_len: BSS Eval v4 distortion filter taps.

  Returns:
    ``{'sdr': [...], 'si_sdr': [...], 'plain_sdr': [...], 'pesq': [...]}``:
    BSS Eval v4 SDR of the speech (median over windows), SI-SDR, plain SDR
    and PESQ (NaN when not computed), dB / MOS, ``[n_clips]`` each.
  """
  from evaluation import audio_metrics  # pylint: disable=g-import-not-at-top
  from evaluation import bss_eval  # pylint: disable=g-import-not-at-top
  n = references.shape[1]
  sdr = np.full(n, np.nan)
  for i in range(n):
    result = bss_eval.bss_eval_v4(references[:, i], estimates[:, i], sample_rate=sample_rate,
                                  window_s=window_s, hop_s=window_s, filters_len=filters_len)
    sdr[i] = result.medians()['SDR'][0]
  si = audio_metrics.si_sdr(estimates[0], references[0])
  pesq = (pesq_scores(estimates[0], references[0], sample_rate) if with_pesq
          else np.full(n, np.nan))
  return {'sdr': sdr.tolist(), 'si_sdr': np.asarray(si, np.float64).tolist(),
          'plain_sdr': plain_sdr(estimates[0], references[0]).tolist(),
          'pesq': pesq.tolist()}


def _median(values) -> float:
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  return float(np.median(v)) if v.size else float('nan')


# -------------------------------------------------------------- algorithms
def grid_points(config: StudyConfig, algorithm: str) -> List[Dict[str, Any]]:
  """The validation settings of one algorithm: ``[{'lam': ..., 'n_iter': ...}]``."""
  if algorithm in LAMBDA_ALGORITHMS:
    return [{'lam': lam, 'n_iter': n} for lam in config.lambdas for n in config.iterations]
  if algorithm in ITERATIVE:
    return [{'lam': None, 'n_iter': n} for n in config.iterations]
  if algorithm == 'incons_hard_mix':
    return [{'lam': None, 'n_iter': 1}]
  return [{'lam': None, 'n_iter': None}]


def estimate(algorithm: str, mags: tf.Tensor, mixture_stft: tf.Tensor, *,
             transform: MelTransform, length: int, lam: Optional[float],
             n_iter: Optional[int], config: StudyConfig) -> np.ndarray:
  """Runs one algorithm of ``inversion.phase`` (or ``'mixture'``).

  Args:
    algorithm: a ``METHODS`` name or ``'mixture'``.
    mags: float32 ``[2, n_clips, n_frames, n_bins]``.
    mixture_stft: complex64 ``[n_clips, n_frames, n_bins]``.
    transform: the study's ``MelTransform``.
    length: int, samples of the output.
    lam, n_iter: the setting (None: the method's own).
    config: for the mixing weights and the momentum.

  Returns:
    float32 ``[2, n_clips, length]``, the speech and noise estimates.
  """
  if algorithm == 'mixture':
    mix = transform.istft(mixture_stft, length=length).numpy()
    return np.stack([mix, mix])
  options = {'n_iter': n_iter, 'lam': lam, 'momentum': config.momentum}
  if algorithm in ('mix_incons', 'mix_incons_hard_mag'):
    options['weights'] = config.mix_weights
  result = phase.get_method(algorithm)(mags, mixture_stft, transform=transform,
                                       length=length, **options)
  return result.waveform.numpy()


# ------------------------------------------------------------------- cache
def _read_cache(path: str, signature: Dict[str, Any]) -> Optional[Dict[str, Any]]:
  try:
    with open(path, encoding='utf-8') as f:
      data = json.load(f)
  except (OSError, ValueError):
    return None
  return data if data.get('signature') == json.loads(json.dumps(signature)) else None


def _cached(path: str, signature: Dict[str, Any], compute: Callable[[], Any],
            log: Callable[..., None]) -> Any:
  hit = _read_cache(path, signature)
  if hit is not None:
    log(f'  cached: {path}')
    return hit['result']
  result = compute()
  write_json_atomic(path, {'signature': signature, 'result': result}, sort_keys=False)
  return result


# -------------------------------------------------------------- validation
def validation_grid(config: StudyConfig, data: SplitData, transform: MelTransform, *,
                    log: Callable[..., None] = print) -> List[Dict[str, Any]]:
  """Scores every grid point on the validation split (plain SDR and SI-SDR of the speech).

  One cache file per kind of magnitudes and input SNR under
  ``out_dir/cache/``, so an interrupted run resumes.

  Returns:
    rows ``{'magnitudes', 'snr_db', 'algorithm', 'lam', 'n_iter', 'sdr',
    'si_sdr', 'seconds'}`` with medians over clips (dB) and the wall time of
    the run on the whole split.
  """
  from evaluation import audio_metrics  # pylint: disable=g-import-not-at-top
  rows = []
  length = data.sources.shape[-1]
  for kind, (k, snr) in itertools.product(config.magnitudes, enumerate(data.snrs_db)):
    refs = data.sources[k]

    def compute(kind=kind, k=k, snr=snr, refs=refs):
      out = []
      mags = make_magnitudes(refs, kind, transform, nnls_iter=config.nnls_iter)
      x = transform.stft(data.mixtures[k])
      for algorithm in ('mixture',) + config.algorithms:
        for point in (grid_points(config, algorithm) if algorithm != 'mixture'
                      else [{'lam': None, 'n_iter': None}]):
          t0 = time.perf_counter()
          est = estimate(algorithm, mags, x, transform=transform, length=length,
                         config=config, **point)
          seconds = time.perf_counter() - t0
          out.append(dict(magnitudes=kind, snr_db=snr, algorithm=algorithm, **point,
                          sdr=_median(plain_sdr(est[0], refs[0])),
                          si_sdr=_median(audio_metrics.si_sdr(est[0], refs[0])),
                          seconds=round(seconds, 3)))
      return out

    log(f'validation grid: magnitudes={kind}, input SNR {snr:g} dB')
    path = os.path.join(config.out_dir, 'cache', f'validation_{kind}_snr_{snr:g}.json')
    rows.extend(_cached(path, config.signature('validation'), compute, log))
  return rows


def select(rows: Sequence[Dict[str, Any]], *, metric: str = 'sdr'
           ) -> Dict[str, Dict[str, Dict[str, Any]]]:
  """The best setting per kind of magnitudes and algorithm.

  ``pooled`` is the setting with the best mean over the input SNRs of the
  median ``metric``; ``per_snr`` the best at each SNR. Ties go to the
  smaller ``n_iter``, then the smaller ``lam`` (the cheaper, milder setting).

  Args:
    rows: from :func:`validation_grid`.
    metric: ``'sdr'`` or ``'si_sdr'``.

  Returns:
    ``{magnitudes: {algorithm: {'lam', 'n_iter', 'score', 'per_snr':
    {snr: {'lam', 'n_iter', 'score'}}}}}``.
  """
  groups: Dict[Tuple[str, str], Dict[Tuple, Dict[float, float]]] = {}
  for r in rows:
    key = (r['magnitudes'], r['algorithm'])
    setting = (r['lam'], r['n_iter'])
    groups.setdefault(key, {}).setdefault(setting, {})[r['snr_db']] = r[metric]

  def order(setting):
    lam, n_iter = setting
    return (n_iter if n_iter is not None else -1, lam if lam is not None else -1.0)

  out: Dict[str, Dict[str, Dict[str, Any]]] = {}
  for (kind, algorithm), settings in groups.items():
    candidates = sorted(settings, key=order)
    snrs = sorted({s for v in settings.values() for s in v}, reverse=True)
    mean = lambda st: float(np.mean([settings[st].get(s, -np.inf) for s in snrs]))
    best = max(candidates, key=mean)  # max keeps the first of equals: the cheapest
    per_snr = {}
    for s in snrs:
      b = max(candidates, key=lambda st, s=s: settings[st].get(s, -np.inf))
      per_snr[f'{s:g}'] = {'lam': b[0], 'n_iter': b[1], 'score': settings[b][s]}
    out.setdefault(kind, {})[algorithm] = {'lam': best[0], 'n_iter': best[1],
                                           'score': mean(best), 'per_snr': per_snr}
  return out


# -------------------------------------------------------------------- test
def score_test_split(config: StudyConfig, data: SplitData, transform: MelTransform,
                chosen: Dict[str, Dict[str, Dict[str, Any]]], *,
                log: Callable[..., None] = print) -> List[Dict[str, Any]]:
  """Scores every algorithm at its chosen setting on the test split.

  Returns:
    rows ``{'magnitudes', 'snr_db', 'algorithm', 'lam', 'n_iter', 'per_clip':
    {metric: [n_clips]}, 'median': {metric: float}}``.
  """
  with_pesq = config.pesq and importlib.util.find_spec('pesq') is not None
  length = data.sources.shape[-1]
  rows = []
  for kind, (k, snr) in itertools.product(config.magnitudes, enumerate(data.snrs_db)):
    refs = data.sources[k]
    settings = {a: {'lam': chosen[kind][a]['lam'], 'n_iter': chosen[kind][a]['n_iter']}
                for a in ('mixture',) + config.algorithms}

    def compute(kind=kind, k=k, snr=snr, refs=refs, settings=settings):
      out = []
      mags = make_magnitudes(refs, kind, transform, nnls_iter=config.nnls_iter)
      x = transform.stft(data.mixtures[k])
      for algorithm, point in settings.items():
        est = estimate(algorithm, mags, x, transform=transform, length=length,
                       config=config, **point)
        per_clip = speech_scores(est, refs, sample_rate=config.sample_rate,
                                window_s=config.bss_window_s, with_pesq=with_pesq,
                                filters_len=config.bss_filters_len)
        out.append(dict(magnitudes=kind, snr_db=snr, algorithm=algorithm, **point,
                        per_clip=per_clip,
                        median={m: _median(v) for m, v in per_clip.items()}))
      return out

    log(f'test: magnitudes={kind}, input SNR {snr:g} dB')
    signature = dict(config.signature('test'), with_pesq=with_pesq, settings=settings)
    path = os.path.join(config.out_dir, 'cache', f'test_{kind}_snr_{snr:g}.json')
    rows.extend(_cached(path, signature, compute, log))
  return rows


# ----------------------------------------------------------------- reports
def _fmt(v, digits=2) -> str:
  if v is None:
    return ''
  if isinstance(v, float) and not math.isfinite(v):
    return 'n/a'
  return f'{v:.{digits}f}'


def _setting(algorithm: str, choice: Dict[str, Any]) -> str:
  """``'lam 10, 5 it.'``; ``'0 it. (= amplitude mask)'`` where no iteration ran."""
  n_iter = choice.get('n_iter')
  if algorithm in ITERATIVE and n_iter == 0:
    return '0 it. (= amplitude mask)'
  parts = []
  if choice.get('lam') is not None:
    parts.append(f'lam {choice["lam"]:g}')
  if n_iter is not None and algorithm in ITERATIVE + ('incons_hard_mix',):
    parts.append(f'{n_iter} it.')
  return ', '.join(parts) or '-'


def tables_markdown(results: Dict[str, Any]) -> str:
  """The test tables (one per kind of magnitudes) and the validation choices, as markdown."""
  cfg = results['config']
  snrs = cfg['snrs_db']
  lines = []
  names = {'exact': 'exact magnitudes',
           'mel': f'estimated magnitudes (round trip through {cfg["n_mels"]} mel bands, '
                  f'NNLS {cfg["nnls_iter"]} steps)'}
  with_pesq = results['with_pesq']
  for kind in cfg['magnitudes']:
    lines.append(f'**Test, {names[kind]}**: median over {results["n_test"]} clips of the '
                 'speech estimate; SDR = BSS Eval v4 (1 s windows) / SI-SDR (dB)'
                 + (' / PESQ (wide band)' if with_pesq else '') + '.')
    lines.append('')
    head = '| algorithm | setting (validation) | ' + ' | '.join(
        f'{s:g} dB' for s in snrs) + ' |'
    lines.append(head)
    lines.append('| --- | --- |' + ' ---: |' * len(snrs))
    by = {(r['algorithm'], r['snr_db']): r for r in results['test'] if r['magnitudes'] == kind}
    for algorithm in ['mixture'] + list(cfg['algorithms']):
      choice = results['chosen'][kind][algorithm]
      cells = []
      for s in snrs:
        m = by[(algorithm, s)]['median']
        cell = f'{_fmt(m["sdr"])} / {_fmt(m["si_sdr"])}'
        if with_pesq:
          cell += f' / {_fmt(m["pesq"])}'
        cells.append(cell)
      lines.append(f'| {LABELS[algorithm]} | {_setting(algorithm, choice)} | '
                   + ' | '.join(cells) + ' |')
    lines.append('')
  lines.append('**Validation choices** (best mean over the input SNRs of the median plain SDR '
               f'of the speech, {results["n_validation"]} clips; per-SNR optima in brackets, '
               + ', '.join(f'{s:g}' for s in snrs) + ' dB):')
  lines.append('')
  lines.append('| algorithm | ' + ' | '.join(names[k].split(' (')[0] for k in cfg['magnitudes'])
               + ' |')
  lines.append('| --- |' + ' --- |' * len(cfg['magnitudes']))
  for algorithm in cfg['algorithms']:
    if algorithm not in ITERATIVE:
      continue
    cells = []
    for kind in cfg['magnitudes']:
      c = results['chosen'][kind][algorithm]
      per = '; '.join(_setting(algorithm, c['per_snr'][f'{s:g}']) for s in snrs)
      cells.append(f'{_setting(algorithm, c)} ({_fmt(c["score"])} dB) [{per}]')
    lines.append(f'| {LABELS[algorithm]} | ' + ' | '.join(cells) + ' |')
  lines.append('')
  return '\n'.join(lines)


def lambda_curve_markdown(results: Dict[str, Any], *, kind: str) -> str:
  """Validation median plain SDR (mean over SNRs) vs lambda at each algorithm's best n_iter."""
  cfg = results['config']
  rows = [r for r in results['validation'] if r['magnitudes'] == kind
          and r['algorithm'] in LAMBDA_ALGORITHMS]
  if not rows:
    return ''
  lambdas = cfg['lambdas']
  lines = ['| algorithm (n_iter) | ' + ' | '.join(f'{v:g}' for v in lambdas) + ' |',
           '| --- |' + ' ---: |' * len(lambdas)]
  for algorithm in [a for a in cfg['algorithms'] if a in LAMBDA_ALGORITHMS]:
    n_iter = results['chosen'][kind][algorithm]['n_iter']
    cells = []
    for lam in lambdas:
      vals = [r['sdr'] for r in rows if r['algorithm'] == algorithm and r['lam'] == lam
              and r['n_iter'] == n_iter]
      cells.append(_fmt(float(np.mean(vals))) if vals else '')
    lines.append(f'| {LABELS[algorithm]} ({n_iter}) | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def run(config: StudyConfig, *, log: Callable[..., None] = print) -> Dict[str, Any]:
  """Validation grid, selection, test scores; writes ``study.json`` and ``study.md``.

  Returns:
    ``{'config', 'validation' (grid rows), 'chosen', 'test' (rows),
    'n_validation', 'n_test', 'with_pesq', 'machine', 'seconds'}``.

  Raises:
    ParameterError: for a malformed data set or settings.
  """
  t0 = time.perf_counter()
  transform = MelTransform(config.features)
  val = load_split(config, 'validation')
  test = load_split(config, 'test')
  rows = validation_grid(config, val, transform, log=log)
  chosen = select(rows)
  test_rows = score_test_split(config, test, transform, chosen, log=log)
  results = {
      'format_version': FORMAT_VERSION,
      'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'config': dataclasses.asdict(config),
      'n_validation': len(val.names), 'n_test': len(test.names),
      'with_pesq': bool(config.pesq and importlib.util.find_spec('pesq') is not None),
      'selection': 'median over clips of the plain SDR of the speech, mean over input SNRs',
      'chosen': chosen, 'validation': rows, 'test': test_rows,
      'machine': {'cpu': cpu_model(), 'n_cpus': os.cpu_count(),
                  'tensorflow': tf.__version__, 'python': sys.version.split()[0],
                  'onednn': os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')},
      'seconds': round(time.perf_counter() - t0, 1),
  }
  os.makedirs(config.out_dir, exist_ok=True)
  write_json_atomic(os.path.join(config.out_dir, RESULTS_JSON), results, sort_keys=False)
  text = tables_markdown(results)
  for kind in config.magnitudes:
    curve = lambda_curve_markdown(results, kind=kind)
    if curve:
      text += f'\n**Validation, {kind} magnitudes: median plain SDR (dB, mean over SNRs) vs lambda**\n\n' + curve
  from common.atomic import atomic_path  # pylint: disable=g-import-not-at-top
  with atomic_path(os.path.join(config.out_dir, TABLES_MD), suffix='.md.tmp') as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)
  log(text)
  return results
