"""Reads voice + noise clips in the ``NNNN/`` folder layout (data reading only).

The layout that users of the seed project already have, and that
``datagen.speech`` (the inversion-study set) and ``datagen.voice_noise`` (the
recorded-voice training set) write::

  split_dir/0000/voice.wav          the clean voice
  split_dir/0000/noise.wav          the noise at 0 dB SNR (same RMS as the voice)
  split_dir/0000/mix_snr_<s>.wav    voice + 10 ** (-s / 20) * noise, one or more
  split_dir/0000/clip.json          how the clip was made (optional)
  split_dir/0001/...

Every wav is mono at one sample rate and of one length inside a clip. A clip
folder may hold one mixture (a per-clip SNR, as in the training sets) or
several (the study set's 10, 0 and -10 dB). ``mix_snr_<s>`` writes the SNR
with Python's ``'{:g}'`` (``10``, ``0``, ``-10``, ``-3.7``): see
:func:`mixture_name`.

:func:`read_clip` / :func:`read_split` read and check the layout and raise
:class:`common.errors.ParameterError` naming the folder and the file for
anything malformed; :func:`waveform_pair_dataset` turns a split into a
``tf.data.Dataset`` of ``(mixture, sources)`` segments for any model's
training (U-Net, Conv-TasNet, BASIS fine-tuning...).

Shapes: waveforms ``[n_samples]``; sources stacked ``[n_sources = 2,
n_samples]`` in the order (voice, noise as it is in the mixture).
"""

import dataclasses
import math
import os
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import ParameterError
from pipeline.audio import load

VOICE_WAV = 'voice.wav'
NOISE_WAV = 'noise.wav'
CLIP_JSON = 'clip.json'
SOURCE_NAMES = ('voice', 'noise')
MIX_RE = re.compile(r'^mix_snr_(-?\d+(?:\.\d+)?)\.wav$')
CLIP_RE = re.compile(r'^\d{4,}$')


def _check_int(name: str, value, *, low: int, high: int) -> int:
  if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or
      not low <= value <= high):
    raise ParameterError(
        f'{name} must be an int in [{low}, {high}], got {value!r}')
  return int(value)


def _check_number(name: str, value, *, low: float = -math.inf,
                  high: float = math.inf) -> float:
  if (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
      or not math.isfinite(value) or value > high or value < low):
    raise ParameterError(
        f'{name} must be a finite number in [{low}, {high}], got {value!r}')
  return float(value)


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


def snr_key(snr: float) -> str:
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
        f'`make speech-data` (make_voice_noise.py) or make_speech_noise.py')
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



def _header(folder: str, filename: str, sample_rate: int) -> int:
  """Checks one wav's header; returns its number of frames."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  path = os.path.join(folder, filename)
  if not os.path.isfile(path):
    raise ParameterError(f'clip folder {folder!r}: {filename} is missing')
  try:
    info = sf.info(path)
  except Exception as e:  # soundfile raises LibsndfileError / RuntimeError
    raise ParameterError(
        f'clip folder {folder!r}: {filename} is not a readable audio file: {e}') from e
  if info.samplerate != sample_rate:
    raise ParameterError(
        f'clip folder {folder!r}: {filename} has sample rate {info.samplerate} Hz, '
        f'expected {sample_rate} Hz')
  if info.channels != 1:
    raise ParameterError(
        f'clip folder {folder!r}: {filename} has {info.channels} channels, expected mono')
  return int(info.frames)


def check_split(split_dir: str, *, sample_rate: int = 16000) -> List[Tuple[str, float]]:
  """Checks every clip folder's headers (not the samples) and lists its mixtures.

  Cheap enough to run over a whole training set before the first step, so a
  malformed folder stops training at once, named, rather than hours later.

  Args:
    split_dir: e.g. ``out/speech_data/train``.
    sample_rate: int, Hz, that every wav must have.

  Returns:
    ``[(clip folder, snr_db)]``, one entry per mixture file, in folder order.

  Raises:
    ParameterError: as :func:`list_clips`, or naming the folder and file of a
      missing, unreadable, non-mono or other-rate wav, a length mismatch, or a
      folder without a mixture.
  """
  out = []
  for folder in list_clips(split_dir):
    n = _header(folder, VOICE_WAV, sample_rate)
    names = sorted(f for f in os.listdir(folder) if MIX_RE.match(f))
    if not names:
      raise ParameterError(f'clip folder {folder!r}: no mixture (mix_snr_<snr>.wav) found')
    for filename in [NOISE_WAV] + names:
      m = _header(folder, filename, sample_rate)
      if m != n:
        raise ParameterError(
            f'clip folder {folder!r}: {filename} has {m} samples, {VOICE_WAV} has {n}')
    out += [(folder, parse_mixture_name(f)) for f in names]
  return out


def iter_pairs(split_dir: str, *, sample_rate: int = 16000,
               segment_samples: Optional[int] = None, shuffle: bool = False,
               seed: int = 0, repeat: bool = False
               ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
  """Yields ``(mixture, sources)`` from a split, one per mixture file.

  Args:
    split_dir: a folder of ``NNNN/`` clips.
    sample_rate: int, Hz.
    segment_samples: int > 0: yield one random segment of this length per
      mixture (clips shorter than it are zero-padded); None for whole clips.
    shuffle: visit the mixtures in a random order (per pass).
    seed: int >= 0, seeds the order and the segment offsets.
    repeat: start over after the last mixture, forever.

  Yields:
    ``mixture`` float32 ``[n_samples]`` and ``sources`` float32 ``[2,
    n_samples]`` (voice, noise as in the mixture), with ``mixture ==
    sources.sum(0)`` to float rounding.

  Raises:
    ParameterError: as :func:`check_split` (before the first item) and
      :func:`read_clip`.
  """
  entries = check_split(split_dir, sample_rate=sample_rate)
  if segment_samples is not None:
    segment_samples = _check_int('segment_samples', segment_samples, low=1, high=10**9)
  rng = np.random.default_rng(_check_int('seed', seed, low=0, high=2**63 - 1))
  while True:
    order = rng.permutation(len(entries)) if shuffle else range(len(entries))
    for i in order:
      folder, snr = entries[int(i)]
      clip = read_clip(folder, sample_rate=sample_rate, snrs_db=[snr])
      mixture, sources = clip.mixture(snr), clip.sources(snr)
      if segment_samples is not None:
        n = mixture.shape[0]
        if n < segment_samples:
          pad = segment_samples - n
          mixture = np.pad(mixture, (0, pad))
          sources = np.pad(sources, ((0, 0), (0, pad)))
        else:
          start = int(rng.integers(0, n - segment_samples + 1))
          mixture = mixture[start:start + segment_samples]
          sources = sources[:, start:start + segment_samples]
      yield mixture.astype(np.float32), sources.astype(np.float32)
    if not repeat:
      return


def waveform_pair_dataset(split_dir: str, *, sample_rate: int = 16000,
                          segment_samples: Optional[int] = None,
                          batch_size: Optional[int] = None, shuffle: bool = True,
                          seed: int = 0, repeat: bool = False):
  """A ``tf.data.Dataset`` of ``(mixture, sources)`` from a split.

  The split is checked first (:func:`check_split`), so a malformed folder is
  an error naming the file before training starts.

  Args:
    split_dir, sample_rate, segment_samples, shuffle, seed, repeat: as
      :func:`iter_pairs`.
    batch_size: int > 0 to batch (needs ``segment_samples`` unless every clip
      has one length), or None.

  Returns:
    ``tf.data.Dataset`` of ``(float32 [n_samples], float32 [2, n_samples])``,
    batched to ``[batch, n_samples]`` and ``[batch, 2, n_samples]``.

  Raises:
    ParameterError: as :func:`check_split`.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  check_split(split_dir, sample_rate=sample_rate)
  n = segment_samples
  ds = tf.data.Dataset.from_generator(
      lambda: iter_pairs(split_dir, sample_rate=sample_rate, segment_samples=segment_samples,
                         shuffle=shuffle, seed=seed, repeat=repeat),
      output_signature=(tf.TensorSpec([n], tf.float32),
                        tf.TensorSpec([len(SOURCE_NAMES), n], tf.float32)))
  if batch_size is not None:
    ds = ds.batch(_check_int('batch_size', batch_size, low=1, high=10**6))
  return ds.prefetch(tf.data.AUTOTUNE)
