"""Light room and EQ variation for rendered sources (numpy / scipy, seeded).

* Room: a synthetic impulse response, a direct path plus exponentially
  decaying Gaussian noise (reverberation time ``rt60_s``) after a pre-delay,
  whose tail is low-passed as it decays (high frequencies die first), mixed
  at a direct-to-reverberant ratio ``drr_db``. Each source of a clip gets its
  own realisation of one room (the players stand in different places).
* EQ: a low shelf, a peaking band and a high shelf (RBJ audio-EQ-cookbook
  biquads), gains in dB.

:func:`draw_room` / :func:`draw_eq` draw the parameters from a generator and
return plain dicts that go into the manifest; :func:`apply_room` /
:func:`apply_eq` apply them. The output keeps the input's length (the reverb
tail past the clip is cut).
"""

import math
from typing import Any, Dict, Optional

import numpy as np
from scipy import signal

from common.errors import ParameterError


def draw_room(rng: np.random.Generator, *, share: float = 0.6) -> Optional[Dict[str, Any]]:
  """A room (or None, dry, with probability ``1 - share``).

  Returns:
    ``{'rt60_s': U(0.15, 0.8), 'drr_db': U(0, 12), 'predelay_s': U(0, 0.02),
    'seed': int}`` or None.
  """
  if rng.random() >= share:
    return None
  return {'rt60_s': round(float(rng.uniform(0.15, 0.8)), 4),
          'drr_db': round(float(rng.uniform(0.0, 12.0)), 3),
          'predelay_s': round(float(rng.uniform(0.0, 0.02)), 4),
          'seed': int(rng.integers(2 ** 31))}


def draw_eq(rng: np.random.Generator, *, share: float = 0.7) -> Optional[Dict[str, Any]]:
  """An EQ (or None, flat, with probability ``1 - share``).

  Returns:
    ``{'low_shelf_hz': U(80, 300), 'low_gain_db': U(-6, 6), 'peak_hz':
    logU(300, 4000), 'peak_gain_db': U(-6, 6), 'peak_q': U(0.7, 2),
    'high_shelf_hz': U(2000, 6000), 'high_gain_db': U(-8, 4)}`` or None.
  """
  if rng.random() >= share:
    return None
  return {'low_shelf_hz': round(float(rng.uniform(80, 300)), 2),
          'low_gain_db': round(float(rng.uniform(-6, 6)), 3),
          'peak_hz': round(float(np.exp(rng.uniform(np.log(300), np.log(4000)))), 2),
          'peak_gain_db': round(float(rng.uniform(-6, 6)), 3),
          'peak_q': round(float(rng.uniform(0.7, 2.0)), 3),
          'high_shelf_hz': round(float(rng.uniform(2000, 6000)), 2),
          'high_gain_db': round(float(rng.uniform(-8, 4)), 3)}


def room_impulse_response(room: Dict[str, Any], *, sample_rate: int,
                          seed: int) -> np.ndarray:
  """The impulse response of ``room`` (see the module doc), float64 ``[n_taps]``.

  Its direct path is 1 at tap 0; the reverberant energy is ``drr_db`` below it.
  """
  rt60 = float(room['rt60_s'])
  if not 0.01 <= rt60 <= 5:
    raise ParameterError(f'room rt60_s must be in [0.01, 5] s, got {rt60!r}')
  rng = np.random.default_rng(int(seed))
  n = int(round(min(1.5 * rt60, 2.0) * sample_rate))
  pre = int(round(float(room.get('predelay_s', 0.0)) * sample_rate))
  t = np.arange(n) / sample_rate
  tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)   # -60 dB at rt60
  # high frequencies decay faster: a one-pole low-pass closing along the tail
  b, a = signal.butter(1, min(0.9, 6000.0 / (sample_rate / 2)))
  dark = signal.lfilter(b, a, tail)
  mix = np.clip(t / rt60, 0, 1)
  tail = (1 - mix) * tail + mix * dark
  tail *= 10 ** (-float(room['drr_db']) / 20) / max(np.sqrt(np.sum(tail ** 2)), 1e-12)
  h = np.zeros(pre + n + 1)
  h[0] = 1.0
  h[pre + 1:] += tail
  return h


def apply_room(y: np.ndarray, room: Optional[Dict[str, Any]], *, sample_rate: int,
               seed: int) -> np.ndarray:
  """``y`` in ``room`` (None: unchanged), float32 ``[n_samples]``, same length."""
  y = np.asarray(y, np.float64)
  if room is None:
    return y.astype(np.float32)
  h = room_impulse_response(room, sample_rate=sample_rate, seed=seed)
  return signal.fftconvolve(y, h)[:y.shape[0]].astype(np.float32)


def _shelf(f0, gain_db, sample_rate, high):
  a = 10 ** (gain_db / 40)
  w0 = 2 * math.pi * f0 / sample_rate
  alpha = math.sin(w0) / 2 * math.sqrt(2)   # shelf slope 1
  cw, sq = math.cos(w0), 2 * math.sqrt(a) * alpha
  if high:
    b = [a * ((a + 1) + (a - 1) * cw + sq), -2 * a * ((a - 1) + (a + 1) * cw),
         a * ((a + 1) + (a - 1) * cw - sq)]
    den = [(a + 1) - (a - 1) * cw + sq, 2 * ((a - 1) - (a + 1) * cw), (a + 1) - (a - 1) * cw - sq]
  else:
    b = [a * ((a + 1) - (a - 1) * cw + sq), 2 * a * ((a - 1) - (a + 1) * cw),
         a * ((a + 1) - (a - 1) * cw - sq)]
    den = [(a + 1) + (a - 1) * cw + sq, -2 * ((a - 1) + (a + 1) * cw), (a + 1) + (a - 1) * cw - sq]
  return np.array(b) / den[0], np.array(den) / den[0]


def _peak(f0, gain_db, q, sample_rate):
  a = 10 ** (gain_db / 40)
  w0 = 2 * math.pi * f0 / sample_rate
  alpha = math.sin(w0) / (2 * q)
  b = [1 + alpha * a, -2 * math.cos(w0), 1 - alpha * a]
  den = [1 + alpha / a, -2 * math.cos(w0), 1 - alpha / a]
  return np.array(b) / den[0], np.array(den) / den[0]


def eq_filters(eq: Dict[str, Any], *, sample_rate: int):
  """The three biquads of ``eq``: ``[(b, a), ...]``.

  Raises:
    ParameterError: for a corner frequency outside (0, sample_rate / 2).
  """
  nyq = sample_rate / 2
  for key in ('low_shelf_hz', 'peak_hz', 'high_shelf_hz'):
    if not 0 < float(eq[key]) < nyq:
      raise ParameterError(f'eq {key}={eq[key]!r} must be in (0, {nyq:g}) Hz at {sample_rate} Hz')
  return [_shelf(float(eq['low_shelf_hz']), float(eq['low_gain_db']), sample_rate, False),
          _peak(float(eq['peak_hz']), float(eq['peak_gain_db']), float(eq['peak_q']), sample_rate),
          _shelf(float(eq['high_shelf_hz']), float(eq['high_gain_db']), sample_rate, True)]


def apply_eq(y: np.ndarray, eq: Optional[Dict[str, Any]], *, sample_rate: int) -> np.ndarray:
  """``y`` through the EQ (None: unchanged), float32 ``[n_samples]``."""
  y = np.asarray(y, np.float64)
  if eq is None:
    return y.astype(np.float32)
  for b, a in eq_filters(eq, sample_rate=sample_rate):
    y = signal.lfilter(b, a, y)
  return y.astype(np.float32)
