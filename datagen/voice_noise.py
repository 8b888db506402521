"""The voice + noise training set: recorded and synthetic voices over recorded and synthetic noise.

The layout users of the seed project already have (read by
``pipeline.waveform_pairs``)::

  out_dir/manifest.json                 settings, versions, voices, noises, every clip
  out_dir/{train,validation,test}/NNNN/voice.wav
  out_dir/.../NNNN/noise.wav            the noise at 0 dB SNR (RMS of the voice)
  out_dir/.../NNNN/mix_snr_<s>.wav      voice + 10 ** (-s / 20) * noise, s the clip's SNR
  out_dir/.../NNNN/clip.json            this clip's manifest entry

16 kHz mono float wavs of ``duration_s`` (4.08 s = 2 patches of 2.04 s).
Each clip draws from ``np.random.SeedSequence([split_seed, index, salt])``:

* a voice: with probability ``recorded_share`` Asterisk prompts of one talent
  (``datagen.recorded``; prompts of one language joined with natural pauses
  until the clip is full), else a synthetic talker, espeak-ng or flite
  (``datagen.voices``) half and half; its RMS level is uniform in
  ``voice_level_range_dbfs``;
* a noise kind by ``noise_weights``: ``'sample'`` (a sonic-pi recording),
  ``'music'`` (a music-on-hold track), ``'babble'`` (synthetic talkers),
  ``'white'``, ``'pink'`` (``datagen.noise``);
* an SNR uniform in ``snr_range_db``, rounded to ``snr_step_db`` (so the file
  name is plain): one mixture per clip.

Splits by speaker and by recording (``VOICE_SPLITS``, ``noise_pools``): the
training voices are Allison (English and Spanish prompts), espeak-ng voices
1-8 and flite kal16 / awb / rms; validation hears June (French prompts, half
of them), espeak-ng voices 9-10 and flite slt; test June's other prompts,
espeak-ng voices 11-12 and flite kal. Sonic-pi samples are split 70 / 15 /
15 by file name, the five music tracks 3 / 1 / 1.
"""

import concurrent.futures
import dataclasses
import datetime
import json
import math
import os
import shutil
import sys
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.atomic import read_json_checked, write_json_atomic
from common.errors import ParameterError
from datagen import mixtures, noise, recorded, voices
from pipeline import waveform_pairs

FORMAT_VERSION = 1
MANIFEST_NAME = 'manifest.json'
_SALT = 0x70CE5
DEFAULT_SPLITS = ('train:100:600', 'validation:200:60', 'test:300:60')
NOISE_WEIGHTS = (('sample', 0.35), ('music', 0.2), ('babble', 0.2), ('white', 0.1),
                 ('pink', 0.15))


@dataclasses.dataclass(frozen=True)
class VoicePool:
  """Who may speak in a split.

  Attributes:
    prompts: ``(prompt folder, half)`` pairs: the folder's prompts whose
      ``stable_fraction`` is below 0.5 (``'low'``), above (``'high'``) or all.
    espeak: espeak-ng voices.
    flite: flite voices.
  """
  prompts: Tuple[Tuple[str, str], ...]
  espeak: Tuple[str, ...]
  flite: Tuple[str, ...]


VOICE_SPLITS: Dict[str, VoicePool] = {
    'train': VoicePool((('en_US_f_Allison', 'all'), ('es_MX_f_Allison', 'all')),
                       voices.VOICES[:8], ('kal16', 'awb', 'rms')),
    'validation': VoicePool((('fr_CA_f_June', 'low'),), voices.VOICES[8:10], ('slt',)),
    'test': VoicePool((('fr_CA_f_June', 'high'),), voices.VOICES[10:12], ('kal',)),
}
MUSIC_SPLIT = {'train': (0, 1, 2), 'validation': (3,), 'test': (4,)}
SAMPLE_FRACTIONS = {'train': 0.7, 'validation': 0.15, 'test': 0.15}


def _parse_split(spec) -> Tuple[str, int, int]:
  parts = spec.split(':') if isinstance(spec, str) else list(spec)
  if len(parts) != 3:
    raise ParameterError(f'split {spec!r} must be name:seed:n_clips, e.g. train:100:600')
  name = parts[0]
  if name not in VOICE_SPLITS:
    raise ParameterError(f'split {spec!r}: name must be one of {tuple(VOICE_SPLITS)} (voices '
                         f'and noises are split that way)')
  try:
    seed, n = int(parts[1]), int(parts[2])
  except (TypeError, ValueError) as e:
    raise ParameterError(f'split {spec!r}: seed and n_clips must be integers') from e
  if not 0 <= seed < 2 ** 32 or not 1 <= n <= 9999:
    raise ParameterError(f'split {spec!r}: seed must be in [0, 2**32) and n_clips in [1, 9999]')
  return name, seed, n


def _pair(name, value, low, high):
  try:
    lo, hi = (float(v) for v in value)
  except (TypeError, ValueError) as e:
    raise ParameterError(f'{name} must be (low, high), got {value!r}') from e
  if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi <= high):
    raise ParameterError(f'{name} must be (low, high) with {low} <= low <= high <= {high}, '
                         f'got {value!r}')
  return (lo, hi)


@dataclasses.dataclass(frozen=True)
class VoiceNoiseConfig:
  """What :func:`build` makes (see the module doc).

  Attributes:
    out_dir: destination folder.
    splits: ``'name:seed:n_clips'`` per split (names from ``VOICE_SPLITS``).
    duration_s: float in [1, 60], seconds per clip.
    sample_rate: int, Hz (the recorded prompts are 16 kHz).
    snr_range_db: (low, high) of the per-clip SNR, dB.
    snr_step_db: the SNR is rounded to a multiple of this (> 0, at most 1).
    recorded_share: probability of a recorded voice (else synthetic).
    voice_level_range_dbfs: (low, high) of the voice's RMS, dBFS.
    noise_weights: ``((kind, weight), ...)`` over ``'sample', 'music', 'babble',
      'white', 'pink'``.
    n_babble_talkers: int >= 1.
    max_peak: float in (0, 1]: voice and noise scaled down together above it.
    n_workers: clips made at once (threads).
    overwrite: replace clip folders made with other settings.
  """
  out_dir: str
  splits: Tuple = DEFAULT_SPLITS
  duration_s: float = 4.08
  sample_rate: int = 16000
  snr_range_db: Tuple[float, float] = (-5.0, 5.0)
  snr_step_db: float = 0.1
  recorded_share: float = 0.7
  voice_level_range_dbfs: Tuple[float, float] = (-32.0, -20.0)
  noise_weights: Tuple[Tuple[str, float], ...] = NOISE_WEIGHTS
  n_babble_talkers: int = 4
  max_peak: float = 0.99
  n_workers: int = 2
  overwrite: bool = False

  def __post_init__(self):
    if not isinstance(self.out_dir, str) or not self.out_dir:
      raise ParameterError(f'out_dir must be a folder path, got {self.out_dir!r}')
    splits = tuple(_parse_split(s) for s in self.splits)
    names = [s[0] for s in splits]
    if not splits or len(set(names)) != len(names):
      raise ParameterError(f'splits must name one or more different splits, got {names}')
    object.__setattr__(self, 'splits', splits)
    voices._check_number('duration_s', self.duration_s, low=1.0, high=60.0)
    voices._check_int('sample_rate', self.sample_rate, low=8000, high=48000)
    object.__setattr__(self, 'snr_range_db', _pair('snr_range_db', self.snr_range_db, -30, 30))
    voices._check_number('snr_step_db', self.snr_step_db, low=0.0001, high=1.0)
    voices._check_number('recorded_share', self.recorded_share, low=0.0, high=1.0)
    object.__setattr__(self, 'voice_level_range_dbfs',
                       _pair('voice_level_range_dbfs', self.voice_level_range_dbfs, -60, -6))
    weights = tuple((str(k), float(w)) for k, w in self.noise_weights)
    kinds = ('sample', 'music', 'babble', 'white', 'pink')
    if (not weights or any(k not in kinds or not w >= 0 for k, w in weights)
        or sum(w for _, w in weights) <= 0):
      raise ParameterError(f'noise_weights must be (kind, weight >= 0) pairs over {kinds} with a '
                           f'positive sum, got {self.noise_weights!r}')
    object.__setattr__(self, 'noise_weights', weights)
    voices._check_int('n_babble_talkers', self.n_babble_talkers, low=1, high=16)
    voices._check_number('max_peak', self.max_peak, low=0.01, high=1.0)
    voices._check_int('n_workers', self.n_workers, low=1, high=64)

  @property
  def n_samples(self) -> int:
    return int(round(self.duration_s * self.sample_rate))

  def settings(self) -> Dict[str, Any]:
    d = dataclasses.asdict(self)
    for k in ('out_dir', 'splits', 'n_workers', 'overwrite'):
      d.pop(k)
    return json.loads(json.dumps(d))


def prompt_pool(pool: VoicePool) -> Dict[str, List[str]]:
  """``{prompt folder: prompt files}`` of a split's voices.

  Raises:
    recorded.RecordedDependencyError: if a prompt package is missing.
  """
  out = {}
  for folder, half in pool.prompts:
    files = recorded.prompt_files(folder)
    if half != 'all':
      low = [f for f in files if recorded.stable_fraction('prompt:' + os.path.basename(f)) < 0.5]
      files = low if half == 'low' else sorted(set(files) - set(low))
    out[folder] = files
  return out


def noise_pools() -> Dict[str, Dict[str, List[str]]]:
  """``{split: {'sample': files, 'music': files}}``.

  Raises:
    recorded.RecordedDependencyError: if sonic-pi-samples or the music is missing.
  """
  samples = recorded.split_by_name(recorded.sample_files(), SAMPLE_FRACTIONS)
  music = recorded.music_files()
  return {s: {'sample': samples[s], 'music': [music[i] for i in MUSIC_SPLIT[s] if i < len(music)]}
          for s in VOICE_SPLITS}


def recorded_voice(files: Sequence[str], n_samples: int, *, rng: np.random.Generator,
                   sample_rate: int = 16000) -> Tuple[np.ndarray, Dict[str, Any]]:
  """Prompts of one talent joined with pauses of U(0.15, 0.6) s until ``n_samples`` are full.

  Each prompt's leading and trailing silence (below 1e-3 of its peak) is
  trimmed first. The result starts 0.05 s before the first word, ends with a
  20 ms fade.

  Returns:
    ``(voice, info)``: float32 ``[n_samples]`` and ``{'prompts': [names]}``.
  """
  y, names = [], []
  total = 0
  for _ in range(64):
    path = files[int(rng.integers(len(files)))]
    x = voices.trim_leading_silence(recorded.load_recording(path, sample_rate=sample_rate),
                                    sample_rate=sample_rate)
    x = voices.trim_leading_silence(x[::-1], sample_rate=sample_rate)[::-1]
    if x.shape[0] < sample_rate // 10:
      continue
    pause = np.zeros(int(rng.uniform(0.15, 0.6) * sample_rate), np.float32)
    y += [x, pause]
    names.append(os.path.relpath(path, recorded.ASTERISK_SOUNDS))
    total += x.shape[0] + pause.shape[0]
    if total >= n_samples:
      break
  if not y:
    raise ParameterError('no usable prompt among the voice files')
  v = np.concatenate(y)[:n_samples]
  v = np.pad(v, (0, n_samples - v.shape[0]))
  return voices.fade(v, sample_rate=sample_rate), {'prompts': names}


def synthetic_voice(pool: VoicePool, n_samples: int, *, rng: np.random.Generator,
                    sample_rate: int = 16000) -> Tuple[np.ndarray, Dict[str, Any]]:
  """An espeak-ng or flite talker (half and half) speaking random sentences."""
  if not pool.flite or rng.random() < 0.5:
    u = voices.make_utterance(int(rng.integers(2 ** 31)), n_samples=n_samples,
                              sample_rate=sample_rate, voices=pool.espeak)
    return u.waveform, dict(u.info(), engine='espeak-ng')
  voice = pool.flite[int(rng.integers(len(pool.flite)))]
  rate = float(rng.uniform(0.85, 1.15))
  sentences = [voices.make_sentence(rng) for _ in range(3)]
  for _ in range(12):
    y = voices.synthesize_flite(' '.join(sentences), voice=voice, sample_rate=sample_rate,
                                rate_scale=rate)
    y = voices.trim_leading_silence(y, sample_rate=sample_rate)
    if y.shape[0] >= n_samples:
      break
    sentences.append(voices.make_sentence(rng))
  y = np.pad(y[:n_samples], (0, max(0, n_samples - y.shape[0])))
  return voices.fade(y, sample_rate=sample_rate), {
      'engine': 'flite', 'voice': voice, 'rate_scale': round(rate, 4), 'text': ' '.join(sentences)}


def draw_snr(config: VoiceNoiseConfig, rng: np.random.Generator) -> float:
  """A clip's SNR: uniform in ``snr_range_db``, rounded to ``snr_step_db``, dB."""
  lo, hi = config.snr_range_db
  step = config.snr_step_db
  snr = round(round(float(rng.uniform(lo, hi)) / step) * step, 4)
  return min(max(snr, lo), hi) + 0.0


def make_clip(config: VoiceNoiseConfig, split: str, seed: int, index: int, prompts, noises):
  """The voice, the noise at 0 dB SNR, the SNR and the clip's info (nothing written)."""
  rng = np.random.default_rng(np.random.SeedSequence([seed, index, _SALT]))
  n, sr = config.n_samples, config.sample_rate
  pool = VOICE_SPLITS[split]
  if prompts and rng.random() < config.recorded_share:
    folder = sorted(prompts)[int(rng.integers(len(prompts)))]
    v, vinfo = recorded_voice(prompts[folder], n, rng=rng, sample_rate=sr)
    speaker, language = recorded.SPEAKERS[folder]
    vinfo = dict(vinfo, kind='recorded', speaker=speaker, language=language, folder=folder)
  else:
    v, vinfo = synthetic_voice(pool, n, rng=rng, sample_rate=sr)
    vinfo = dict(vinfo, kind='synthetic', speaker=f'{vinfo["engine"]}:{vinfo["voice"]}')
  kinds, weights = zip(*config.noise_weights)
  kind = kinds[int(rng.choice(len(kinds), p=np.array(weights) / sum(weights)))]
  nseed = int(rng.integers(2 ** 31))
  if kind in ('sample', 'music'):
    z, ninfo = noise.recorded_noise(noises[kind], n, seed=nseed, sample_rate=sr)
    ninfo = dict(ninfo, kind=kind, seed=nseed)
  else:
    z, ninfo = noise.make_noise(kind, n, seed=nseed, sample_rate=sr,
                                n_babble_talkers=config.n_babble_talkers, voices=pool.espeak)
  snr = draw_snr(config, rng)
  level = float(rng.uniform(*config.voice_level_range_dbfs))
  target = 10 ** (level / 20)
  voice = v.astype(np.float64) * (target / max(noise.rms(v), 1e-12))
  z = z.astype(np.float64) * target
  top = float(np.max(np.abs(voice + waveform_pairs.noise_gain(snr) * z)))
  gain = min(1.0, config.max_peak / max(top, 1e-12))
  voice32, noise32 = (voice * gain).astype(np.float32), (z * gain).astype(np.float32)
  info = {'seed_sequence': [seed, index, _SALT], 'voice': vinfo, 'noise': ninfo, 'snr_db': snr, 'voice_level_dbfs_drawn': round(level, 4),
          'gain': gain, 'voice_rms_dbfs': round(noise._db(noise.rms(voice32)), 4),
          'measured_snr_db': round(waveform_pairs.snr_db(
              voice32, waveform_pairs.noise_gain(snr) * noise32), 4)}
  return voice32, noise32, snr, info


def _request(config, split, seed, index):
  return {'format_version': FORMAT_VERSION, 'split': split, 'split_seed': seed, 'index': index,
          'settings': config.settings()}


def _existing(folder, request):
  try:
    with open(os.path.join(folder, waveform_pairs.CLIP_JSON), encoding='utf-8') as f:
      info = json.load(f)
  except (OSError, ValueError):
    return None
  return info if info.get('request') == request else None


def _make_one(config, split, seed, index, folder, request, prompts, noises):
  voice, z, snr, info = make_clip(config, split, seed, index, prompts, noises)
  if os.path.exists(folder):   # overwrite: replace a folder this command wrote
    trash = f'{folder}.old-{uuid.uuid4().hex[:8]}'
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
  mixtures.write_clip(folder, voice, z, sample_rate=config.sample_rate, snrs_db=[snr],
                      info=dict(info, index=index, request=request))
  with open(os.path.join(folder, waveform_pairs.CLIP_JSON), encoding='utf-8') as f:
    return json.load(f)


def summarize(clips: Sequence[Dict[str, Any]], duration_s: float) -> Dict[str, Any]:
  """Hours per voice / noise kind, speakers, SNR and level statistics (for the data card)."""
  snrs = np.array([c['snr_db'] for c in clips])
  hours = lambda key: {k: round(sum(duration_s for c in clips if key(c) == k) / 3600, 4)
                       for k in sorted({key(c) for c in clips})}
  return {
      'n_clips': len(clips), 'hours': round(len(clips) * duration_s / 3600, 4),
      'hours_by_voice_kind': hours(lambda c: c['voice']['kind']),
      'hours_by_speaker': hours(lambda c: c['voice']['speaker']),
      'hours_by_language': hours(lambda c: c['voice'].get('language', 'en (synthetic)')),
      'hours_by_noise_kind': hours(lambda c: c['noise']['kind']),
      'snr_db': {'min': round(float(snrs.min()), 3), 'max': round(float(snrs.max()), 3),
                 'mean': round(float(snrs.mean()), 3), 'std': round(float(snrs.std()), 3)},
      'voice_rms_dbfs_mean': round(float(np.mean([c['voice_rms_dbfs'] for c in clips])), 3),
      'distinct_noise_files': len({c['noise'].get('file') for c in clips} - {None}),
  }


def build(config: VoiceNoiseConfig, *, progress: bool = True) -> Dict[str, Any]:
  """Makes (or completes) the set; finished clip folders with the same request are kept.

  Returns:
    The manifest written to ``out_dir/manifest.json``.

  Raises:
    ParameterError: for clip folders made with other settings (without
      ``overwrite``) or beyond ``n_clips``.
    voices.SpeechDependencyError, recorded.RecordedDependencyError: if a
      program or package is missing.
  """
  versions = {'espeak_ng': voices.espeak_version(), 'flite': voices.flite_version(),
              'ffmpeg': recorded.ffmpeg_version()}
  recorded_noise = any(k in ('sample', 'music') and w > 0 for k, w in config.noise_weights)
  noises_by_split = noise_pools() if recorded_noise else {
      s: {'sample': [], 'music': []} for s in VOICE_SPLITS}
  splits_out = {}
  for split, seed, n_clips in config.splits:
    prompts = prompt_pool(VOICE_SPLITS[split]) if config.recorded_share > 0 else {}
    split_dir = os.path.join(config.out_dir, split)
    os.makedirs(split_dir, exist_ok=True)
    for entry in os.listdir(split_dir):   # leftovers of an interrupted write_clip
      if entry.startswith('.') and '.partial-' in entry:
        shutil.rmtree(os.path.join(split_dir, entry), ignore_errors=True)
    extra = sorted(e for e in os.listdir(split_dir)
                   if waveform_pairs.CLIP_RE.match(e) and int(e) >= n_clips)
    if extra:
      raise ParameterError(f'{split_dir!r} holds {len(extra)} clip folders beyond n_clips='
                           f'{n_clips} ({extra[0]}..{extra[-1]}); choose another --out_dir')
    clips: List[Optional[Dict[str, Any]]] = [None] * n_clips
    todo = []
    for i in range(n_clips):
      folder = os.path.join(split_dir, f'{i:04d}')
      request = _request(config, split, seed, i)
      if os.path.exists(folder):
        clips[i] = _existing(folder, request)
        if clips[i] is not None:
          continue
        if not config.overwrite:
          raise ParameterError(f'clip folder {folder!r} was made with other settings (or is not '
                               f'a finished clip); pass --overwrite or choose another --out_dir')
      todo.append((i, folder, request))
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    with concurrent.futures.ThreadPoolExecutor(config.n_workers) as pool, tqdm(
        total=len(todo), desc=f'voice + noise {split}', unit='clip', file=sys.stderr,
        disable=not progress or not todo) as bar:
      futures = {pool.submit(_make_one, config, split, seed, i, folder, request, prompts,
                             noises_by_split[split]): i for i, folder, request in todo}
      try:
        for future in concurrent.futures.as_completed(futures):
          clips[futures[future]] = future.result()
          bar.update(1)
      except BaseException:
        for future in futures:
          future.cancel()
        raise
    clips = [dict({k: v for k, v in c.items() if k != 'request'}, folder=f'{split}/{i:04d}')
             for i, c in enumerate(clips)]
    splits_out[split] = {'seed': seed, 'n_clips': n_clips,
                         'voices': dataclasses.asdict(VOICE_SPLITS[split]),
                         'noise_files': {k: [os.path.basename(f) for f in v]
                                         for k, v in noises_by_split[split].items()},
                         'n_prompts': {k: len(v) for k, v in prompts.items()},
                         'summary': summarize(clips, config.duration_s), 'clips': clips}
  manifest = {
      'format_version': FORMAT_VERSION, 'created_by': 'datagen.voice_noise.build',
      'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'versions': versions, 'sample_rate': config.sample_rate, 'duration_s': config.duration_s,
      'n_samples': config.n_samples, 'settings': config.settings(),
      'mixture_definition': 'mix_snr_<s>.wav = voice.wav + 10 ** (-s / 20) * noise.wav; one '
                            'mixture per clip at its drawn SNR',
      'seed_rule': 'np.random.SeedSequence([split_seed, index, 0x70CE5]) draws everything',
      'splits': splits_out,
  }
  write_json_atomic(os.path.join(config.out_dir, MANIFEST_NAME), manifest, sort_keys=False)
  return manifest


def write_source_patches(split_dir: str, out_dir: str, *, source: str, features=None,
                         min_rms_db: float = -60.0, progress: bool = True) -> Dict[str, Any]:
  """Mel patches of one source of a split, as it is in the mixtures, into TFRecords.

  ``source='voice'`` takes ``voice.wav``; ``'noise'`` the noise scaled to the
  clip's SNR (what a noise prior meets in a mixture). Each clip is cut into
  windows of ``features.patch_samples`` (quieter ones skipped) and turned
  into patches by ``pipeline.transforms.MelTransform``, as ``wav_to_spec.py``
  does. A folder with ``metadata.json`` is finished and left alone.

  Returns:
    The patch folder's metadata.

  Raises:
    ParameterError: for an unknown source or a malformed clip folder (named).
  """
  from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
  from pipeline.tfrecords import METADATA_FILE, PatchWriter, read_metadata  # pylint: disable=g-import-not-at-top
  from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
  if source not in waveform_pairs.SOURCE_NAMES:
    raise ParameterError(f'source must be one of {waveform_pairs.SOURCE_NAMES}, got {source!r}')
  if os.path.isfile(os.path.join(out_dir, METADATA_FILE)):
    return read_metadata(out_dir)
  features = features or FeatureConfig()
  transform = MelTransform(features)
  to_patches = transform.make_window_fn()
  entries = waveform_pairs.check_split(split_dir, sample_rate=features.sample_rate)
  skipped, files = 0, []
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  with PatchWriter(out_dir, features=features, provenance={
      'input_dir': os.path.abspath(split_dir), 'source': source,
      'made_by': 'datagen.voice_noise.write_source_patches', 'min_rms_db': min_rms_db}) as writer:
    for folder, snr in tqdm(entries, desc=f'{source} patches', unit='clip', file=sys.stderr,
                            disable=not progress):
      clip = waveform_pairs.read_clip(folder, sample_rate=features.sample_rate, snrs_db=[snr])
      y = clip.voice if source == 'voice' else clip.noise_at(snr)
      frames = transform.frame_waveform(y).numpy()
      rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
      keep = rms_db >= min_rms_db
      skipped += int((~keep).sum())
      if keep.any():
        writer.add(to_patches(frames[keep]))
      files.append({'clip': os.path.basename(folder), 'snr_db': snr, 'patches': int(keep.sum())})
    writer.update_provenance(files=files, skipped_windows=skipped)
  return writer.metadata


def load_manifest(out_dir: str) -> Dict[str, Any]:
  """Reads ``out_dir/manifest.json``.

  Raises:
    ParameterError: if it is missing or not valid JSON.
  """
  return read_json_checked(os.path.join(out_dir, MANIFEST_NAME), missing=(
      f'{out_dir!r} holds no finished voice + noise set (manifest.json missing); make it with '
      f'`make speech-data` or make_voice_noise.py'))
