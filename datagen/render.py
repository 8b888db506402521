"""Renders MIDI to audio with fluidsynth, and the piano/violin data set.

The instrument priors train on sampled piano (General MIDI program 0) and
violin (program 40) played by fluidsynth from the FluidR3_GM soundfont, from
phrases that ``datagen.midi`` writes. Rendering is offline (``-F``, no audio
or MIDI driver), dry (reverb and chorus off) and deterministic: the same MIDI
file, soundfont and fluidsynth version give the same samples.

fluidsynth synthesises at ``synth_sample_rate`` (44.1 kHz, the rate of the
FluidR3 samples) and the result is resampled to ``sample_rate`` with a
polyphase anti-aliasing filter (``pipeline.audio.resample``): fluidsynth
transposes samples without a low-pass filter, so rendering straight at 16 kHz
folds the piano's upper partials back (measured here: 1-2 dB more energy in
4-7 kHz than the anti-aliased render). It costs nothing noticeable: loading
the 148 MB soundfont dominates (about 0.2 s per clip either way).

Layout written by ``render_dataset``::

  out_dir/piano/00000.wav    the piano source, scaled as in the mixture
  out_dir/violin/00000.wav   the violin source, scaled as in the mixture
  out_dir/mixture/00000.wav  piano + violin
  out_dir/manifest.json      what every clip is and how it was made

All three wavs of a clip have the same name, ``sample_rate`` and exactly
``round(duration_s * sample_rate)`` samples.
"""

import concurrent.futures
import datetime
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, Optional

import numpy as np

from datagen import midi
from common.atomic import read_json_checked, write_json_atomic
from pipeline.audio import load, write_wav
from common.errors import ParameterError

SOUNDFONT_ENV = 'BASIS_SOUNDFONT'
# Searched in order when neither an argument nor BASIS_SOUNDFONT names one.
SOUNDFONT_CANDIDATES = (
    '/usr/share/sounds/sf2/FluidR3_GM.sf2',   # Debian/Ubuntu fluid-soundfont-gm
    '/usr/share/soundfonts/FluidR3_GM.sf2',   # Fedora, Arch
    '/usr/share/soundfonts/FluidR3_GM2-2.sf2',
    '/usr/local/share/soundfonts/FluidR3_GM.sf2',
    '/opt/homebrew/share/soundfonts/FluidR3_GM.sf2',
    '~/.local/share/soundfonts/FluidR3_GM.sf2',
    '/usr/share/sounds/sf2/default-GM.sf2',   # Debian alternatives link
    '/usr/share/soundfonts/default.sf2',
)
INSTALL_HINT = ('run `make data` (it installs what is missing) or '
                '`sudo apt-get install fluidsynth fluid-soundfont-gm`')
INSTRUMENT_NAMES = ('piano', 'violin')
MANIFEST_NAME = 'manifest.json'
MANIFEST_VERSION = 1


class RenderDependencyError(RuntimeError):
  """The fluidsynth program or a General MIDI soundfont is not installed."""


def check_sf2(path: str, name: str) -> str:
  """Returns ``path`` if it starts like a SoundFont 2 file ('RIFF' .... 'sfbk').

  fluidsynth given anything else warns and falls back to its default
  soundfont, so the data would silently come from another instrument set.

  Raises:
    ParameterError: naming ``name`` when the header is not an sf2 header.
  """
  with open(path, 'rb') as f:
    head = f.read(12)
  if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'sfbk':
    raise ParameterError(
        f'{name} is not a SoundFont 2 file (no RIFF/sfbk header; fluidsynth would '
        f'silently use its default soundfont instead); pass a General MIDI .sf2 file')
  return path


def find_soundfont(soundfont: Optional[str] = None) -> str:
  """Finds the General MIDI soundfont to render with.

  Looks, in order, at ``soundfont``, the environment variable
  ``BASIS_SOUNDFONT`` and ``SOUNDFONT_CANDIDATES`` (FluidR3_GM first).

  Args:
    soundfont: path to a ``.sf2`` file, or None to search.

  Returns:
    Absolute path of an existing soundfont file.

  Raises:
    ParameterError: if ``soundfont`` or ``BASIS_SOUNDFONT`` names a file that
      does not exist or is not an sf2 file (an explicit choice is never
      silently replaced).
    RenderDependencyError: if nothing is given and no candidate exists; the
      message says how to install one.
  """
  if soundfont is not None:
    if not os.path.isfile(os.path.expanduser(soundfont)):
      raise ParameterError(
          f'soundfont {soundfont!r} does not exist; pass the path of a General '
          f'MIDI .sf2 file, or None to search ({INSTALL_HINT})')
    return check_sf2(os.path.abspath(os.path.expanduser(soundfont)), f'soundfont {soundfont!r}')
  env = os.environ.get(SOUNDFONT_ENV, '')
  if env:
    if not os.path.isfile(os.path.expanduser(env)):
      raise ParameterError(
          f'{SOUNDFONT_ENV}={env!r} does not exist; point it at a General MIDI '
          f'.sf2 file or unset it to search the usual places')
    return check_sf2(os.path.abspath(os.path.expanduser(env)), f'{SOUNDFONT_ENV}={env!r}')
  for candidate in SOUNDFONT_CANDIDATES:
    path = os.path.expanduser(candidate)
    if os.path.isfile(path):
      return os.path.abspath(path)
  raise RenderDependencyError(
      f'no General MIDI soundfont found (looked in '
      f'{", ".join(SOUNDFONT_CANDIDATES)}); {INSTALL_HINT}, or set '
      f'{SOUNDFONT_ENV}=/path/to/soundfont.sf2')


def find_fluidsynth() -> str:
  """Returns the path of the ``fluidsynth`` program.

  Raises:
    RenderDependencyError: if it is not on ``PATH``; the message says how to
      install it.
  """
  path = shutil.which('fluidsynth')
  if path is None:
    raise RenderDependencyError(
        f'the fluidsynth program is not installed (not found on PATH); '
        f'{INSTALL_HINT}')
  return path


def fluidsynth_version() -> str:
  """Version of the installed fluidsynth, e.g. ``'2.3.1'``.

  Raises:
    RenderDependencyError: if fluidsynth is not installed.
  """
  out = subprocess.run([find_fluidsynth(), '--version'], capture_output=True,
                       text=True, timeout=30, check=False).stdout
  m = (re.search(r'executable version\s+(\S+)', out) or
       re.search(r'version\s+(\S+)', out))
  return m.group(1) if m else out.strip()


def _check_rate(name: str, value) -> int:
  if (isinstance(value, bool) or int(value) != value or
      not 8000 <= value <= 96000):
    raise ParameterError(
        f'{name} must be an integer in [8000, 96000] Hz (fluidsynth\'s range), '
        f'got {value!r}')
  return int(value)


def _check_positive(name: str, value, *, high: float = math.inf) -> float:
  if (isinstance(value, bool) or not isinstance(value, (int, float)) or
      not math.isfinite(value) or not 0 < value <= high):
    raise ParameterError(
        f'{name} must be a number in (0, {high}], got {value!r}')
  return float(value)


def _check_ratio_db(ratio_db) -> float:
  if (isinstance(ratio_db, bool) or not isinstance(ratio_db, (int, float)) or
      not math.isfinite(ratio_db) or abs(ratio_db) > 60):
    raise ParameterError(
        f'the violin-to-piano level ratio must be a number of dB in [-60, 60], '
        f'got {ratio_db!r}')
  return float(ratio_db)


def synthesize_midi(midi_path: str, *, sample_rate: int = 16000,
                    duration_s: Optional[float] = None,
                    soundfont: Optional[str] = None, gain: float = 0.5,
                    peak: Optional[float] = 0.5,
                    synth_sample_rate: int = 44100,
                    fade_out_s: float = 0.02) -> np.ndarray:
  """Renders a MIDI file to a mono waveform in memory.

  Runs ``fluidsynth -ni -q -R 0 -C 0 -g gain -r synth_sample_rate -O float
  -F out.wav soundfont midi`` (no audio driver, no shell, reverb and chorus
  off, float output so nothing clips), reads the result back, mixes it to
  mono, resamples it to ``sample_rate``, cuts or zero-pads it to exactly
  ``round(duration_s * sample_rate)`` samples, fades out the last
  ``fade_out_s`` (no click where a note is cut) and scales it to ``peak``.

  Args:
    midi_path: a ``.mid`` file.
    sample_rate: int in [8000, 96000], Hz, of the result.
    duration_s: float > 0, seconds of the result, or None for the length of
      the MIDI file (its last event; for a ``datagen.midi`` phrase that is
      its ``duration_s`` rounded down to a whole MIDI tick).
    soundfont: path of a ``.sf2`` file, or None for ``find_soundfont()``.
    gain: fluidsynth master gain in (0, 10]. With float output it only sets
      the level before ``peak`` scaling.
    peak: float in (0, 1], peak absolute sample of the result, or None to keep
      fluidsynth's level.
    synth_sample_rate: int in [8000, 96000], Hz, that fluidsynth renders at.
    fade_out_s: float >= 0, seconds of the raised-cosine fade at the end.

  Returns:
    float32 ``[n_samples]``, ``n_samples = round(duration_s * sample_rate)``.

  Raises:
    ParameterError: for a missing or unreadable MIDI file, a missing
      ``soundfont`` or an out-of-range argument.
    RenderDependencyError: if fluidsynth or a soundfont is not installed.
    RuntimeError: if fluidsynth fails or renders silence (e.g. a soundfont
      without the programs the file asks for).
  """
  if not os.path.isfile(midi_path):
    raise ParameterError(f'MIDI file {midi_path!r} does not exist')
  sample_rate = _check_rate('sample_rate', sample_rate)
  synth_sample_rate = _check_rate('synth_sample_rate', synth_sample_rate)
  gain = _check_positive('gain', gain, high=10.0)
  if peak is not None:
    peak = _check_positive('peak', peak, high=1.0)
  if duration_s is None:
    try:
      import mido  # pylint: disable=g-import-not-at-top
      duration_s = mido.MidiFile(midi_path).length
    except Exception as e:  # mido raises OSError / EOFError / KeyError
      raise ParameterError(f'cannot read MIDI file {midi_path!r}: {e}') from e
  duration_s = _check_positive('duration_s', duration_s)
  if (isinstance(fade_out_s, bool) or not isinstance(fade_out_s, (int, float))
      or not 0 <= fade_out_s <= duration_s):
    raise ParameterError(
        f'fade_out_s must be in [0, duration_s={duration_s}] seconds, got '
        f'{fade_out_s!r}')
  binary = find_fluidsynth()
  soundfont = find_soundfont(soundfont)
  n_samples = int(round(duration_s * sample_rate))
  if n_samples < 1:
    raise ParameterError(
        f'duration_s={duration_s!r} at sample_rate={sample_rate} gives no '
        'samples')

  with tempfile.TemporaryDirectory(prefix='render_') as tmp:
    out = os.path.join(tmp, 'out.wav')
    # dynamic sample loading reads only the presets the file plays: the same
    # samples (bit-identical output with FluidR3_GM), 0.12 s instead of 0.21 s a
    # call, and 1.2 s instead of 6.3 s with the compressed MuseScore_General.sf3
    cmd = [binary, '-ni', '-q', '-R', '0', '-C', '0', '-o',
           'synth.dynamic-sample-loading=1', '-g', f'{gain:g}',
           '-r', str(synth_sample_rate), '-O', 'float', '-T', 'wav', '-F', out,
           soundfont, os.path.abspath(midi_path)]
    try:
      proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                            timeout=120 + 4 * duration_s, cwd=tmp)
    except subprocess.TimeoutExpired as e:
      raise RuntimeError(f'fluidsynth timed out rendering {midi_path!r}') from e
    if proc.returncode != 0 or not os.path.isfile(out) or (
        os.path.getsize(out) <= 44):
      raise RuntimeError(
          f'fluidsynth failed to render {midi_path!r} (exit code '
          f'{proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}')
    y, _ = load(out, sample_rate=sample_rate, mono=True)

  if y.shape[0] >= n_samples:
    y = y[:n_samples]
  else:
    y = np.pad(y, (0, n_samples - y.shape[0]))
  n_fade = min(int(round(fade_out_s * sample_rate)), n_samples)
  if n_fade > 0:
    y = y.copy()
    y[-n_fade:] *= 0.5 * (1 + np.cos(np.pi * (np.arange(n_fade) + 1) / n_fade))
  top = float(np.max(np.abs(y)))
  if top < 1e-6:  # -120 dBFS: nothing was played
    raise RuntimeError(
        f'fluidsynth rendered silence from {midi_path!r} with soundfont '
        f'{soundfont!r}: does the soundfont hold the programs the file uses?')
  if peak is not None:
    y = y * (peak / top)
  return y.astype(np.float32)


def render_midi(midi_path: str, wav_path: str, *, sample_rate: int = 16000,
                duration_s: Optional[float] = None,
                soundfont: Optional[str] = None, gain: float = 0.5,
                peak: Optional[float] = 0.5, synth_sample_rate: int = 44100,
                subtype: str = 'PCM_16') -> np.ndarray:
  """Renders a MIDI file to a mono wav file (written atomically).

  See ``synthesize_midi`` for the rendering; this writes its result with
  ``pipeline.audio.write_wav``.

  Args:
    midi_path: a ``.mid`` file.
    wav_path: destination ``.wav`` file; its folder is created if needed.
    sample_rate: int in [8000, 96000], Hz.
    duration_s: float > 0, seconds, or None for the MIDI file's length.
    soundfont: ``.sf2`` path, or None for ``find_soundfont()``.
    gain: fluidsynth master gain in (0, 10].
    peak: float in (0, 1], peak absolute sample, or None to keep the level.
    synth_sample_rate: int in [8000, 96000], Hz, that fluidsynth renders at.
    subtype: soundfile subtype of the wav, e.g. ``'PCM_16'`` or ``'FLOAT'``.

  Returns:
    The waveform written, float32 ``[n_samples]``.

  Raises:
    ParameterError, RenderDependencyError, RuntimeError: as
      ``synthesize_midi``.
  """
  y = synthesize_midi(midi_path, sample_rate=sample_rate, duration_s=duration_s,
                      soundfont=soundfont, gain=gain, peak=peak,
                      synth_sample_rate=synth_sample_rate)
  write_wav(wav_path, y, sample_rate, subtype=subtype)
  return y


def rms(y: np.ndarray) -> float:
  """Root-mean-square of a waveform ``[n_samples]`` (linear, full scale 1)."""
  y = np.asarray(y, dtype=np.float64)
  return float(np.sqrt(np.mean(y * y)))


def _db(x: float) -> float:
  return float(20 * math.log10(max(x, 1e-12)))


def clip_seeds(seed: int, index: int) -> Dict[str, int]:
  """Seeds of the piano and violin phrases of clip ``index`` of a data set.

  Derived from ``np.random.SeedSequence([seed, index])``, so clip ``index`` is
  the same whatever ``n_clips`` is.

  Args:
    seed: int >= 0, the data-set seed.
    index: int >= 0, the clip number.

  Returns:
    ``{'piano': int, 'violin': int}``, each in [0, 2**32).
  """
  state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2)
  return {'piano': int(state[0]), 'violin': int(state[1])}


def mix_sources(piano: np.ndarray, violin: np.ndarray, *, ratio_db: float,
                peak: float = 0.9):
  """Scales two sources to a level ratio and sums them without clipping.

  The violin is scaled so that ``20 log10(rms(violin) / rms(piano)) ==
  ratio_db``; then both are scaled by one common factor so that the largest
  absolute sample of piano, violin and mixture equals ``peak``.

  Args:
    piano: float ``[n_samples]``.
    violin: float ``[n_samples]``, same length.
    ratio_db: float, level of the violin relative to the piano, dB.
    peak: float in (0, 1], peak absolute sample after scaling.

  Returns:
    ``(piano, violin, mixture)``, float32 ``[n_samples]`` each, with
    ``mixture == piano + violin`` exactly in float32.

  Raises:
    ParameterError: for different lengths, a silent source or a bad
      ``ratio_db`` / ``peak``.
  """
  piano = np.asarray(piano, dtype=np.float64)
  violin = np.asarray(violin, dtype=np.float64)
  if piano.shape != violin.shape or piano.ndim != 1:
    raise ParameterError(
        f'piano and violin must be [n_samples] of one length, got shapes '
        f'{piano.shape} and {violin.shape}')
  _check_ratio_db(ratio_db)
  peak = _check_positive('peak', peak, high=1.0)
  r_p, r_v = rms(piano), rms(violin)
  if r_p < 1e-9 or r_v < 1e-9:
    raise ParameterError(
        f'cannot set a level ratio with a silent source (rms piano={r_p:.3g}, '
        f'violin={r_v:.3g})')
  violin = violin * (10 ** (ratio_db / 20) * r_p / r_v)
  top = max(np.max(np.abs(piano)), np.max(np.abs(violin)),
            np.max(np.abs(piano + violin)))
  scale = peak / top
  p32 = (piano * scale).astype(np.float32)
  v32 = (violin * scale).astype(np.float32)
  return p32, v32, p32 + v32


def _soundfont_info(path: str) -> Dict[str, Any]:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 22), b''):
      digest.update(block)
  return {'path': path, 'bytes': os.path.getsize(path),
          'sha256': digest.hexdigest()}


def _write_json_atomic(path: str, obj) -> None:
  write_json_atomic(path, obj, sort_keys=False)


def _phrase_info(phrase: midi.Phrase, seed: int) -> Dict[str, Any]:
  return {'program': phrase.program, 'seed': seed,
          'tempo_bpm': round(phrase.tempo_bpm, 3), 'key': phrase.key_name,
          'chords': list(phrase.chords), 'n_notes': len(phrase.notes),
          'pitch_range': [int(phrase.pitches().min()),
                          int(phrase.pitches().max())]}


def _render_clip(index: int, *, out_dir: str, name: str, duration_s: float,
                 sample_rate: int, seed: int, mix_ratio_db: float,
                 mixture_peak: float, duet: bool, soundfont: str,
                 synth_sample_rate: int, subtype: str,
                 midi_dir: Optional[str]) -> Dict[str, Any]:
  seeds = clip_seeds(seed, index)
  piano = midi.make_phrase(instrument='piano', duration_s=duration_s,
                           seed=seeds['piano'])
  violin = midi.make_phrase(instrument='violin', duration_s=duration_s,
                            seed=seeds['violin'],
                            accompany=piano if duet else None)
  waves = {}
  with tempfile.TemporaryDirectory(prefix='phrase_') as tmp:
    for inst, phrase in (('piano', piano), ('violin', violin)):
      folder = os.path.join(midi_dir, inst) if midi_dir else tmp
      mid_path = os.path.join(folder, f'{name}.mid')
      midi.write_midi(mid_path, phrase)
      waves[inst] = synthesize_midi(
          mid_path, sample_rate=sample_rate, duration_s=duration_s,
          soundfont=soundfont, synth_sample_rate=synth_sample_rate)
  p, v, mix = mix_sources(waves['piano'], waves['violin'],
                          ratio_db=mix_ratio_db, peak=mixture_peak)
  files = {}
  for inst, y in (('piano', p), ('violin', v), ('mixture', mix)):
    files[inst] = f'{inst}/{name}.wav'
    write_wav(os.path.join(out_dir, files[inst]), y, sample_rate,
              subtype=subtype)
  if midi_dir:
    files.update({f'{i}_midi': os.path.relpath(
        os.path.join(midi_dir, i, f'{name}.mid'), out_dir)
                  for i in INSTRUMENT_NAMES})
  return {
      'id': name, 'index': index, 'files': files, 'seeds': seeds,
      'piano': dict(_phrase_info(piano, seeds['piano']), rms=rms(p),
                    rms_dbfs=_db(rms(p)), peak=float(np.max(np.abs(p)))),
      'violin': dict(_phrase_info(violin, seeds['violin']), rms=rms(v),
                     rms_dbfs=_db(rms(v)), peak=float(np.max(np.abs(v)))),
      'mixture': {'rms': rms(mix), 'rms_dbfs': _db(rms(mix)),
                  'peak': float(np.max(np.abs(mix)))},
      'ratio_db': _db(rms(v)) - _db(rms(p)),
  }


def render_dataset(out_dir: str, *, n_clips: int, duration_s: float = 4.0,
                   sample_rate: int = 16000, seed: int = 0,
                   mix_ratio_db: float = 0.0, mixture_peak: float = 0.9,
                   duet: bool = True, soundfont: Optional[str] = None,
                   synth_sample_rate: int = 44100, subtype: str = 'FLOAT',
                   n_workers: int = 2, keep_midi: bool = False,
                   overwrite: bool = False,
                   progress: bool = True) -> Dict[str, Any]:
  """Renders piano, violin and their mixture for ``n_clips`` random phrases.

  Clip ``i`` draws a piano phrase and a violin phrase from ``clip_seeds(seed,
  i)`` (with ``duet`` the violin plays over the piano's tempo, key and
  chords), renders both (``synthesize_midi``), sets the violin's level
  ``mix_ratio_db`` dB relative to the piano's (by RMS) and scales both by one
  factor so that the mixture peaks at ``mixture_peak`` (``mix_sources``). The
  saved sources are those scaled ones, so ``mixture == piano + violin``
  (exactly with ``subtype='FLOAT'``, within 16-bit rounding with
  ``'PCM_16'``). ``manifest.json`` is written last (atomically): a folder with
  a manifest holds a complete data set.

  Args:
    out_dir: destination folder (created); see the module doc for the layout.
    n_clips: int > 0, number of clips.
    duration_s: float in [0.5, 3600], seconds per clip.
    sample_rate: int in [8000, 96000], Hz.
    seed: int >= 0; fixes every phrase (and so every sample).
    mix_ratio_db: float in [-60, 60], violin level relative to piano, dB.
    mixture_peak: float in (0, 1], peak absolute sample of each mixture.
    duet: whether the violin shares the piano's tempo, key and chords
      (otherwise the two phrases are independent).
    soundfont: ``.sf2`` path, or None for ``find_soundfont()``.
    synth_sample_rate: int in [8000, 96000], Hz, that fluidsynth renders at.
    subtype: soundfile subtype of the wavs, ``'FLOAT'`` or ``'PCM_16'`` etc.
    n_workers: int > 0, clips rendered at once (threads, each running
      fluidsynth).
    keep_midi: also keep the MIDI files in ``out_dir/midi/{piano,violin}/``.
    overwrite: replace an existing data set in ``out_dir``; its files that the
      new manifest does not list are removed. Without it, an existing complete
      data set made with the same arguments (same soundfont and fluidsynth
      version too) is returned as it is, and a different one is an error.
    progress: show a progress bar (tqdm, on stderr).

  Returns:
    The manifest, as written to ``out_dir/manifest.json``.

  Raises:
    ParameterError: for an out-of-range argument, or if ``out_dir`` already
      holds a different or incomplete data set and ``overwrite`` is False.
    RenderDependencyError: if fluidsynth or a soundfont is not installed.
    RuntimeError: if fluidsynth fails.
  """
  if (isinstance(n_clips, bool) or not isinstance(n_clips, (int, np.integer))
      or n_clips < 1):
    raise ParameterError(f'n_clips must be a positive int, got {n_clips!r}')
  if (isinstance(n_workers, bool) or not isinstance(n_workers, int) or
      n_workers < 1):
    raise ParameterError(f'n_workers must be a positive int, got {n_workers!r}')
  if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or
      seed < 0):
    raise ParameterError(f'seed must be a non-negative int, got {seed!r}')
  duration_s = _check_positive('duration_s', duration_s, high=3600.0)
  if duration_s < 0.5:
    raise ParameterError(
        f'duration_s must be at least 0.5 s, got {duration_s!r}')
  _check_ratio_db(mix_ratio_db)
  mixture_peak = _check_positive('mixture_peak', mixture_peak, high=1.0)
  sample_rate = _check_rate('sample_rate', sample_rate)
  synth_sample_rate = _check_rate('synth_sample_rate', synth_sample_rate)
  import soundfile  # pylint: disable=g-import-not-at-top
  if not soundfile.check_format('WAV', subtype):
    raise ParameterError(f'subtype {subtype!r} is not a valid WAV subtype '
                         f'(e.g. FLOAT, PCM_16, PCM_24)')

  soundfont = find_soundfont(soundfont)
  header = {
      'format_version': MANIFEST_VERSION,
      'created_by': 'datagen.render.render_dataset',
      'n_clips': int(n_clips),
      'duration_s': duration_s,
      'sample_rate': sample_rate,
      'n_samples': int(round(duration_s * sample_rate)),
      'seed': int(seed),
      'seed_rule': 'np.random.SeedSequence([seed, index]).generate_state(2) '
                   '-> (piano, violin) phrase seeds',
      'mix_ratio_db': float(mix_ratio_db),
      'ratio_definition': '20 * log10(rms(violin) / rms(piano)), dB',
      'mixture_peak': mixture_peak,
      'mixture_definition': 'mixture = piano + violin (the saved sources)',
      'duet': bool(duet),
      'subtype': subtype,
      'keep_midi': bool(keep_midi),
      'instruments': {name: {'program': midi.INSTRUMENTS[name].program,
                             'pitch_range': [midi.INSTRUMENTS[name].low,
                                             midi.INSTRUMENTS[name].high]}
                      for name in INSTRUMENT_NAMES},
      'synth': {'program': 'fluidsynth',
                'fluidsynth_version': fluidsynth_version(),
                'soundfont': _soundfont_info(soundfont),
                'synth_sample_rate': synth_sample_rate, 'reverb': False,
                'chorus': False},
  }

  manifest_path = os.path.join(out_dir, MANIFEST_NAME)
  old_files = []
  if os.path.exists(manifest_path):
    old = load_manifest(out_dir)
    old_header = {k: v for k, v in old.items()
                  if k not in ('clips', 'created_utc')}
    old_files = [fn for clip in old.get('clips', [])
                 for fn in clip.get('files', {}).values()]
    complete = all(os.path.isfile(os.path.join(out_dir, fn))
                   for fn in old_files)
    if old_header == header and complete and not overwrite:
      if progress:
        print(f'{out_dir} already holds this data set; nothing to render',
              file=sys.stderr)
      return old
    if not overwrite:
      changed = sorted(k for k in set(header) | set(old_header)
                       if header.get(k) != old_header.get(k))
      raise ParameterError(
          f'{out_dir!r} already holds a different or incomplete data set '
          f'({manifest_path}; differing fields: {changed or "none"}, all files '
          f'present: {complete}); pass overwrite=True (--overwrite) to replace '
          f'it or choose another out_dir')
  os.makedirs(out_dir, exist_ok=True)
  width = max(5, len(str(n_clips - 1)))
  midi_dir = os.path.join(out_dir, 'midi') if keep_midi else None
  kwargs = dict(out_dir=out_dir, duration_s=duration_s,
                sample_rate=sample_rate, seed=int(seed),
                mix_ratio_db=float(mix_ratio_db),
                mixture_peak=mixture_peak, duet=duet,
                soundfont=soundfont, synth_sample_rate=synth_sample_rate,
                subtype=subtype, midi_dir=midi_dir)

  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  clips = []
  with concurrent.futures.ThreadPoolExecutor(n_workers) as pool, tqdm(
      total=n_clips, desc=f'rendering {out_dir}', unit='clip',
      disable=not progress) as bar:
    futures = [pool.submit(_render_clip, i, name=f'{i:0{width}d}', **kwargs)
               for i in range(n_clips)]
    try:
      for future in futures:  # in order, so the manifest is in clip order
        clips.append(future.result())
        bar.update(1)
    except BaseException:
      for future in futures:
        future.cancel()
      raise

  manifest = dict(header, created_utc=datetime.datetime.now(
      datetime.timezone.utc).isoformat(timespec='seconds'), clips=clips)
  _write_json_atomic(manifest_path, manifest)
  keep = {fn for clip in clips for fn in clip['files'].values()}
  root = os.path.abspath(out_dir)
  for fn in old_files:  # only files the old manifest listed inside out_dir
    path = os.path.abspath(os.path.join(root, fn))
    if (fn not in keep and os.path.commonpath([root, path]) == root and
        os.path.isfile(path)):
      os.remove(path)
  return manifest


def load_manifest(out_dir: str) -> Dict[str, Any]:
  """Reads ``out_dir/manifest.json`` of a rendered data set.

  Raises:
    ParameterError: if it is missing or not valid JSON.
  """
  path = os.path.join(out_dir, MANIFEST_NAME)
  return read_json_checked(path, missing=(
      f'{out_dir!r} holds no rendered data set ({path} is missing); render '
      f'one with `make data` or render_instruments.py'))

