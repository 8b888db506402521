"""PESQ (wide band) and STOI of a speech estimate: the project's one implementation.

Both come from optional PyPI packages (the ``[quality]`` extra: ``pip install pesq
pystoi``); :func:`missing` says in one line when they are absent, and callers then
leave the columns out instead of failing.

* PESQ is ITU-T P.862.2 **wide band** from the ``pesq`` package, called **reference
  first**: ``pesq(16000, reference, estimate, 'wb')``. Wide band needs 16 kHz, so a
  signal at any other rate is first resampled to 16 kHz with the project's resampler
  (``pipeline.audio.resample``, polyphase); the result is always a wide-band score
  (8 kHz material has nothing above 4 kHz and scores lower than narrow-band PESQ would).
* STOI is the classic measure (``pystoi.stoi(reference, estimate, sample_rate,
  extended=False)``); pystoi resamples to 10 kHz itself, so it gets the signal's
  own rate.

A pair that cannot be scored is NaN with the reason, never an exception: a silent
or non-finite reference, a non-finite estimate, PESQ's refusals (no utterances: its
voice-activity detector finds no speech; under 1/4 s; any other error the package
raises), a silent estimate for PESQ (STOI scores it 0), and STOI's "not enough frames"
(under 30 frames of 25.6 ms left after its silent frames are dropped: pystoi would
return 1e-5).

Multichannel signals ``[n_channels, n_samples]`` are scored on their channel mean.
"""

import math
import warnings
from typing import Dict, Optional, Tuple

import numpy as np

from common.errors import ParameterError

PESQ_RATE = 16000
METRICS = ('PESQ', 'STOI')
# The sources scored as speech unless a caller names others: the voice of the voice +
# noise layout (--task=speech-noise).
DEFAULT_SPEECH_SOURCES = ('voice',)
INSTALL = 'pip install pesq pystoi (the [quality] extra)'
PACKAGES = {'PESQ': 'pesq', 'STOI': 'pystoi'}    # metric -> the PyPI package computing it


def _import(name: str):
  """The module ``name`` or None when it is not installed (or blocked in sys.modules)."""
  import importlib  # pylint: disable=g-import-not-at-top
  try:
    return importlib.import_module(name)
  except ImportError:
    return None


def available(metric: str) -> bool:
  """Whether ``metric`` (``'PESQ'`` or ``'STOI'``) can be computed: its package is installed.

  Raises:
    ParameterError: another metric.
  """
  if metric not in PACKAGES:
    raise ParameterError(f'metric must be one of {list(PACKAGES)}, got {metric!r}')
  return _import(PACKAGES[metric]) is not None


def missing() -> Optional[str]:
  """None when PESQ and STOI can be computed, else the one line that says what to install."""
  absent = [package for metric, package in PACKAGES.items() if not available(metric)]
  if not absent:
    return None
  return (f"PESQ / STOI left out: {' and '.join(absent)} not installed; {INSTALL}")


def _mono(x, what: str) -> np.ndarray:
  y = np.asarray(x, np.float64)
  if y.ndim == 2:
    y = y.mean(axis=0)
  if y.ndim != 1 or y.size == 0:
    raise ParameterError(f'{what} must be [n_samples] or [n_channels, n_samples], got shape '
                         f'{np.shape(x)}')
  return y


def _pair(reference, estimate) -> Tuple[np.ndarray, np.ndarray, Optional[str]]:
  ref, est = _mono(reference, 'reference'), _mono(estimate, 'estimate')
  if ref.shape != est.shape:
    raise ParameterError(f'reference has {ref.size} samples, estimate {est.size}')
  if not np.all(np.isfinite(ref)):
    return ref, est, 'reference is not finite'
  if not np.any(ref != 0):
    return ref, est, 'silent reference'
  if not np.all(np.isfinite(est)):
    return ref, est, 'estimate is not finite'
  return ref, est, None


def _prepare(metric: str, reference, estimate, sample_rate):
  """What both metrics check first: the rate, the package, the pair (:func:`_pair`).

  Returns:
    ``(module, ref, est, why)``: the metric's package and :func:`_pair`'s result.

  Raises:
    ParameterError: a bad rate, the package missing, mismatched shapes.
  """
  if int(sample_rate) != sample_rate or sample_rate <= 0:
    raise ParameterError(f'sample_rate must be a positive integer in Hz, got {sample_rate!r}')
  module = _import(PACKAGES[metric])
  if module is None:
    raise ParameterError(f'{metric} needs the {PACKAGES[metric]} package: {INSTALL}')
  return (module,) + _pair(reference, estimate)


def _detail(error: Exception) -> str:
  text = error.args[0] if error.args else ''
  text = text.decode(errors='replace') if isinstance(text, bytes) else str(text)
  return f' ({text})' if text else ''


def pesq_wb(reference, estimate, sample_rate: int) -> Tuple[float, Optional[str]]:
  """Wide-band PESQ of ``estimate`` against ``reference``.

  Args:
    reference: float ``[n_samples]`` (or ``[n_channels, n_samples]``), the clean speech.
    estimate: float, same shape.
    sample_rate: int > 0, Hz; other rates than 16000 are resampled to it.

  Returns:
    ``(score, why)``: MOS-LQO (about 1.04 .. 4.64) and None, or NaN and the reason
    it could not be scored.

  Raises:
    ParameterError: mismatched shapes, a bad rate, or the ``pesq`` package missing.
  """
  module, ref, est, why = _prepare('PESQ', reference, estimate, sample_rate)
  if why:
    return math.nan, why
  if not np.any(est != 0):
    return math.nan, 'silent estimate (PESQ cannot score it; STOI scores it 0)'
  if sample_rate != PESQ_RATE:
    from pipeline import audio  # pylint: disable=g-import-not-at-top
    ref = audio.resample(ref, orig_sr=int(sample_rate), target_sr=PESQ_RATE).astype(np.float64)
    est = audio.resample(est, orig_sr=int(sample_rate), target_sr=PESQ_RATE).astype(np.float64)
  try:
    return float(module.pesq(PESQ_RATE, ref, est, 'wb')), None
  except module.PesqError as e:
    return math.nan, f'PESQ: {type(e).__name__}{_detail(e)}'
  except (ValueError, RuntimeError) as e:  # the package's other refusals
    return math.nan, f'PESQ: {e}'


def stoi(reference, estimate, sample_rate: int) -> Tuple[float, Optional[str]]:
  """Classic STOI of ``estimate`` against ``reference``.

  Args:
    reference: float ``[n_samples]`` (or ``[n_channels, n_samples]``), the clean speech.
    estimate: float, same shape.
    sample_rate: int > 0, Hz.

  Returns:
    ``(score, why)``: STOI in [0, 1] (about; it can dip below 0) and None, or NaN
    and the reason.

  Raises:
    ParameterError: mismatched shapes, a bad rate, or the ``pystoi`` package missing.
  """
  module, ref, est, why = _prepare('STOI', reference, estimate, sample_rate)
  if why:
    return math.nan, why
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    value = float(module.stoi(ref, est, int(sample_rate), extended=False))
  if any('Not enough STFT frames' in str(w.message) for w in caught):
    return math.nan, ('STOI: under 30 frames of speech after silent frames are dropped '
                      '(too short or too quiet a reference)')
  return value, None


def speech_quality(reference, estimate, sample_rate: int) -> Dict[str, object]:
  """PESQ (wide band) and STOI of one speech estimate.

  Args:
    reference, estimate, sample_rate: as :func:`pesq_wb`.

  Returns:
    ``{'PESQ': float, 'STOI': float, 'notes': {metric: why}}``; a metric that could
    not be scored is NaN with its reason in ``notes``.

  Raises:
    ParameterError: mismatched shapes, a bad rate, or a package missing (check
      :func:`missing` first).
  """
  out: Dict[str, object] = {'notes': {}}
  for metric, fn in (('PESQ', pesq_wb), ('STOI', stoi)):
    value, why = fn(reference, estimate, sample_rate)
    out[metric] = value
    if why:
      out['notes'][metric] = why
  return out
