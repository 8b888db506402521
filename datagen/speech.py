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
import os
import re
import shutil
import subprocess  # noqa: F401  (tests patch speech.shutil; kept for the old surface)
import sys
import uuid
from typing import Any, Dict, Optional, Tuple

import numpy as np

from common.atomic import read_json_checked, write_json_atomic
from common.errors import ParameterError
# The public surface of this module before the split (voices, noise, mixtures and
# the reader moved to datagen.voices / datagen.noise / datagen.mixtures /
# pipeline.waveform_pairs); re-exported so that old imports keep working.
from datagen.mixtures import make_mixtures, write_clip  # noqa: F401
from datagen.noise import (NOISE_KINDS, available_noise_kinds, babble_noise,  # noqa: F401
                           have_fluidsynth, instrument_noise, make_noise, pink_noise, rms,
                           white_noise, _db)
from datagen.voices import (ESPEAK_SAMPLE_RATE, INSTALL_HINT, TEMPLATES, VOICES,  # noqa: F401
                            WORDS, SpeechDependencyError, Utterance, _check_int,
                            _check_number, espeak_version, find_espeak, have_espeak,
                            make_sentence, make_utterance, sentence_words,
                            synthesize_speech)
from pipeline.waveform_pairs import (CLIP_JSON, CLIP_RE, MIX_RE, NOISE_WAV,  # noqa: F401
                                     VOICE_WAV, SpeechNoiseClip, list_clips, mixture_name,
                                     noise_gain, parse_mixture_name, read_clip, read_split,
                                     snr_db)
from pipeline.waveform_pairs import snr_key as _snr_key

MANIFEST_NAME = 'manifest.json'
FORMAT_VERSION = 1
SPLIT_NAMES = ('train', 'validation', 'test')
DEFAULT_SPLITS = (('train', 100, 60), ('validation', 200, 20), ('test', 300, 20))
DEFAULT_SNRS_DB = (10.0, 0.0, -10.0)
# Salt of the clip seeds, so that the seeds (and the instrument phrases drawn
# from them) never coincide with datagen.render's clip_seeds(seed, index).
_SEED_SALT = 0x5BEEC4


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


def load_manifest(out_dir: str) -> Dict[str, Any]:
  """Reads ``out_dir/manifest.json`` of a speech + noise data set.

  Raises:
    ParameterError: if it is missing or not valid JSON.
  """
  path = os.path.join(out_dir, MANIFEST_NAME)
  return read_json_checked(path, missing=(
      f'{out_dir!r} holds no speech + noise data set ({path} is missing); '
      f'make one with `make speech-data` or make_speech_noise.py'))