"""Audio I/O: read, validate, mix down, resample and write waveforms.

Waveforms are float32 numpy arrays ``[n_samples]`` (mono) in [-1, 1]; files
are read with soundfile (wav, flac, ogg) and written atomically (a temporary
name in the same folder, then a rename), so a crash never leaves half a file
under the final name.
"""

import os
import sys
from typing import Optional, Tuple

import numpy as np
import soundfile as sf

from common.atomic import atomic_path
from common.errors import ParameterError

# The audio files every reader of the toolkit takes (what soundfile decodes).
AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.mp3', '.aiff', '.aif')


def validate_audio(y, *, name: str = 'audio', mono: bool = False) -> np.ndarray:
  """Checks an audio buffer and returns it as a numpy array.

  Args:
    y: array-like of floats, ``[n_samples]`` or ``[..., n_samples]``.
    name: what to call the buffer in error messages (e.g. a file path).
    mono: if True, require ``y.ndim == 1``.

  Returns:
    ``np.ndarray`` of the same shape and floating dtype.

  Raises:
    ParameterError: if ``y`` is not floating point, has rank 0 (or not 1 when
      ``mono``), is empty, or holds NaN or infinite values.
  """
  if not isinstance(y, np.ndarray):
    try:
      y = np.asarray(y)
    except Exception as e:  # e.g. ragged nested lists
      raise ParameterError(f'{name} is not an array: {e}') from e
  if not np.issubdtype(y.dtype, np.floating):
    raise ParameterError(
        f'{name} must be floating point, got dtype {y.dtype}')
  if y.ndim == 0:
    raise ParameterError(f'{name} must have at least one dimension, got a scalar')
  if mono and y.ndim != 1:
    raise ParameterError(
        f'{name} must be mono with shape [n_samples], got shape {y.shape}')
  if y.size == 0 or y.shape[-1] == 0:
    raise ParameterError(f'{name} is empty (shape {y.shape})')
  finite = np.isfinite(y)
  if not finite.all():
    bad = np.flatnonzero(~finite.reshape(-1))
    kind = 'NaN' if np.isnan(y.reshape(-1)[bad[0]]) else 'infinite'
    raise ParameterError(
        f'{name} holds {bad.size} non-finite values (first: {kind} at flat '
        f'index {bad[0]})')
  return y


def to_mono(y: np.ndarray) -> np.ndarray:
  """Mixes ``[n_samples, n_channels]`` (soundfile layout) down to ``[n_samples]``."""
  return y if y.ndim == 1 else y.mean(axis=-1)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
  """Resamples ``[..., n_samples]`` with a polyphase filter (scipy).

  Args:
    y: float array, last axis is time.
    orig_sr: int > 0, Hz.
    target_sr: int > 0, Hz.

  Returns:
    float32 array, last axis ``ceil(n_samples * target_sr / orig_sr)``.

  Raises:
    ParameterError: for non-positive rates.
  """
  import math  # pylint: disable=g-import-not-at-top
  from scipy import signal  # pylint: disable=g-import-not-at-top
  for nm, sr in (('orig_sr', orig_sr), ('target_sr', target_sr)):
    if int(sr) != sr or sr <= 0:
      raise ParameterError(f'{nm} must be a positive integer in Hz, got {sr!r}')
  if orig_sr == target_sr:
    return y.astype(np.float32, copy=False)
  g = math.gcd(int(orig_sr), int(target_sr))
  out = signal.resample_poly(y, int(target_sr) // g, int(orig_sr) // g, axis=-1)
  return out.astype(np.float32)


def check_file(path: str, *, sample_rate: Optional[int] = None):
  """The one check of an audio file that every reader makes before decoding it.

  ``load`` (so ``wav_to_spec``, the separation commands, the inversion
  commands and trainers), and the streamed ``--dataset=audio`` reader
  (``pipeline.audio_dataset``) all refuse and warn alike.

  Args:
    path: file path.
    sample_rate: the rate (Hz) the reader will resample to, or None.

  Returns:
    ``(info, warnings)``: soundfile's ``info`` and warning lines (a source
    below ``sample_rate``, upsampled: its top bands are empty).

  Raises:
    ParameterError: a missing file, a folder, a file soundfile cannot decode
      (a text file named ``.mp3``), a WAV truncated mid-data (its header
      declares more bytes than it holds: reading it gives part of the audio
      without a word), no samples.
  """
  if not os.path.exists(path):
    raise ParameterError(f'audio file {path!r} does not exist')
  if os.path.isdir(path):
    raise ParameterError(f'audio file {path!r} is a folder')
  truncated = wav_size_mismatch(path)
  if truncated:
    raise ParameterError(f'{truncated}; re-export or re-copy it')
  try:
    info = sf.info(path)
  except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
    raise ParameterError(f'cannot read audio file {path!r}: it exists but is not audio that '
                         f"soundfile can decode ({' '.join(str(e).split())}); supported: "
                         f"{', '.join(AUDIO_EXTENSIONS)}") from e
  if info.frames == 0:
    raise ParameterError(f'audio file {path!r} is empty (0 samples)')
  warnings = []
  if sample_rate is not None and info.samplerate < sample_rate:
    warnings.append(f'{path} is at {info.samplerate} Hz, upsampled to {sample_rate} Hz: its '
                    f'bands above {info.samplerate / 2:g} Hz are empty')
  return info, warnings


def level_warnings(y: np.ndarray, path: str) -> list:
  """Warning lines about the samples of a file: a float peak above 1 (clipped later)."""
  peak = float(np.max(np.abs(y))) if np.size(y) else 0.0
  if peak > 1.0:
    return [f'{path} has float samples with peak {peak:.3g} > 1: features saturate at the '
            'dB ceiling and writes clip; scale the file to [-1, 1]']
  return []


def load(path: str, *, sample_rate: Optional[int] = None,
         mono: bool = True, warn=None) -> Tuple[np.ndarray, int]:
  """Reads an audio file (wav, flac, ogg, ...), mixes down and resamples.

  Args:
    path: file path.
    sample_rate: int > 0 (Hz) to resample to, or None to keep the file's rate.
    mono: mix all channels down to ``[n_samples]``; if False the result is
      ``[n_channels, n_samples]``.
    warn: called with each warning line (:func:`check_file`: a source below
      ``sample_rate``; :func:`level_warnings`: a float peak above 1); None
      prints them to stderr as ``warning: ...``.

  Returns:
    ``(y, sample_rate)``: float32 waveform and its rate in Hz.

  Raises:
    ParameterError: as :func:`check_file` (missing, undecodable, truncated,
      empty), or non-finite samples.
  """
  if warn is None:
    warn = lambda line: print(f'warning: {line}', file=sys.stderr, flush=True)
  _, warnings = check_file(path, sample_rate=sample_rate)
  try:
    y, sr = sf.read(path, dtype='float32', always_2d=True)
  except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
    raise ParameterError(f'cannot read audio file {path!r}: {e}') from e
  if y.shape[0] == 0:
    raise ParameterError(f'audio file {path!r} is empty (0 samples)')
  y = to_mono(y) if mono else y.T
  y = validate_audio(y, name=f'audio file {path!r}')
  for line in warnings + level_warnings(y, path):
    warn(line)
  if sample_rate is not None and sample_rate != sr:
    y = resample(y, orig_sr=sr, target_sr=sample_rate)
    sr = sample_rate
  return np.ascontiguousarray(y, dtype=np.float32), int(sr)


def wav_size_mismatch(path: str) -> Optional[str]:
  """Why a WAV file's header and its size disagree (truncated), or None.

  Walks the RIFF chunks to the ``data`` chunk and compares its declared size
  with the bytes present. Headers that leave the size open (0 or
  0xFFFFFFFF, as streaming writers do) and non-WAV files give None.

  Args:
    path: file path.

  Returns:
    A message naming the declared and present bytes, or None.
  """
  try:
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
      head = f.read(12)
      if len(head) < 12 or head[:4] != b'RIFF' or head[8:12] != b'WAVE':
        return None
      offset = 12
      while offset + 8 <= size:
        f.seek(offset)
        chunk = f.read(8)
        declared = int.from_bytes(chunk[4:8], 'little')
        if chunk[:4] == b'data':
          present = size - offset - 8
          if declared in (0, 0xFFFFFFFF) or present >= declared:
            return None
          return (f'{path!r} is truncated: its header declares {declared} bytes of '
                  f'samples, the file holds {present}')
        offset += 8 + declared + (declared & 1)
  except OSError:
    return None
  return None


def require_sample_rate(actual: int, expected: int, *, name: str = 'audio'):
  """Raises ParameterError unless ``actual == expected`` (both Hz)."""
  if int(actual) != int(expected):
    raise ParameterError(
        f'{name} has sample rate {actual} Hz, expected {expected} Hz')


def write_wav(path: str, y, sample_rate: int, *, subtype: str = 'PCM_16'):
  """Writes a waveform atomically (temporary file in the same folder + rename).

  Args:
    path: destination file (``.wav``).
    y: float waveform ``[n_samples]`` or ``[n_channels, n_samples]``.
    sample_rate: int > 0, Hz.
    subtype: soundfile subtype, e.g. ``'PCM_16'`` or ``'FLOAT'``.

  Raises:
    ParameterError: if ``y`` is invalid (see ``validate_audio``).
  """
  y = validate_audio(np.asarray(y), name=f'waveform for {path!r}')
  if y.ndim > 2:
    raise ParameterError(f'waveform for {path!r} has rank {y.ndim}, expected 1 or 2')
  data = y.T if y.ndim == 2 else y
  with atomic_path(path, suffix='.wav.tmp') as tmp:
    sf.write(tmp, data, int(sample_rate), subtype=subtype, format='WAV')
