"""Noises at unit RMS, offline: synthetic, rendered and recorded.

Kinds (:func:`make_noise`):

* ``'white'`` (Gaussian) and ``'pink'`` (1/f power);
* ``'babble'``: ``n_talkers`` synthetic talkers (``datagen.voices``) summed at
  equal level with random onsets;
* ``'instrument'``: a piano or violin phrase of ``datagen.midi`` rendered by
  fluidsynth (``datagen.render``);
* ``'sample'`` and ``'music'``: recorded sounds (the sonic-pi samples) and
  recorded music (the Asterisk music-on-hold tracks) of ``datagen.recorded``;
  see :func:`recorded_noise`.
"""

import math
import os
import tempfile
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from common.errors import ParameterError
from datagen.voices import (VOICES, SpeechDependencyError, _check_int,
                            make_utterance)

NOISE_KINDS = ('white', 'pink', 'babble', 'instrument')
RECORDED_NOISE_KINDS = ('sample', 'music')


def have_fluidsynth() -> bool:
  """Whether instrument noise can be rendered (fluidsynth and a soundfont)."""
  from datagen import render  # pylint: disable=g-import-not-at-top
  try:
    render.find_fluidsynth()
    render.find_soundfont()
  except (render.RenderDependencyError, ParameterError):
    return False
  return True


def available_noise_kinds() -> Tuple[str, ...]:
  """``NOISE_KINDS`` without ``'instrument'`` when fluidsynth is missing."""
  return NOISE_KINDS if have_fluidsynth() else tuple(
      k for k in NOISE_KINDS if k != 'instrument')


# -------------------------------------------------------------------- noise
def white_noise(n_samples: int, *, seed: int) -> np.ndarray:
  """Gaussian white noise, unit variance, float32 ``[n_samples]``."""
  return np.random.default_rng(int(seed)).standard_normal(n_samples).astype(
      np.float32)


def pink_noise(n_samples: int, *, seed: int) -> np.ndarray:
  """Pink (1/f power spectrum, -3 dB per octave) noise, unit variance.

  Gaussian white noise shaped in the frequency domain by ``1 / sqrt(f)``
  (the DC bin set to zero), float32 ``[n_samples]``.
  """
  w = np.random.default_rng(int(seed)).standard_normal(n_samples)
  spec = np.fft.rfft(w)
  f = np.arange(spec.shape[0], dtype=np.float64)
  gain = np.zeros_like(f)
  gain[1:] = 1.0 / np.sqrt(f[1:])
  y = np.fft.irfft(spec * gain, n=n_samples)
  y -= y.mean()
  return (y / max(float(np.std(y)), 1e-12)).astype(np.float32)


def rms(y: np.ndarray) -> float:
  """Root-mean-square of a waveform (linear, full scale 1)."""
  y = np.asarray(y, dtype=np.float64)
  return float(np.sqrt(np.mean(y * y)))


def _db(x: float) -> float:
  return float(20 * math.log10(max(x, 1e-12)))


def babble_noise(n_samples: int, *, seed: int, n_talkers: int = 5,
                 sample_rate: int = 16000, voices: Sequence[str] = VOICES,
                 rate_range_wpm: Tuple[int, int] = (130, 190),
                 pitch_range: Tuple[int, int] = (30, 70)):
  """Babble: ``n_talkers`` synthetic talkers at equal RMS, summed.

  Talker ``k`` is ``make_utterance`` with the ``k``-th seed of
  ``np.random.SeedSequence(seed)``; each starts at a random offset of up to
  half a second (speech before it is dropped), so the babble has no common
  onset.

  Args:
    n_samples: int > 0.
    seed: int >= 0.
    n_talkers: int >= 1.
    sample_rate, voices, rate_range_wpm, pitch_range: as
      :func:`make_utterance`.

  Returns:
    ``(noise, talkers)``: float32 ``[n_samples]`` at unit RMS, and a list of
    the talkers' :meth:`Utterance.info` dicts (plus ``offset_s``).

  Raises:
    ParameterError, SpeechDependencyError, RuntimeError: as
      :func:`synthesize_speech`.
  """
  n_talkers = _check_int('n_talkers', n_talkers, low=1, high=64)
  seeds = np.random.SeedSequence(int(seed)).generate_state(n_talkers + 1)
  offsets = np.random.default_rng(int(seeds[-1])).integers(
      0, sample_rate // 2 + 1, size=n_talkers)
  total = np.zeros(n_samples, np.float64)
  talkers = []
  for k in range(n_talkers):
    u = make_utterance(int(seeds[k]), n_samples=n_samples + int(offsets[k]),
                       sample_rate=sample_rate, voices=voices,
                       rate_range_wpm=rate_range_wpm, pitch_range=pitch_range)
    y = u.waveform[int(offsets[k]):]
    total += y / max(rms(y), 1e-9)
    talkers.append(dict(u.info(), offset_s=float(offsets[k]) / sample_rate))
  return (total / max(rms(total), 1e-12)).astype(np.float32), talkers


def instrument_noise(n_samples: int, *, seed: int, sample_rate: int = 16000):
  """A piano or violin phrase (``datagen.midi``) rendered by fluidsynth.

  Args:
    n_samples: int > 0.
    seed: int >= 0; picks the instrument and the phrase.
    sample_rate: int, Hz.

  Returns:
    ``(noise, info)``: float32 ``[n_samples]`` at unit RMS, and
    ``{'instrument', 'phrase_seed', 'key', 'tempo_bpm', 'n_notes'}``.

  Raises:
    SpeechDependencyError: if fluidsynth or a soundfont is missing.
    RuntimeError: if fluidsynth fails.
  """
  from datagen import midi  # pylint: disable=g-import-not-at-top
  from datagen import render  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(int(seed))
  instrument = ('piano', 'violin')[int(rng.integers(2))]
  phrase_seed = int(rng.integers(2 ** 31))
  duration_s = n_samples / sample_rate
  phrase = midi.make_phrase(instrument=instrument,
                            duration_s=max(duration_s, 0.5), seed=phrase_seed)
  try:
    with tempfile.TemporaryDirectory(prefix='noise_midi_') as tmp:
      path = os.path.join(tmp, 'phrase.mid')
      midi.write_midi(path, phrase)
      y = render.synthesize_midi(path, sample_rate=sample_rate,
                                 duration_s=n_samples / sample_rate, peak=None)
  except render.RenderDependencyError as e:
    raise SpeechDependencyError(
        f'instrument noise needs fluidsynth: {e}; or leave "instrument" out '
        f'of noise_kinds') from e
  y = np.pad(y[:n_samples], (0, max(0, n_samples - y.shape[0])))
  info = {'instrument': instrument, 'phrase_seed': phrase_seed,
          'key': phrase.key_name, 'tempo_bpm': round(phrase.tempo_bpm, 3),
          'n_notes': len(phrase.notes)}
  return (y / max(rms(y), 1e-12)).astype(np.float32), info


def make_noise(kind: str, n_samples: int, *, seed: int,
               sample_rate: int = 16000, n_babble_talkers: int = 5,
               voices: Sequence[str] = VOICES,
               rate_range_wpm: Tuple[int, int] = (130, 190),
               pitch_range: Tuple[int, int] = (30, 70)):
  """Noise of one of ``NOISE_KINDS`` at unit RMS.

  Args:
    kind: ``'white'``, ``'pink'``, ``'babble'`` or ``'instrument'``.
    n_samples: int > 0.
    seed: int >= 0.
    sample_rate: int, Hz.
    n_babble_talkers: int >= 1, talkers in ``'babble'``.
    voices, rate_range_wpm, pitch_range: the babble talkers' (as
      :func:`make_utterance`).

  Returns:
    ``(noise, info)``: float32 ``[n_samples]`` with RMS 1, and a dict that
    says how it was made.

  Raises:
    ParameterError: for an unknown kind.
    SpeechDependencyError: if a program the kind needs is missing.
  """
  if kind == 'white':
    y, info = white_noise(n_samples, seed=seed), {}
  elif kind == 'pink':
    y, info = pink_noise(n_samples, seed=seed), {}
  elif kind == 'babble':
    y, talkers = babble_noise(n_samples, seed=seed, n_talkers=n_babble_talkers,
                              sample_rate=sample_rate, voices=voices,
                              rate_range_wpm=rate_range_wpm,
                              pitch_range=pitch_range)
    info = {'talkers': talkers}
  elif kind == 'instrument':
    y, info = instrument_noise(n_samples, seed=seed, sample_rate=sample_rate)
  else:
    raise ParameterError(
        f'unknown noise kind {kind!r}; choose from {NOISE_KINDS}')
  y = y / max(rms(y), 1e-12)
  return y.astype(np.float32), dict(kind=kind, seed=int(seed), **info)



def recorded_noise(files: Sequence[str], n_samples: int, *, seed: int,
                   sample_rate: int = 16000) -> Tuple[np.ndarray, Dict[str, Any]]:
  """Recorded noise: a random excerpt of a recording, looped if it is short.

  One file is drawn from ``files`` (``datagen.recorded.sample_files()`` or
  ``music_files()``), decoded (``datagen.recorded.load_recording``), and an
  excerpt of ``n_samples`` starting at a random offset is taken; a file
  shorter than the clip is repeated with a random gap of up to 0.5 s of
  silence between repeats (a drum hit becomes a rhythm, a drone stays a drone).

  Args:
    files: paths of recordings (flac / wav / g722).
    n_samples: int > 0.
    seed: int >= 0.
    sample_rate: int, Hz.

  Returns:
    ``(noise, info)``: float32 ``[n_samples]`` at unit RMS, and ``{'file',
    'offset_s', 'looped', 'gap_s'}``.

  Raises:
    ParameterError: for an empty file list or a silent excerpt.
    datagen.recorded.RecordedDependencyError: if ffmpeg is needed and missing.
  """
  from datagen import recorded  # pylint: disable=g-import-not-at-top
  if not files:
    raise ParameterError('no recorded noise files to draw from')
  rng = np.random.default_rng(int(seed))
  path = files[int(rng.integers(len(files)))]
  y = recorded.load_recording(path, sample_rate=sample_rate)
  gap = 0
  looped = y.shape[0] < n_samples
  if looped:
    gap = int(rng.integers(0, sample_rate // 2 + 1))
    unit = np.concatenate([y, np.zeros(gap, np.float32)])
    y = np.tile(unit, int(math.ceil(2 * n_samples / unit.shape[0])) + 1)
  offset = int(rng.integers(0, y.shape[0] - n_samples + 1))
  y = y[offset:offset + n_samples]
  if rms(y) < 1e-5:
    # an excerpt in a pause of the recording: take the loudest one instead
    hop = max(1, sample_rate // 10)
    full = recorded.load_recording(path, sample_rate=sample_rate)
    if looped or full.shape[0] <= n_samples:
      raise ParameterError(f'recording {path!r} is silent')
    starts = np.arange(0, full.shape[0] - n_samples + 1, hop)
    energies = [rms(full[s:s + n_samples]) for s in starts]
    offset = int(starts[int(np.argmax(energies))])
    y = full[offset:offset + n_samples]
  info = {'file': os.path.basename(path), 'offset_s': round(offset / sample_rate, 4),
          'looped': bool(looped), 'gap_s': round(gap / sample_rate, 4)}
  return (y / max(rms(y), 1e-12)).astype(np.float32), info
