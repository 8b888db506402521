"""Synthetic speech + noise mixtures at chosen input SNRs, offline (espeak-ng).

Speech-enhancement experiments (the phase-retrieval study of
``experiments.studies.inversion_study``, the discriminative baselines) need clean speech, noise
and their mixtures with exact references. Here speech is spoken by the
formant synthesiser espeak-ng (Debian package ``espeak-ng``; ``make
speech-data`` installs it when missing) from seeded random sentences over the
word list below, so nothing is downloaded and every sample is reproducible
from a seed and the espeak-ng version.

Each clip draws, from its own seed (``clip_seeds``):

* a voice (``VOICES``: espeak-ng accents x voice variants, male and female), a
  speaking rate (words per minute) and a pitch (espeak-ng's 0-99 scale), and
  sentences from a small grammar over ``WORDS``; the speech is cut to
  ``duration_s`` (leading silence trimmed, short fades at both ends);
* a noise of one kind (``NOISE_KINDS``, taken round-robin over the clip index
  so that every split holds the kinds in equal shares): ``'white'`` (Gaussian),
  ``'pink'`` (1/f power), ``'babble'`` (the sum of ``n_babble_talkers`` other
  synthetic talkers at equal level) or ``'instrument'`` (a piano or violin
  phrase of ``datagen.midi`` rendered by fluidsynth, ``datagen.render``;
  only where fluidsynth is installed).

The voice is set to ``voice_rms_dbfs`` and the noise to the same RMS, so
``noise.wav`` is the noise at 0 dB SNR; the mixture at input SNR ``s`` dB is

  mix_snr_s = voice + 10 ** (-s / 20) * noise

(SNR over the whole clip: ``10 log10(sum voice^2 / sum (scaled noise)^2)``).
If a mixture would exceed ``max_peak``, voice and noise are scaled down by one
common gain (recorded), which keeps every SNR exact.

Layout written by :func:`run` (all wavs 32-bit float, mono, ``sample_rate``,
exactly ``round(duration_s * sample_rate)`` samples)::

  out_dir/manifest.json             how everything was made (see run)
  out_dir/train/0000/voice.wav      the clean speech
  out_dir/train/0000/noise.wav      the noise at 0 dB SNR (same RMS as the voice)
  out_dir/train/0000/mix_snr_10.wav voice + 10**(-10/20) * noise
  out_dir/train/0000/mix_snr_0.wav  voice + noise
  out_dir/train/0000/mix_snr_-10.wav  voice + 10**(10/20) * noise
  out_dir/train/0000/clip.json      this clip's manifest entry
  out_dir/validation/0000/...
  out_dir/test/0000/...

Mixture names: ``mix_snr_<snr>.wav`` with the SNR in dB written by Python's
``'{:g}'`` format: ``10``, ``0``, ``-10`` (a minus sign for negative SNRs, no
plus sign), ``2.5``. ``mixture_name`` / ``parse_mixture_name`` convert.

A clip folder is built under a hidden temporary name and renamed to ``NNNN``
when complete, so a folder ``NNNN`` is always a finished clip; an interrupted
run resumes where it stopped (finished folders are kept, checked against the
request). :func:`read_clip` / :func:`read_split` read the layout back and
reject malformed folders with a :class:`common.errors.ParameterError` naming
the folder and the file.
"""

import concurrent.futures
import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.atomic import read_json_checked, write_json_atomic
from pipeline.audio import load, resample, write_wav
from common.errors import ParameterError

INSTALL_HINT = ('run `make system-speech-deps` (or `make speech-data`, which '
                'installs what is missing) or `sudo apt-get install espeak-ng`')
MANIFEST_NAME = 'manifest.json'
CLIP_JSON = 'clip.json'
VOICE_WAV = 'voice.wav'
NOISE_WAV = 'noise.wav'
FORMAT_VERSION = 1
SPLIT_NAMES = ('train', 'validation', 'test')
NOISE_KINDS = ('white', 'pink', 'babble', 'instrument')
DEFAULT_SPLITS = (('train', 100, 60), ('validation', 200, 20), ('test', 300, 20))
DEFAULT_SNRS_DB = (10.0, 0.0, -10.0)
MIX_RE = re.compile(r'^mix_snr_(-?\d+(?:\.\d+)?)\.wav$')
CLIP_RE = re.compile(r'^\d{4,}$')
# espeak-ng voices: accent + voice variant. ``en-gb+<variant>`` silently
# ignores the variant in espeak-ng 1.51 (the British accent is ``en``), so
# it is not used; tests check that every voice here sounds different.
VOICES = (
    'en-us+m3', 'en-us+f2', 'en+m1', 'en+f4', 'en-gb-scotland+m7',
    'en-gb-scotland+f1', 'en-029+m2', 'en-029+f3', 'en-gb-x-rp+m4',
    'en-gb-x-rp+f5', 'en-gb-x-gbcwmd+m6', 'en-us+f1',
)
ESPEAK_SAMPLE_RATE = 22050  # what espeak-ng writes; resampled to sample_rate
# Salt of the clip seeds, so that the seeds (and the instrument phrases drawn
# from them) never coincide with datagen.render's clip_seeds(seed, index).
_SEED_SALT = 0x5BEEC4

# The word list of the sentence grammar (``make_sentence``).
WORDS = {
    'name': ('Anna', 'Peter', 'Maria', 'David', 'Laura', 'Thomas', 'Sarah',
             'Daniel', 'Emma', 'Oliver', 'Nina', 'Victor', 'Julia', 'Samuel',
             'Clara', 'Robert'),
    'adjective': ('small', 'old', 'bright', 'quiet', 'heavy', 'green', 'warm',
                  'empty', 'broken', 'yellow', 'narrow', 'soft', 'sharp',
                  'dark', 'clean', 'wooden', 'silver', 'tall', 'cold',
                  'gentle', 'busy', 'strange', 'round', 'plain'),
    'noun': ('house', 'river', 'window', 'garden', 'table', 'letter', 'train',
             'mountain', 'bottle', 'picture', 'basket', 'bridge', 'candle',
             'doctor', 'teacher', 'market', 'engine', 'forest', 'kitchen',
             'pencil', 'station', 'village', 'blanket', 'ladder', 'orange',
             'violin', 'piano', 'harbour', 'island', 'lamp', 'road', 'boat'),
    'verb': ('carried', 'painted', 'opened', 'found', 'watched', 'cleaned',
             'moved', 'followed', 'visited', 'repaired', 'counted', 'bought',
             'covered', 'lifted', 'reached', 'described', 'noticed', 'pushed'),
    'intransitive': ('waited', 'listened', 'laughed', 'stopped', 'arrived',
                     'worked', 'slept', 'travelled', 'returned', 'smiled'),
    'adverb': ('slowly', 'quickly', 'quietly', 'carefully', 'happily',
               'early', 'again', 'together', 'suddenly', 'rarely'),
    'preposition': ('near', 'behind', 'under', 'beside', 'across', 'inside',
                    'above', 'along', 'past', 'around'),
    'time': ('this morning', 'last night', 'on Monday', 'after lunch',
             'in the evening', 'every day', 'before dawn', 'at noon'),
}
# Sentence templates: {slot} is a word of that class.
TEMPLATES = (
    'The {adjective} {noun} {preposition} the {noun} {intransitive} {adverb}.',
    '{name} {verb} the {adjective} {noun} {time}.',
    'A {adjective} {noun} {intransitive} {preposition} the {adjective} {noun}.',
    '{name} and {name} {verb} a {noun} {preposition} the {noun}.',
    '{time}, the {noun} {intransitive} {adverb}.',
    'Why did {name} {verb_base} the {adjective} {noun}?',
    '{name} {adverb} {verb} the {noun} {preposition} the {adjective} {noun}.',
    'The {noun} was {adjective}, and the {noun} was {adjective}.',
)
_BASE = {'carried': 'carry', 'painted': 'paint', 'opened': 'open',
         'found': 'find', 'watched': 'watch', 'cleaned': 'clean',
         'moved': 'move', 'followed': 'follow', 'visited': 'visit',
         'repaired': 'repair', 'counted': 'count', 'bought': 'buy',
         'covered': 'cover', 'lifted': 'lift', 'reached': 'reach',
         'described': 'describe', 'noticed': 'notice', 'pushed': 'push'}


class SpeechDependencyError(RuntimeError):
  """The espeak-ng program (or fluidsynth, for instrument noise) is missing."""


# --------------------------------------------------------------- espeak-ng
def find_espeak() -> str:
  """Returns the path of the ``espeak-ng`` program.

  Raises:
    SpeechDependencyError: if it is not on ``PATH``; the message says how to
      install it.
  """
  path = shutil.which('espeak-ng')
  if path is None:
    raise SpeechDependencyError(
        f'the espeak-ng program is not installed (not found on PATH); '
        f'{INSTALL_HINT}')
  return path


def espeak_version() -> str:
  """Version of the installed espeak-ng, e.g. ``'1.51'``.

  Raises:
    SpeechDependencyError: if espeak-ng is not installed.
  """
  out = subprocess.run([find_espeak(), '--version'], capture_output=True,
                       text=True, timeout=30, check=False).stdout
  m = re.search(r'text-to-speech:\s*(\S+)', out)
  return m.group(1) if m else out.strip()


def have_espeak() -> bool:
  """Whether the espeak-ng program is on ``PATH``."""
  return shutil.which('espeak-ng') is not None


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


def _check_int(name: str, value, *, low: int, high: int) -> int:
  if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or
      not low <= value <= high):
    raise ParameterError(
        f'{name} must be an int in [{low}, {high}], got {value!r}')
  return int(value)


def _check_number(name: str, value, *, low: float = -math.inf,
                  high: float = math.inf, low_open: bool = False) -> float:
  if (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
      or not math.isfinite(value) or value > high or value < low or
      (low_open and value == low)):
    lo = '(' if low_open else '['
    raise ParameterError(
        f'{name} must be a finite number in {lo}{low}, {high}], got {value!r}')
  return float(value)


def synthesize_speech(text: str, *, voice: str = 'en-us+m3',
                      rate_wpm: int = 160, pitch: int = 50,
                      sample_rate: int = 16000) -> np.ndarray:
  """Speaks ``text`` with espeak-ng into a mono waveform in memory.

  Runs ``espeak-ng -v voice -s rate_wpm -p pitch -w out.wav -f text.txt``
  (no shell, no audio device) and resamples espeak-ng's 22,050 Hz output to
  ``sample_rate`` (``pipeline.audio.resample``, polyphase).

  Args:
    text: str, what to say (plain text, UTF-8).
    voice: espeak-ng voice, ``accent+variant`` (e.g. ``'en-us+f2'``).
    rate_wpm: int in [80, 450], speaking rate, words per minute.
    pitch: int in [0, 99], espeak-ng's base pitch setting.
    sample_rate: int in [8000, 96000], Hz, of the result.

  Returns:
    float32 ``[n_samples]``, espeak-ng's level (peak below 1).

  Raises:
    ParameterError: for empty text, an unknown voice or an out-of-range
      argument.
    SpeechDependencyError: if espeak-ng is not installed.
    RuntimeError: if espeak-ng fails or says nothing.
  """
  if not isinstance(text, str) or not text.strip():
    raise ParameterError(f'text must be a non-empty string, got {text!r}')
  if not isinstance(voice, str) or not re.fullmatch(r'[\w./+-]+', voice):
    raise ParameterError(
        f'voice must be an espeak-ng voice name such as "en-us+f2", got '
        f'{voice!r}')
  rate_wpm = _check_int('rate_wpm', rate_wpm, low=80, high=450)
  pitch = _check_int('pitch', pitch, low=0, high=99)
  sample_rate = _check_int('sample_rate', sample_rate, low=8000, high=96000)
  binary = find_espeak()
  with tempfile.TemporaryDirectory(prefix='espeak_') as tmp:
    txt, out = os.path.join(tmp, 'text.txt'), os.path.join(tmp, 'out.wav')
    with open(txt, 'w', encoding='utf-8') as f:
      f.write(text)
    cmd = [binary, '-b', '1', '-v', voice, '-s', str(rate_wpm), '-p',
           str(pitch), '-w', out, '-f', txt]
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                            timeout=60 + len(text) / 5, cwd=tmp)
    except subprocess.TimeoutExpired as e:
      raise RuntimeError(f'espeak-ng timed out speaking {text[:60]!r}') from e
    message = (proc.stderr.strip() or proc.stdout.strip())
    if 'voice does not exist' in message:
      raise ParameterError(
          f'espeak-ng has no voice {voice!r} ({message}); see `espeak-ng '
          f'--voices` and `espeak-ng --voices=variant`, or use one of '
          f'{VOICES}')
    if proc.returncode != 0 or not os.path.isfile(out) or (
        os.path.getsize(out) <= 44):
      raise RuntimeError(
          f'espeak-ng failed (exit code {proc.returncode}) speaking '
          f'{text[:60]!r} with voice {voice!r}: {message}')
    y, sr = load(out, mono=True)
  y = resample(y, orig_sr=sr, target_sr=sample_rate)
  if float(np.max(np.abs(y))) < 1e-5:
    raise RuntimeError(f'espeak-ng said nothing for {text[:60]!r}')
  return y.astype(np.float32)


# ---------------------------------------------------------------- sentences
def make_sentence(rng: np.random.Generator) -> str:
  """One random sentence from ``TEMPLATES`` over ``WORDS``.

  Args:
    rng: ``np.random.Generator``; the sentence is a function of its state.

  Returns:
    str, a capitalised English sentence with final punctuation.
  """
  template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]

  def fill(match):
    slot = match.group(1)
    if slot == 'verb_base':
      return _BASE[WORDS['verb'][int(rng.integers(len(WORDS['verb'])))]]
    words = WORDS[slot]
    return words[int(rng.integers(len(words)))]

  s = re.sub(r'\{(\w+)\}', fill, template)
  return s[0].upper() + s[1:]


def sentence_words() -> Tuple[str, ...]:
  """Every word a sentence can contain (lower case), for checks."""
  words = set()
  for group in list(WORDS.values()) + [tuple(_BASE.values())]:
    for w in group:
      words.update(w.lower().split())
  for template in TEMPLATES:
    words.update(re.sub(r'\{\w+\}|[^\w\s]', ' ', template).lower().split())
  return tuple(sorted(words))


# ------------------------------------------------------------------- speech
@dataclasses.dataclass(frozen=True)
class Utterance:
  """One synthetic talker's speech cut to a clip.

  Attributes:
    waveform: float32 ``[n_samples]``, at espeak-ng's level.
    voice: espeak-ng voice name.
    rate_wpm: int, words per minute.
    pitch: int, espeak-ng pitch (0-99).
    text: the sentences spoken (the clip may end inside the last one).
    seed: the seed it was drawn from.
  """
  waveform: np.ndarray
  voice: str
  rate_wpm: int
  pitch: int
  text: str
  seed: int

  def info(self) -> Dict[str, Any]:
    return {'seed': self.seed, 'voice': self.voice, 'rate_wpm': self.rate_wpm,
            'pitch': self.pitch, 'text': self.text}


def _fade(y: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
  y = y.astype(np.float32, copy=True)
  if n_in > 0:
    y[:n_in] *= 0.5 * (1 - np.cos(np.pi * (np.arange(n_in) + 0.5) / n_in))
  if n_out > 0:
    y[-n_out:] *= 0.5 * (1 + np.cos(np.pi * (np.arange(n_out) + 0.5) / n_out))
  return y


def make_utterance(seed: int, *, n_samples: int, sample_rate: int = 16000,
                   voices: Sequence[str] = VOICES,
                   rate_range_wpm: Tuple[int, int] = (130, 190),
                   pitch_range: Tuple[int, int] = (30, 70),
                   lead_s: float = 0.05) -> Utterance:
  """Draws a talker and sentences from ``seed`` and speaks ``n_samples`` of them.

  The voice, rate (uniform integer in ``rate_range_wpm``), pitch (uniform
  integer in ``pitch_range``) and sentences all come from
  ``np.random.default_rng(seed)``. Sentences are added until espeak-ng's
  speech fills the clip; the leading silence is trimmed to ``lead_s``, the
  speech is cut to ``n_samples`` (zero-padded if espeak-ng stays short after
  20 sentences) with a 5 ms fade-in and a 20 ms fade-out.

  Args:
    seed: int >= 0.
    n_samples: int > 0, samples of the result.
    sample_rate: int, Hz.
    voices: espeak-ng voice names to choose from.
    rate_range_wpm: ``(low, high)`` words per minute, inclusive.
    pitch_range: ``(low, high)`` espeak-ng pitch, inclusive, in [0, 99].
    lead_s: float >= 0, seconds of silence kept before the first word.

  Returns:
    :class:`Utterance` with ``waveform`` float32 ``[n_samples]``.

  Raises:
    ParameterError, SpeechDependencyError, RuntimeError: as
      :func:`synthesize_speech`.
  """
  rng = np.random.default_rng(int(seed))
  voice = voices[int(rng.integers(len(voices)))]
  rate = int(rng.integers(rate_range_wpm[0], rate_range_wpm[1] + 1))
  pitch = int(rng.integers(pitch_range[0], pitch_range[1] + 1))
  words_needed = rate * n_samples / sample_rate / 60 * 1.2 + 3
  sentences = []
  while sum(len(s.split()) for s in sentences) < words_needed:
    sentences.append(make_sentence(rng))
  lead = int(round(lead_s * sample_rate))
  while True:
    y = synthesize_speech(' '.join(sentences), voice=voice, rate_wpm=rate,
                          pitch=pitch, sample_rate=sample_rate)
    loud = np.flatnonzero(np.abs(y) > 1e-3 * np.max(np.abs(y)))
    start = max(int(loud[0]) - lead, 0) if loud.size else 0
    y = y[start:]
    if y.shape[0] >= n_samples or len(sentences) >= 20:
      break
    sentences.append(make_sentence(rng))
  y = np.pad(y[:n_samples], (0, max(0, n_samples - y.shape[0])))
  y = _fade(y, int(0.005 * sample_rate), int(0.02 * sample_rate))
  return Utterance(waveform=y, voice=voice, rate_wpm=rate, pitch=pitch,
                   text=' '.join(sentences), seed=int(seed))


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


# ----------------------------------------------------------------- mixtures
def mixture_name(snr_db: float) -> str:
  """File name of the mixture at ``snr_db``: ``mix_snr_10.wav``, ``mix_snr_-10.wav``.

  Args:
    snr_db: finite float, input SNR in dB; written with ``'{:g}'`` (so
      ``-0.0`` is ``0`` and ``2.50`` is ``2.5``).

  Raises:
    ParameterError: for a non-finite SNR or one ``'{:g}'`` would write in
      exponent notation (|snr| >= 1e6 or below 1e-4).
  """
  snr = _check_number('snr_db', snr_db, low=-999.0, high=999.0)
  text = f'{snr + 0.0:g}'
  if text == '-0':
    text = '0'
  if not MIX_RE.match(f'mix_snr_{text}.wav'):
    raise ParameterError(
        f'snr_db={snr_db!r} has no plain decimal name ({text!r}); use at most '
        f'4 decimals')
  return f'mix_snr_{text}.wav'


def _snr_key(snr: float) -> str:
  """``'10'``, ``'0'``, ``'-10'``: the SNR as it appears in the file name."""
  return mixture_name(snr)[len('mix_snr_'):-len('.wav')]


def parse_mixture_name(filename: str) -> Optional[float]:
  """The SNR in dB of a ``mix_snr_<snr>.wav`` name, or None for other names."""
  m = MIX_RE.match(os.path.basename(filename))
  return float(m.group(1)) if m else None


def noise_gain(snr_db: float) -> float:
  """The factor ``10 ** (-snr_db / 20)`` that puts ``noise.wav`` at ``snr_db``."""
  return float(10.0 ** (-float(snr_db) / 20.0))


def snr_db(voice, noise) -> float:
  """``10 log10(sum voice^2 / sum noise^2)`` over the whole signals, dB."""
  v = np.asarray(voice, np.float64)
  n = np.asarray(noise, np.float64)
  return float(10 * math.log10(np.sum(v * v) / max(np.sum(n * n), 1e-300)))


def make_mixtures(voice, noise, snrs_db: Sequence[float]) -> Dict[float, np.ndarray]:
  """``{snr: voice + 10 ** (-snr / 20) * noise}`` in float32.

  Args:
    voice: float ``[n_samples]``.
    noise: float ``[n_samples]``, the noise at 0 dB SNR (RMS of the voice).
    snrs_db: input SNRs in dB.

  Returns:
    ``{float(snr): float32 [n_samples]}``.

  Raises:
    ParameterError: for different lengths.
  """
  v = np.asarray(voice, np.float32)
  n = np.asarray(noise, np.float32)
  if v.shape != n.shape or v.ndim != 1:
    raise ParameterError(
        f'voice and noise must be [n_samples] of one length, got {v.shape} '
        f'and {n.shape}')
  return {float(s): v + (noise_gain(s) * n).astype(np.float32)
          for s in snrs_db}


def clip_seeds(seed: int, index: int) -> Dict[str, int]:
  """Seeds of the voice and the noise of clip ``index`` of a split.

  From ``np.random.SeedSequence([seed, index, salt])`` (a salt of this
  module), so clip ``index`` is the same whatever ``n_clips`` is and never
  shares seeds with ``datagen.render.clip_seeds``.

  Returns:
    ``{'voice': int, 'noise': int}``, each in [0, 2**32).
  """
  state = np.random.SeedSequence([int(seed), int(index), _SEED_SALT]
                                 ).generate_state(2)
  return {'voice': int(state[0]), 'noise': int(state[1])}


# ------------------------------------------------------------------- config
def _parse_split(spec) -> Tuple[str, int, int]:
  if isinstance(spec, str):
    parts = spec.split(':')
    if len(parts) != 3:
      raise ParameterError(
          f'split {spec!r} must be name:seed:n_clips, e.g. train:100:60')
    try:
      spec = (parts[0], int(parts[1]), int(parts[2]))
    except ValueError as e:
      raise ParameterError(
          f'split {spec!r}: seed and n_clips must be integers') from e
  try:
    name, seed, n = spec
  except (TypeError, ValueError) as e:
    raise ParameterError(
        f'split {spec!r} must be (name, seed, n_clips) or "name:seed:n"') from e
  if not isinstance(name, str) or not re.fullmatch(r'[A-Za-z][\w-]*', name):
    raise ParameterError(f'split name {name!r} must be a plain folder name')
  return (name, _check_int(f'split {name!r} seed', seed, low=0, high=2**32 - 1),
          _check_int(f'split {name!r} n_clips', n, low=1, high=99999))


@dataclasses.dataclass(frozen=True)
class SpeechNoiseConfig:
  """What :func:`run` makes.

  Attributes:
    out_dir: destination folder (see the module doc for the layout).
    splits: ``(name, seed, n_clips)`` per split (or ``'name:seed:n'``
      strings); clip ``i`` of a split is drawn from ``clip_seeds(seed, i)``.
    duration_s: float in [0.5, 600], seconds per clip.
    sample_rate: int in [8000, 48000], Hz.
    snrs_db: input SNRs, dB, one mixture file each.
    noise_kinds: kinds of noise, taken round-robin over the clip index; None
      for ``available_noise_kinds()`` (all four where fluidsynth is installed).
    voices: espeak-ng voices to draw from.
    rate_range_wpm: ``(low, high)`` speaking rate, words per minute.
    pitch_range: ``(low, high)`` espeak-ng pitch in [0, 99].
    n_babble_talkers: int >= 1, talkers in a babble noise.
    voice_rms_dbfs: RMS level of the voice, dBFS.
    max_peak: float in (0, 1]: voice and noise are scaled down together if a
      mixture would peak above it.
    n_workers: int >= 1, clips made at once (threads running espeak-ng /
      fluidsynth).
    overwrite: replace clip folders made with other settings (otherwise they
      are an error) and remove clip folders beyond ``n_clips``.
  """
  out_dir: str
  splits: Tuple = DEFAULT_SPLITS
  duration_s: float = 3.0
  sample_rate: int = 16000
  snrs_db: Tuple[float, ...] = DEFAULT_SNRS_DB
  noise_kinds: Optional[Tuple[str, ...]] = None
  voices: Tuple[str, ...] = VOICES
  rate_range_wpm: Tuple[int, int] = (130, 190)
  pitch_range: Tuple[int, int] = (30, 70)
  n_babble_talkers: int = 5
  voice_rms_dbfs: float = -26.0
  max_peak: float = 0.99
  n_workers: int = 2
  overwrite: bool = False

  def __post_init__(self):
    if not isinstance(self.out_dir, str) or not self.out_dir:
      raise ParameterError(f'out_dir must be a folder path, got {self.out_dir!r}')
    splits = tuple(_parse_split(s) for s in self.splits)
    if not splits:
      raise ParameterError('splits must name at least one split')
    names = [s[0] for s in splits]
    if len(set(names)) != len(names):
      raise ParameterError(f'split names must differ, got {names}')
    object.__setattr__(self, 'splits', splits)
    _check_number('duration_s', self.duration_s, low=0.5, high=600.0)
    _check_int('sample_rate', self.sample_rate, low=8000, high=48000)
    snrs = tuple(_check_number('snr_db', s, low=-60.0, high=60.0)
                 for s in self.snrs_db)
    if not snrs:
      raise ParameterError('snrs_db must hold at least one SNR')
    names = [mixture_name(s) for s in snrs]
    if len(set(names)) != len(names):
      raise ParameterError(f'snrs_db must differ, got {self.snrs_db!r}')
    object.__setattr__(self, 'snrs_db', snrs)
    if self.noise_kinds is not None:
      kinds = tuple(self.noise_kinds)
      bad = [k for k in kinds if k not in NOISE_KINDS]
      if bad or not kinds:
        raise ParameterError(
            f'noise_kinds {self.noise_kinds!r}: choose one or more of '
            f'{NOISE_KINDS}')
      object.__setattr__(self, 'noise_kinds', kinds)
    if not self.voices or not all(isinstance(v, str) for v in self.voices):
      raise ParameterError(f'voices must be espeak-ng voice names, got '
                           f'{self.voices!r}')
    object.__setattr__(self, 'voices', tuple(self.voices))
    for name, (lo, hi), low, high in (
        ('rate_range_wpm', self.rate_range_wpm, 80, 450),
        ('pitch_range', self.pitch_range, 0, 99)):
      _check_int(f'{name}[0]', lo, low=low, high=high)
      _check_int(f'{name}[1]', hi, low=lo, high=high)
    object.__setattr__(self, 'rate_range_wpm', tuple(map(int, self.rate_range_wpm)))
    object.__setattr__(self, 'pitch_range', tuple(map(int, self.pitch_range)))
    _check_int('n_babble_talkers', self.n_babble_talkers, low=1, high=64)
    _check_number('voice_rms_dbfs', self.voice_rms_dbfs, low=-80.0, high=-3.0)
    _check_number('max_peak', self.max_peak, low=0.0, high=1.0, low_open=True)
    _check_int('n_workers', self.n_workers, low=1, high=256)

  @property
  def n_samples(self) -> int:
    return int(round(self.duration_s * self.sample_rate))


# ------------------------------------------------------------------ writing
def _clip_request(config: SpeechNoiseConfig, kinds, split: str, seed: int,
                  index: int) -> Dict[str, Any]:
  """What a clip folder must have been made with to be kept on resume."""
  return {
      'format_version': FORMAT_VERSION, 'split': split, 'split_seed': seed,
      'index': index, 'seeds': clip_seeds(seed, index),
      'sample_rate': config.sample_rate, 'n_samples': config.n_samples,
      'snrs_db': list(config.snrs_db),
      'noise_kind': kinds[index % len(kinds)],
      'voices': list(config.voices), 'rate_range_wpm': list(config.rate_range_wpm),
      'pitch_range': list(config.pitch_range),
      'n_babble_talkers': config.n_babble_talkers,
      'voice_rms_dbfs': config.voice_rms_dbfs, 'max_peak': config.max_peak,
  }


def write_clip(folder: str, voice, noise, *, sample_rate: int,
               snrs_db: Sequence[float],
               info: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
  """Writes one clip folder atomically (a hidden temporary folder, then a rename).

  Args:
    folder: the clip folder to create (``.../NNNN``); must not exist.
    voice: float ``[n_samples]``, the clean speech.
    noise: float ``[n_samples]``, the noise at 0 dB SNR.
    sample_rate: int, Hz.
    snrs_db: input SNRs, dB, one ``mix_snr_<snr>.wav`` each.
    info: written as ``clip.json`` (with the file names added), or None.

  Returns:
    The mixtures written, ``{snr: float32 [n_samples]}``.

  Raises:
    ParameterError: if ``folder`` exists or the signals differ in length.
  """
  folder = os.path.abspath(folder)
  if os.path.exists(folder):
    raise ParameterError(f'clip folder {folder!r} already exists')
  mixtures = make_mixtures(voice, noise, snrs_db)
  parent, name = os.path.split(folder)
  tmp = os.path.join(parent, f'.{name}.partial-{uuid.uuid4().hex[:8]}')
  os.makedirs(tmp)
  try:
    write_wav(os.path.join(tmp, VOICE_WAV), np.asarray(voice, np.float32),
              sample_rate, subtype='FLOAT')
    write_wav(os.path.join(tmp, NOISE_WAV), np.asarray(noise, np.float32),
              sample_rate, subtype='FLOAT')
    files = {'voice': VOICE_WAV, 'noise': NOISE_WAV}
    for snr, y in mixtures.items():
      files[_snr_key(snr)] = mixture_name(snr)
      write_wav(os.path.join(tmp, mixture_name(snr)), y, sample_rate,
                subtype='FLOAT')
    if info is not None:
      write_json_atomic(os.path.join(tmp, CLIP_JSON), dict(info, files=files),
                        sort_keys=False)
    os.rename(tmp, folder)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return mixtures


def make_clip(config: SpeechNoiseConfig, request: Dict[str, Any]):
  """The voice, noise and manifest entry of one clip (nothing written).

  Args:
    config: the data-set settings.
    request: from ``_clip_request`` (split, index, seeds, noise kind).

  Returns:
    ``(voice, noise, info)``: float32 ``[n_samples]`` twice (the noise at
    0 dB SNR) and the clip's manifest entry.
  """
  n, sr = config.n_samples, config.sample_rate
  seeds = request['seeds']
  utt = make_utterance(seeds['voice'], n_samples=n, sample_rate=sr,
                       voices=config.voices,
                       rate_range_wpm=config.rate_range_wpm,
                       pitch_range=config.pitch_range)
  noise, noise_info = make_noise(
      request['noise_kind'], n, seed=seeds['noise'], sample_rate=sr,
      n_babble_talkers=config.n_babble_talkers, voices=config.voices,
      rate_range_wpm=config.rate_range_wpm, pitch_range=config.pitch_range)
  target = 10 ** (config.voice_rms_dbfs / 20)
  voice = utt.waveform.astype(np.float64) * (target / max(rms(utt.waveform), 1e-12))
  noise = noise.astype(np.float64) * target          # RMS of the voice: 0 dB
  top = max(np.max(np.abs(voice + noise_gain(s) * noise)) for s in config.snrs_db)
  gain = min(1.0, config.max_peak / top)
  voice32 = (voice * gain).astype(np.float32)
  noise32 = (noise * gain).astype(np.float32)
  info = dict(request, voice=utt.info(), noise=noise_info, gain=float(gain),
              voice_rms_dbfs_actual=_db(rms(voice32)),
              measured_snr_db={_snr_key(s): round(snr_db(
                  voice32, noise_gain(s) * noise32), 6) for s in config.snrs_db})
  return voice32, noise32, info


def _split_dir(out_dir: str, split: str) -> str:
  return os.path.join(out_dir, split)


def _clip_name(index: int) -> str:
  return f'{index:04d}'


def _existing_clip(folder: str, request: Dict[str, Any]) -> Optional[Dict]:
  """The clip.json of a finished folder made with ``request``, else None."""
  path = os.path.join(folder, CLIP_JSON)
  try:
    with open(path, encoding='utf-8') as f:
      info = json.load(f)
  except (OSError, ValueError):
    return None
  if any(info.get(k) != v for k, v in request.items()):
    return None
  return info


def _make_one(config: SpeechNoiseConfig, request: Dict[str, Any],
              folder: str) -> Dict[str, Any]:
  voice, noise, info = make_clip(config, request)
  if os.path.exists(folder):  # overwrite: replace the old folder
    trash = f'{folder}.old-{uuid.uuid4().hex[:8]}'
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
  write_clip(folder, voice, noise, sample_rate=config.sample_rate,
             snrs_db=config.snrs_db, info=info)
  with open(os.path.join(folder, CLIP_JSON), encoding='utf-8') as f:
    return json.load(f)


def run(config: SpeechNoiseConfig, *, progress: bool = True) -> Dict[str, Any]:
  """Makes (or completes) the speech + noise data set of ``config``.

  Finished clip folders made with the same settings are kept; hidden
  leftovers of an interrupted run are removed; ``manifest.json`` is written
  last (atomically). The manifest holds the settings, the espeak-ng (and
  fluidsynth) versions and, per split, every clip's entry: seeds, voice, rate,
  pitch, text, noise kind and how the noise was made, SNRs, gain and the
  file names.

  Args:
    config: :class:`SpeechNoiseConfig`.
    progress: show a progress bar per split (tqdm, on stderr).

  Returns:
    The manifest, as written.

  Raises:
    ParameterError: if a clip folder holds a clip made with other settings
      (or is not a finished clip) and ``config.overwrite`` is False, or if a
      split holds more clip folders than asked for.
    SpeechDependencyError: if espeak-ng (or fluidsynth, for instrument noise)
      is missing.
  """
  version = espeak_version()  # fails early when espeak-ng is missing
  kinds = config.noise_kinds or available_noise_kinds()
  synth_info = None
  if 'instrument' in kinds:
    from datagen import render  # pylint: disable=g-import-not-at-top
    if not have_fluidsynth():
      raise SpeechDependencyError(
          f'noise kind "instrument" needs fluidsynth and a soundfont '
          f'({render.INSTALL_HINT}); or choose noise_kinds without it')
    synth_info = {'fluidsynth_version': render.fluidsynth_version(),
                  'soundfont': render.find_soundfont()}
  splits_out = {}
  for split, seed, n_clips in config.splits:
    split_dir = _split_dir(config.out_dir, split)
    os.makedirs(split_dir, exist_ok=True)
    for entry in os.listdir(split_dir):
      if entry.startswith('.') and '.partial-' in entry:
        shutil.rmtree(os.path.join(split_dir, entry), ignore_errors=True)
    extra = sorted(e for e in os.listdir(split_dir)
                   if CLIP_RE.match(e) and int(e) >= n_clips)
    if extra:
      if not config.overwrite:
        raise ParameterError(
            f'{split_dir!r} holds {len(extra)} clip folders beyond n_clips='
            f'{n_clips} ({extra[0]}..{extra[-1]}); pass overwrite=True '
            f'(--overwrite) to remove them or choose another out_dir')
      for e in extra:
        shutil.rmtree(os.path.join(split_dir, e))
    todo, clips = [], [None] * n_clips
    for i in range(n_clips):
      request = _clip_request(config, kinds, split, seed, i)
      folder = os.path.join(split_dir, _clip_name(i))
      if os.path.exists(folder):
        info = _existing_clip(folder, request)
        if info is not None:
          clips[i] = info
          continue
        if not config.overwrite:
          raise ParameterError(
              f'clip folder {folder!r} was made with other settings (or is '
              f'not a finished clip: {CLIP_JSON} missing or different); pass '
              f'overwrite=True (--overwrite) to replace it or choose another '
              f'out_dir')
      todo.append((i, request, folder))
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    with concurrent.futures.ThreadPoolExecutor(config.n_workers) as pool, tqdm(
        total=len(todo), desc=f'speech + noise {split}', unit='clip',
        disable=not progress or not todo, file=sys.stderr) as bar:
      futures = {pool.submit(_make_one, config, req, folder): i
                 for i, req, folder in todo}
      try:
        for future in concurrent.futures.as_completed(futures):
          clips[futures[future]] = future.result()
          bar.update(1)
      except BaseException:
        for future in futures:
          future.cancel()
        raise
    splits_out[split] = {'seed': seed, 'n_clips': n_clips,
                         'clips': [dict(c, folder=f'{split}/{_clip_name(c["index"])}')
                                   for c in clips]}
  manifest = {
      'format_version': FORMAT_VERSION,
      'created_by': 'datagen.speech.run',
      'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'espeak_ng_version': version,
      'synth': synth_info,
      'sample_rate': config.sample_rate,
      'duration_s': config.duration_s,
      'n_samples': config.n_samples,
      'snrs_db': list(config.snrs_db),
      'mixture_files': {_snr_key(s): mixture_name(s) for s in config.snrs_db},
      'mixture_definition': 'mix_snr_<s>.wav = voice.wav + 10 ** (-s / 20) * '
                            'noise.wav; SNR over the whole clip',
      'noise_kinds': list(kinds),
      'noise_kind_rule': 'noise_kinds[index % len(noise_kinds)]',
      'seed_rule': 'np.random.SeedSequence([split_seed, index, 0x5BEEC4])'
                   '.generate_state(2) -> (voice, noise) seeds',
      'voices': list(config.voices),
      'rate_range_wpm': list(config.rate_range_wpm),
      'pitch_range': list(config.pitch_range),
      'n_babble_talkers': config.n_babble_talkers,
      'voice_rms_dbfs': config.voice_rms_dbfs,
      'max_peak': config.max_peak,
      'splits': splits_out,
  }
  write_json_atomic(os.path.join(config.out_dir, MANIFEST_NAME), manifest,
                    sort_keys=False)
  return manifest


# ------------------------------------------------------------------ reading
@dataclasses.dataclass(frozen=True)
class SpeechNoiseClip:
  """One clip folder read back.

  Attributes:
    folder: the clip folder.
    voice: float32 ``[n_samples]``, the clean speech.
    noise: float32 ``[n_samples]``, the noise at 0 dB SNR.
    mixtures: ``{snr_db: float32 [n_samples]}``.
    sample_rate: int, Hz.
  """
  folder: str
  voice: np.ndarray
  noise: np.ndarray
  mixtures: Dict[float, np.ndarray]
  sample_rate: int

  @property
  def name(self) -> str:
    return os.path.basename(os.path.normpath(self.folder))

  @property
  def snrs_db(self) -> Tuple[float, ...]:
    return tuple(sorted(self.mixtures, reverse=True))

  def noise_at(self, snr_db_value: float) -> np.ndarray:
    """The noise as it is in the mixture at ``snr_db_value``, float32 ``[n_samples]``."""
    return (noise_gain(snr_db_value) * self.noise).astype(np.float32)

  def sources(self, snr_db_value: float) -> np.ndarray:
    """``[voice, scaled noise]``, float32 ``[2, n_samples]``, summing to the mixture."""
    return np.stack([self.voice, self.noise_at(snr_db_value)])

  def mixture(self, snr_db_value: float) -> np.ndarray:
    """The mixture at ``snr_db_value``, float32 ``[n_samples]``.

    Raises:
      ParameterError: if the folder has no mixture at that SNR.
    """
    if float(snr_db_value) not in self.mixtures:
      raise ParameterError(
          f'{self.folder}: no mixture at {snr_db_value!r} dB '
          f'({mixture_name(snr_db_value)}); it has {list(self.snrs_db)}')
    return self.mixtures[float(snr_db_value)]


def _read_wav(folder: str, filename: str, sample_rate: int) -> np.ndarray:
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  path = os.path.join(folder, filename)
  if not os.path.isfile(path):
    raise ParameterError(f'clip folder {folder!r}: {filename} is missing')
  try:
    info = sf.info(path)
  except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
    raise ParameterError(
        f'clip folder {folder!r}: {filename} is not a readable audio file: '
        f'{e}') from e
  if info.samplerate != sample_rate:
    raise ParameterError(
        f'clip folder {folder!r}: {filename} has sample rate '
        f'{info.samplerate} Hz, expected {sample_rate} Hz')
  if info.channels != 1:
    raise ParameterError(
        f'clip folder {folder!r}: {filename} has {info.channels} channels, '
        f'expected mono')
  try:
    y, _ = load(path, mono=True)
  except ParameterError as e:
    raise ParameterError(f'clip folder {folder!r}: {filename}: {e}') from e
  return y


def read_clip(folder: str, *, sample_rate: int = 16000,
              snrs_db: Optional[Sequence[float]] = None,
              atol: float = 1e-4) -> SpeechNoiseClip:
  """Reads and checks one ``NNNN/`` clip folder.

  Args:
    folder: the clip folder.
    sample_rate: int, Hz, that every wav must have.
    snrs_db: SNRs whose mixtures must be present (and are the only ones
      read); None reads every ``mix_snr_*.wav``.
    atol: float > 0, largest absolute difference allowed between a mixture
      and ``voice + 10 ** (-snr / 20) * noise`` (float wavs agree to about
      1e-7; 16-bit ones to about 1e-4).

  Returns:
    :class:`SpeechNoiseClip`.

  Raises:
    ParameterError: naming the folder and the file, if the folder is
      missing, a wav is missing or unreadable, has another sample rate, is
      not mono, or differs in length from ``voice.wav``, no mixture is
      present, or a mixture is not voice + scaled noise.
  """
  if not os.path.isdir(folder):
    raise ParameterError(f'clip folder {folder!r} does not exist')
  voice = _read_wav(folder, VOICE_WAV, sample_rate)
  noise = _read_wav(folder, NOISE_WAV, sample_rate)
  if snrs_db is None:
    names = sorted(f for f in os.listdir(folder) if MIX_RE.match(f))
    if not names:
      raise ParameterError(
          f'clip folder {folder!r}: no mixture (mix_snr_<snr>.wav) found')
  else:
    names = [mixture_name(s) for s in snrs_db]
  n = voice.shape[0]
  if noise.shape[0] != n:
    raise ParameterError(
        f'clip folder {folder!r}: {NOISE_WAV} has {noise.shape[0]} samples, '
        f'{VOICE_WAV} has {n}')
  mixtures = {}
  for filename in names:
    y = _read_wav(folder, filename, sample_rate)
    if y.shape[0] != n:
      raise ParameterError(
          f'clip folder {folder!r}: {filename} has {y.shape[0]} samples, '
          f'{VOICE_WAV} has {n}')
    snr = parse_mixture_name(filename)
    expected = voice + (noise_gain(snr) * noise).astype(np.float32)
    err = float(np.max(np.abs(y - expected)))
    if not err <= atol:
      raise ParameterError(
          f'clip folder {folder!r}: {filename} is not {VOICE_WAV} + '
          f'10 ** (-{snr:g} / 20) * {NOISE_WAV} (largest difference {err:.3g} '
          f'> atol={atol:g}); measured SNR of the residual noise '
          f'{snr_db(voice, y - voice):.2f} dB')
    mixtures[snr] = y
  return SpeechNoiseClip(folder=folder, voice=voice, noise=noise,
                         mixtures=mixtures, sample_rate=int(sample_rate))


def list_clips(split_dir: str) -> List[str]:
  """The clip folders ``NNNN/`` of a split, sorted.

  Hidden entries (a run's temporary folders) and plain files are skipped.

  Raises:
    ParameterError: if ``split_dir`` does not exist, holds no clip folder, or
      holds a visible folder whose name is not a clip number.
  """
  if not os.path.isdir(split_dir):
    raise ParameterError(
        f'split folder {split_dir!r} does not exist; make the data with '
        f'`make speech-data` or make_speech_noise.py')
  out = []
  for entry in sorted(os.listdir(split_dir)):
    path = os.path.join(split_dir, entry)
    if entry.startswith('.') or not os.path.isdir(path):
      continue
    if not CLIP_RE.match(entry):
      raise ParameterError(
          f'split folder {split_dir!r} holds {entry!r}, which is not a clip '
          f'folder (NNNN/)')
    out.append(path)
  if not out:
    raise ParameterError(f'split folder {split_dir!r} holds no clip folder')
  return out


def read_split(split_dir: str, *, sample_rate: int = 16000,
               snrs_db: Optional[Sequence[float]] = None,
               limit: Optional[int] = None) -> List[SpeechNoiseClip]:
  """Reads every clip of a split (see :func:`read_clip`).

  Args:
    split_dir: e.g. ``out/speech/test``.
    sample_rate: int, Hz.
    snrs_db: mixtures to read (all present by default).
    limit: read only the first ``limit`` clips, or None for all.

  Returns:
    list of :class:`SpeechNoiseClip`, in folder order.

  Raises:
    ParameterError: as :func:`list_clips` and :func:`read_clip`.
  """
  folders = list_clips(split_dir)
  if limit is not None:
    folders = folders[:_check_int('limit', limit, low=1, high=10**9)]
  return [read_clip(f, sample_rate=sample_rate, snrs_db=snrs_db)
          for f in folders]


def load_manifest(out_dir: str) -> Dict[str, Any]:
  """Reads ``out_dir/manifest.json`` of a speech + noise data set.

  Raises:
    ParameterError: if it is missing or not valid JSON.
  """
  path = os.path.join(out_dir, MANIFEST_NAME)
  return read_json_checked(path, missing=(
      f'{out_dir!r} holds no speech + noise data set ({path} is missing); '
      f'make one with `make speech-data` or make_speech_noise.py'))
