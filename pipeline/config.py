"""Feature parameters: one typed config that travels with the data.

Axis convention of the whole toolkit (said once, here):

* waveforms are ``[batch, n_samples]`` (or ``[n_samples]``), float32, in [-1, 1];
* complex STFTs are ``[batch, n_frames, n_bins]`` with ``n_bins = 1 + n_fft // 2``
  (the ``tf.signal`` orientation);
* images and spectrogram patches are ``[batch, height, width, channels]`` with
  height = mel bands (low frequencies first), width = frames, channels = 1;
* sources are stacked on a leading axis: ``[n_sources, batch, ...]``.
"""

import dataclasses
import json
from typing import Any, Dict

from common import checks
from common.errors import ParameterError


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
  """Parameters of the audio -> mel-spectrogram-patch transform.

  The defaults are the reference setting for the instrument priors
  (ALGORITHMS.md, Features): 16 kHz, 2048-point Hann STFT with hop 512, 96
  Slaney mel bands between 125 Hz and 7600 Hz, power clipped to
  [1e-10, 100] and 64 frames per patch (32,640 samples, 2.04 s).

  Attributes:
    sample_rate: int > 0, Hz.
    n_fft: int > 0, FFT size and window length, samples.
    hop_length: int > 0, samples between frames.
    n_mels: int > 0, number of mel bands.
    fmin: float >= 0, lowest band edge, Hz.
    fmax: float, highest band edge, Hz, at most ``sample_rate / 2``.
    power: 1.0 (magnitude) or 2.0 (power) spectrogram.
    amin: float > 0, lower clip of the (power) mel spectrogram.
    amax: float > amin, upper clip of the (power) mel spectrogram.
    patch_frames: int > 0, frames per patch (the patch width).
    patch_samples: int > 0, samples per patch window; must give exactly
      ``patch_frames`` frames (``1 + patch_samples // hop_length`` when
      centred). The reference 32,640 samples (2.04 s) give 64 frames.
    center: bool, whether frames are centred (signal zero-padded by
      ``n_fft // 2`` on both sides), as in librosa.
  """

  sample_rate: int = 16000
  n_fft: int = 2048
  hop_length: int = 512
  n_mels: int = 96
  fmin: float = 125.0
  fmax: float = 7600.0
  power: float = 2.0
  amin: float = 1e-10
  amax: float = 100.0
  patch_frames: int = 64
  patch_samples: int = 32640
  center: bool = True

  def __post_init__(self):
    checks.check_positive_ints(self, 'sample_rate', 'n_fft', 'hop_length', 'n_mels',
                               'patch_frames', 'patch_samples', prefix='')
    for name in ('fmin', 'fmax', 'power', 'amin', 'amax'):
      value = getattr(self, name)
      if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
        raise ParameterError(f'{name} must be a number, got {value!r}')
    if not isinstance(self.center, bool):   # center='no' is truthy: refuse, do not guess
      raise ParameterError(f'center must be True or False, got {self.center!r}')
    if self.hop_length > self.n_fft:
      raise ParameterError(
          f'hop_length={self.hop_length} must not exceed n_fft={self.n_fft} '
          '(the inverse STFT would not be defined)')
    if not 0 <= self.fmin < self.fmax:
      raise ParameterError(
          f'need 0 <= fmin < fmax, got fmin={self.fmin!r}, fmax={self.fmax!r}')
    if self.fmax > self.sample_rate / 2:
      raise ParameterError(
          f'fmax={self.fmax!r} Hz is above the Nyquist frequency '
          f'{self.sample_rate / 2} Hz of sample_rate={self.sample_rate}')
    if self.power not in (1.0, 2.0):
      raise ParameterError(f'power must be 1.0 or 2.0, got {self.power!r}')
    frames = (1 + self.patch_samples // self.hop_length if self.center else
              1 + (self.patch_samples - self.n_fft) // self.hop_length)
    if frames != self.patch_frames:
      good = ((self.patch_frames - 1) * self.hop_length if self.center else
              (self.patch_frames - 1) * self.hop_length + self.n_fft)
      raise ParameterError(
          f'patch_samples={self.patch_samples} gives {frames} frames with '
          f'hop_length={self.hop_length}, not patch_frames={self.patch_frames} '
          f'(use e.g. patch_samples={good})')
    if not 0 < self.amin < self.amax:
      raise ParameterError(
          f'need 0 < amin < amax, got amin={self.amin!r}, amax={self.amax!r}')

  @property
  def n_bins(self) -> int:
    """Number of STFT frequency bins, ``1 + n_fft // 2``."""
    return 1 + self.n_fft // 2

  @property
  def patch_shape(self):
    """Shape of one patch, ``(n_mels, patch_frames, 1)``."""
    return (self.n_mels, self.patch_frames, 1)

  @property
  def db_range(self):
    """``(min_db, max_db)`` of the clipped dB values."""
    import math  # pylint: disable=g-import-not-at-top
    return (10.0 * math.log10(self.amin), 10.0 * math.log10(self.amax))

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> 'FeatureConfig':
    """Builds a config from a dict, rejecting unknown keys by name."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise ParameterError(f'unknown feature parameters {unknown}')
    return cls(**d)

  @classmethod
  def from_json(cls, text: str) -> 'FeatureConfig':
    return cls.from_dict(json.loads(text))

  def differences(self, other: 'FeatureConfig') -> Dict[str, Any]:
    """Returns ``{name: (self_value, other_value)}`` for differing fields."""
    a, b = self.to_dict(), other.to_dict()
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}
