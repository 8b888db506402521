"""Synthetic voices, offline: espeak-ng (formant) and flite (diphone / clustergen).

espeak-ng (Debian ``espeak-ng``) speaks seeded random sentences over the word
list below (:func:`make_utterance`), in the accents and voice variants of
``VOICES``; flite (Debian ``flite``) speaks the same sentences with the voices
of ``FLITE_VOICES`` (:func:`synthesize_flite`). Every sample is reproducible
from a seed and the program's version; nothing is downloaded.

Recorded voices (the Asterisk prompts) are in ``datagen.recorded``; noises in
``datagen.noise``; the speech + noise sets in ``datagen.speech`` (the
inversion study's) and ``datagen.voice_noise`` (the training set).
"""

import dataclasses
import math
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, Dict, Sequence, Tuple

import numpy as np

from common.errors import ParameterError
from pipeline.audio import load, resample

INSTALL_HINT = ('run `make system-speech-deps` (or `make speech-data`, which '
                'installs what is missing) or `sudo apt-get install espeak-ng`')
# espeak-ng voices: accent + voice variant. ``en-gb+<variant>`` silently
# ignores the variant in espeak-ng 1.51 (the British accent is ``en``), so
# it is not used; tests check that every voice here sounds different.
VOICES = (
    'en-us+m3', 'en-us+f2', 'en+m1', 'en+f4', 'en-gb-scotland+m7',
    'en-gb-scotland+f1', 'en-029+m2', 'en-029+f3', 'en-gb-x-rp+m4',
    'en-gb-x-rp+f5', 'en-gb-x-gbcwmd+m6', 'en-us+f1',
)
ESPEAK_SAMPLE_RATE = 22050  # what espeak-ng writes; resampled to sample_rate

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



# -------------------------------------------------------------------- flite
# flite 2.2's built-in voices (``flite -lv``): kal / kal16 (diphone, male),
# awb (Scottish male), rms (US male), slt (US female) clustergen voices.
FLITE_VOICES = ('kal16', 'awb', 'rms', 'slt', 'kal')
FLITE_INSTALL_HINT = ('run `make system-speech-deps` or `sudo apt-get install flite`')


def have_flite() -> bool:
  """Whether the flite program is on ``PATH``."""
  return shutil.which('flite') is not None


def flite_version() -> str:
  """Version of the installed flite, e.g. ``'2.2'``.

  Raises:
    SpeechDependencyError: if flite is not installed.
  """
  binary = shutil.which('flite')
  if binary is None:
    raise SpeechDependencyError(f'the flite program is not installed; {FLITE_INSTALL_HINT}')
  out = subprocess.run([binary, '--version'], capture_output=True, text=True,
                       timeout=30, check=False)
  m = re.search(r'flite-(\S+)', out.stdout + out.stderr)
  return m.group(1) if m else (out.stdout + out.stderr).strip()[:40]


def synthesize_flite(text: str, *, voice: str = 'slt', sample_rate: int = 16000,
                     rate_scale: float = 1.0) -> np.ndarray:
  """Speaks ``text`` with flite into a mono waveform in memory.

  Runs ``flite -voice voice --setf duration_stretch=1/rate_scale -f text.txt
  -o out.wav`` (no shell, no audio device) and resamples its output (8 kHz for
  ``kal``, 16 kHz otherwise) to ``sample_rate``.

  Args:
    text: str, what to say.
    voice: one of ``FLITE_VOICES``.
    sample_rate: int in [8000, 96000], Hz, of the result.
    rate_scale: float in [0.5, 2], speaking-rate factor (2 = twice as fast).

  Returns:
    float32 ``[n_samples]`` at flite's level.

  Raises:
    ParameterError: for empty text, an unknown voice or a bad rate.
    SpeechDependencyError: if flite is not installed.
    RuntimeError: if flite fails or says nothing.
  """
  if not isinstance(text, str) or not text.strip():
    raise ParameterError(f'text must be a non-empty string, got {text!r}')
  if voice not in FLITE_VOICES:
    raise ParameterError(f'flite voice {voice!r} is not one of {FLITE_VOICES}')
  rate_scale = _check_number('rate_scale', rate_scale, low=0.5, high=2.0)
  sample_rate = _check_int('sample_rate', sample_rate, low=8000, high=96000)
  binary = shutil.which('flite')
  if binary is None:
    raise SpeechDependencyError(f'the flite program is not installed; {FLITE_INSTALL_HINT}')
  with tempfile.TemporaryDirectory(prefix='flite_') as tmp:
    txt, out = os.path.join(tmp, 'text.txt'), os.path.join(tmp, 'out.wav')
    with open(txt, 'w', encoding='utf-8') as f:
      f.write(text)
    cmd = [binary, '-voice', voice, '--setf', f'duration_stretch={1 / rate_scale:.4f}',
           '-f', txt, '-o', out]
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                            timeout=60 + len(text) / 5, cwd=tmp)
    except subprocess.TimeoutExpired as e:
      raise RuntimeError(f'flite timed out speaking {text[:60]!r}') from e
    if proc.returncode != 0 or not os.path.isfile(out) or os.path.getsize(out) <= 44:
      raise RuntimeError(
          f'flite failed (exit code {proc.returncode}) speaking {text[:60]!r} with voice '
          f'{voice!r}: {(proc.stderr or proc.stdout).strip()}')
    y, sr = load(out, mono=True)
  y = resample(y, orig_sr=sr, target_sr=sample_rate)
  if float(np.max(np.abs(y))) < 1e-5:
    raise RuntimeError(f'flite said nothing for {text[:60]!r}')
  return y.astype(np.float32)


def trim_leading_silence(y: np.ndarray, *, sample_rate: int, lead_s: float = 0.05,
                         threshold: float = 1e-3) -> np.ndarray:
  """Drops the silence before the first sample above ``threshold * peak``, keeping ``lead_s``."""
  y = np.asarray(y, np.float32)
  top = float(np.max(np.abs(y))) if y.size else 0.0
  loud = np.flatnonzero(np.abs(y) > threshold * top) if top > 0 else np.array([], int)
  start = max(int(loud[0]) - int(round(lead_s * sample_rate)), 0) if loud.size else 0
  return y[start:]


def fade(y: np.ndarray, *, sample_rate: int, fade_in_s: float = 0.005,
         fade_out_s: float = 0.02) -> np.ndarray:
  """Raised-cosine fades at both ends, float32 ``[n_samples]``."""
  return _fade(y, int(fade_in_s * sample_rate), int(fade_out_s * sample_rate))
