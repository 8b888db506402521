"""Slaney-scale mel filterbank, equal to librosa's default.

``tf.signal.linear_to_mel_weight_matrix`` builds an HTK-scale filterbank with
peak-1 triangles; the reference features (and librosa's defaults) use the
Slaney mel scale (linear below 1 kHz, logarithmic above) with area
normalisation ("slaney" norm). This module builds the latter, in float64, and
returns it in the TensorFlow orientation ``[n_bins, n_mels]``.
"""

import numpy as np

from common.errors import ParameterError

# Slaney's Auditory Toolbox mel scale: 3 mel per 200 Hz below 1 kHz ...
_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
# ... and a log scale above, reaching 6.4x the break frequency in 27 steps.
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(frequencies):
  """Hz -> Slaney mel. Accepts scalars or arrays, returns float64."""
  f = np.asarray(frequencies, dtype=np.float64)
  mels = f / _F_SP
  log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
  return np.where(f >= _MIN_LOG_HZ, log_part, mels)


def mel_to_hz(mels):
  """Slaney mel -> Hz. Accepts scalars or arrays, returns float64."""
  m = np.asarray(mels, dtype=np.float64)
  freqs = _F_SP * m
  log_part = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL) - _MIN_LOG_MEL))
  return np.where(m >= _MIN_LOG_MEL, log_part, freqs)


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int = 128,
                   fmin: float = 0.0, fmax=None, dtype=np.float32) -> np.ndarray:
  """Builds the Slaney mel filterbank (librosa's default) for ``tf.signal``.

  ``mel_filterbank(...)`` equals ``librosa.filters.mel(...).T``: band ``m`` is
  a triangle between mel-spaced edge frequencies ``f[m], f[m+1], f[m+2]``,
  scaled by ``2 / (f[m+2] - f[m])`` so that every band has unit area in Hz.

  Args:
    sample_rate: int > 0, Hz.
    n_fft: int > 0, FFT size; the STFT has ``1 + n_fft // 2`` bins.
    n_mels: int > 0, number of bands.
    fmin: float >= 0, lowest edge, Hz.
    fmax: float <= sample_rate / 2, highest edge, Hz; None means Nyquist.
    dtype: numpy float dtype of the result.

  Returns:
    ``np.ndarray`` ``[1 + n_fft // 2, n_mels]``: multiply a power (or
    magnitude) spectrogram ``[..., n_frames, n_bins]`` on the right to get
    ``[..., n_frames, n_mels]``.

  Raises:
    ParameterError: for non-positive sizes or band edges out of range.
  """
  for name, value in (('sample_rate', sample_rate), ('n_fft', n_fft),
                      ('n_mels', n_mels)):
    if int(value) != value or value <= 0:
      raise ParameterError(f'{name} must be a positive integer, got {value!r}')
  nyquist = sample_rate / 2.0
  if fmax is None:
    fmax = nyquist
  if not 0 <= fmin < fmax:
    raise ParameterError(f'need 0 <= fmin < fmax, got fmin={fmin!r}, fmax={fmax!r}')
  if fmax > nyquist:
    raise ParameterError(f'fmax={fmax!r} Hz exceeds the Nyquist frequency {nyquist} Hz')

  fft_freqs = np.linspace(0.0, nyquist, 1 + n_fft // 2)
  edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
  widths = np.diff(edges)
  # ramps[m, k] = edges[m] - fft_freqs[k]
  ramps = edges[:, None] - fft_freqs[None, :]
  rising = -ramps[:-2] / widths[:-1, None]
  falling = ramps[2:] / widths[1:, None]
  weights = np.maximum(0.0, np.minimum(rising, falling))
  weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
  return np.ascontiguousarray(weights.T.astype(dtype))
