"""Oracle separators: the best a mask or a Wiener filter can do, given the truth.

Each oracle sees the true sources and the mixture, builds its filter from the
sources and applies it to the mixture STFT (sigsep-mus-oracle; ALGORITHMS.md,
Evaluation and oracles). With ``V_j`` the source magnitudes and ``X`` the
mixture STFT:

* ``IBM`` (alpha a, theta): ``M_j = 1`` where ``V_j^a / |X|^a >= theta``;
* ``IRM`` (alpha a): ``M_j = V_j^a / sum_k V_k^a``; ``Wiener`` is IRM with
  a = 2;
* ``MWF``, the multichannel Wiener filter: each source has a power spectral
  density ``P_j(f, t)`` and a spatial covariance ``R_j(f)`` fixed over time,
  learnt from its true STFT; ``S_j = P_j R_j (sum_k P_k R_k)^{-1} X``. ``R_j(f)``
  is normalised to trace ``n_channels`` at every frequency (sigsep's code
  divides by ``np.trace`` of the whole ``[F, I, I]`` array, which sums over
  the first two axes instead; not copied) and loaded with float32 eps times
  the identity (sigsep: float64 eps, which lets float32 round-off of a panned,
  rank-1 source dominate the refined PSD). For mono it is the Wiener filter.

The masks and the single-channel Wiener filter are ``inversion.masks`` (the
same code that turns separated magnitudes into sound).

Domains: ``'stft'`` uses a Hann STFT (``n_fft`` 2048, hop 1024 as sigsep's
oracles) from :class:`pipeline.transforms.MelTransform`. ``'mel'`` builds the
masks from what a mel-domain separator can know: each source's mel power
spectrogram under the feature setting (``FeatureConfig``), lifted back to
linear frequency by the transform's own non-negative least-squares inverse
(``MelTransform.mel_to_spectrogram``), and applies them to the mixture STFT of
the same transform: the upper bound of "separate mel spectrograms, then
filter the mixture". MWF is STFT-domain only (it needs the cross-channel
phases that a mel spectrogram drops).

Waveforms: sources ``[n_sources, n_samples]`` or ``[n_sources, n_channels,
n_samples]``, the mixture ``[n_samples]`` or ``[n_channels, n_samples]``.
"""

import dataclasses
import functools
import os
import re
from typing import Dict, Optional, Tuple

import numpy as np

from inversion import masks as tf_masks
from inversion import stft as inversion_stft
from pipeline.config import FeatureConfig
from common import checks
from common.errors import ParameterError
from pipeline.transforms import MelTransform

METHODS = ('IBM', 'IRM', 'Wiener', 'MWF')
DOMAINS = ('stft', 'mel')
_EPS = np.finfo(np.float64).eps
# Loading of the normalised spatial covariances (trace n_channels). sigsep adds
# float64 eps; the STFTs here are float32, and with a rank-1 (panned) source the
# refined PSD y^H R^{-1} y then blows float32 round-off up by 1 / eps.
_COV_LOADING = float(np.finfo(np.float32).eps)


@dataclasses.dataclass(frozen=True)
class OracleConfig:
  """One oracle separator.

  Attributes:
    method: ``'IBM'``, ``'IRM'``, ``'Wiener'`` (IRM with alpha 2) or ``'MWF'``.
    alpha: float > 0, magnitude exponent of IBM / IRM (ignored by Wiener and
      MWF, which use power spectra).
    theta: float >= 0, IBM threshold on ``V_j^a / |X|^a``.
    domain: ``'stft'`` or ``'mel'``.
    n_fft: int > 0, STFT size of the ``'stft'`` domain, samples.
    hop_length: int > 0, STFT hop of the ``'stft'`` domain, samples.
    features: the mel setting of the ``'mel'`` domain (its STFT too);
      default ``FeatureConfig()`` at the audio's rate.
    nnls_iters: int >= 0, refinement steps of the mel -> linear lift.
  """

  method: str = 'IRM'
  alpha: float = 2.0
  theta: float = 0.5
  domain: str = 'stft'
  n_fft: int = 2048
  hop_length: int = 1024
  features: Optional[FeatureConfig] = None
  nnls_iters: int = 50

  def __post_init__(self):
    if self.method not in METHODS:
      raise ParameterError(f'method must be one of {METHODS}, got {self.method!r}')
    if self.domain not in DOMAINS:
      raise ParameterError(f'domain must be one of {DOMAINS}, got {self.domain!r}')
    if self.method == 'MWF' and self.domain != 'stft':
      raise ParameterError("MWF runs in the 'stft' domain only (a mel spectrogram has no "
                           f'cross-channel phase), got domain={self.domain!r}')
    if isinstance(self.alpha, bool) or not self.alpha > 0:
      raise ParameterError(f'alpha must be > 0, got {self.alpha!r}')
    if isinstance(self.theta, bool) or not self.theta >= 0:
      raise ParameterError(f'theta must be >= 0, got {self.theta!r}')
    checks.check_positive_ints(self, 'n_fft', 'hop_length', prefix='')
    if self.hop_length > self.n_fft // 2:
      raise ParameterError(
          f'hop_length={self.hop_length} must be at most n_fft // 2 = {self.n_fft // 2} '
          '(otherwise the inverse STFT does not see every sample)')
    if self.features is not None and not isinstance(self.features, FeatureConfig):
      raise ParameterError(f'features must be a FeatureConfig, got {type(self.features)}')

  @property
  def name(self) -> str:
    """Folder name of the method, e.g. ``IBM1``, ``IRM2``, ``MWF``, ``IRM2-mel``."""
    if self.method in ('IBM', 'IRM'):
      alpha = f'{self.alpha:g}'
      base = f'{self.method}{alpha}'
      if self.method == 'IBM' and self.theta != 0.5:
        base += f'-theta{self.theta:g}'
    else:
      base = self.method
    return base if self.domain == 'stft' else f'{base}-mel'


def parse_method(spec: str, *, theta: float = 0.5, n_fft: int = 2048,
                 hop_length: int = 1024,
                 features: Optional[FeatureConfig] = None) -> OracleConfig:
  """Builds an :class:`OracleConfig` from a name such as ``IBM1``, ``IRM2-mel``, ``MWF``.

  Grammar: ``IBM<alpha>``, ``IRM<alpha>``, ``Wiener`` or ``MWF``, optionally
  followed by ``-mel`` (case-insensitive).

  Raises:
    ParameterError: for an unknown name.
  """
  m = re.fullmatch(r'(?i)(ibm|irm)([0-9]*\.?[0-9]+)?|(wiener|mwf)', spec.split('-mel')[0]
                   if spec.lower().endswith('-mel') else spec)
  if not m:
    raise ParameterError(
        f'unknown oracle {spec!r}: expected IBM<alpha>, IRM<alpha>, Wiener or MWF, '
        'optionally with -mel (e.g. IBM1, IRM2-mel)')
  domain = 'mel' if spec.lower().endswith('-mel') else 'stft'
  if m.group(3):
    method = 'Wiener' if m.group(3).lower() == 'wiener' else 'MWF'
    alpha = 2.0
  else:
    method = m.group(1).upper()
    alpha = float(m.group(2)) if m.group(2) else (1.0 if method == 'IBM' else 2.0)
  return OracleConfig(method=method, alpha=alpha, theta=theta, domain=domain,
                      n_fft=n_fft, hop_length=hop_length, features=features)


def stft_transform(sample_rate: int, n_fft: int, hop_length: int) -> MelTransform:
  """The (cached) transform whose Hann STFT / iSTFT the STFT-domain oracles use."""
  return inversion_stft.stft_transform(n_fft=n_fft, hop_length=hop_length,
                                       sample_rate=int(sample_rate))


@functools.lru_cache(maxsize=8)
def _mel_transform(features: FeatureConfig) -> MelTransform:
  return MelTransform(features)


def _as_audio(sources, mixture):
  src = np.asarray(sources, np.float32)
  mix = np.asarray(mixture, np.float32)
  mono = src.ndim == 2
  if mono:
    src = src[:, np.newaxis]
  if mix.ndim == 1:
    mix = mix[np.newaxis]
  if src.ndim != 3 or mix.ndim != 2:
    raise ParameterError(
        'need sources [n_sources, n_samples] or [n_sources, n_channels, n_samples] and '
        f'a mixture [n_samples] or [n_channels, n_samples], got {np.shape(sources)} and '
        f'{np.shape(mixture)}')
  if src.shape[1:] != mix.shape:
    raise ParameterError(
        f'sources {np.shape(sources)} and mixture {np.shape(mixture)} differ in channels '
        'or length')
  if not (np.isfinite(src).all() and np.isfinite(mix).all()):
    raise ParameterError('sources or mixture hold NaN or infinite values')
  return src, mix, mono


def _transform_for(config: OracleConfig, sample_rate: int) -> MelTransform:
  if config.domain == 'stft':
    return stft_transform(int(sample_rate), config.n_fft, config.hop_length)
  features = config.features or FeatureConfig(
      sample_rate=int(sample_rate), fmax=min(FeatureConfig.fmax, sample_rate / 2))
  if features.sample_rate != sample_rate:
    raise ParameterError(
        f'the mel features are for {features.sample_rate} Hz but the audio is at '
        f'{sample_rate} Hz')
  return _mel_transform(features)


def multichannel_wiener(source_stfts: np.ndarray, mixture_stft: np.ndarray, *,
                        frames_per_chunk: int = 512) -> np.ndarray:
  """Multichannel Wiener filter with time-invariant spatial covariances.

  Args:
    source_stfts: complex ``[n_sources, n_channels, n_frames, n_bins]``, the
      true source images' STFTs (they give ``P_j`` and ``R_j``).
    mixture_stft: complex ``[n_channels, n_frames, n_bins]``.
    frames_per_chunk: int > 0, frames filtered at once (bounds memory).

  Returns:
    complex128 ``[n_sources, n_channels, n_frames, n_bins]``, the estimates'
    STFTs. Where every source is zero the mixture is split equally.
  """
  y = np.asarray(source_stfts, np.complex128).transpose(0, 3, 2, 1)   # [S, F, T, C]
  x = np.asarray(mixture_stft, np.complex128).transpose(2, 1, 0)       # [F, T, C]
  n_src, n_bins, n_frames, n_chan = y.shape
  eye = np.eye(n_chan)
  # 1. first PSD estimate: power averaged over channels.
  psd = np.mean(np.abs(y) ** 2, axis=-1)                               # [S, F, T]
  # 2. spatial covariance: average of y y^H / P over time, per frequency.
  w = y / np.sqrt(_EPS + psd)[..., np.newaxis]
  cov = np.einsum('sftc,sftd->sfcd', w, np.conj(w)) / n_frames       # [S, F, C, C]
  trace = np.real(np.trace(cov, axis1=-2, axis2=-1))                  # [S, F] per frequency
  cov = cov * (n_chan / np.where(trace > 0, trace, 1.0))[..., np.newaxis, np.newaxis]
  cov = cov + _COV_LOADING * eye
  # 3. refined PSD: (1 / C) y^H R^{-1} y.
  cov_inv = np.linalg.inv(cov)
  psd = np.real(np.einsum('sftc,sfcd,sftd->sft', np.conj(y), cov_inv, y)) / n_chan
  psd = np.maximum(psd, 0.0)
  out = np.empty((n_src, n_bins, n_frames, n_chan), np.complex128)
  for lo in range(0, n_frames, frames_per_chunk):
    t = slice(lo, lo + frames_per_chunk)
    model = psd[:, :, t, np.newaxis, np.newaxis] * cov[:, :, np.newaxis]   # [S, F, t, C, C]
    total = model.sum(axis=0)
    silent = np.real(np.trace(total, axis1=-2, axis2=-1)) <= 0          # [F, t]
    total = np.where(silent[..., np.newaxis, np.newaxis], eye, total)
    inv = np.linalg.inv(total)
    gain = np.einsum('sftcd,ftde->sftce', model, inv)
    gain[:, silent] = eye / n_src
    out[:, :, t] = np.einsum('sftce,fte->sftc', gain, x[:, t])
  return out.transpose(0, 3, 2, 1)


def separate(sources, mixture, *, sample_rate: int, config: OracleConfig) -> np.ndarray:
  """Runs one oracle on one track.

  Args:
    sources: float ``[n_sources, n_samples]`` or ``[n_sources, n_channels,
      n_samples]``, the true source images.
    mixture: float ``[n_samples]`` or ``[n_channels, n_samples]``.
    sample_rate: int > 0, Hz.
    config: the oracle.

  Returns:
    float32 estimates, the shape of ``sources``.

  Raises:
    ParameterError: for inconsistent shapes, non-finite values, or mel
      features at another sample rate.
  """
  src, mix, mono = _as_audio(sources, mixture)
  transform = _transform_for(config, sample_rate)
  n_samples = mix.shape[-1]
  x = transform.stft(mix).numpy()                                       # [C, T, F]
  y = transform.stft(src).numpy()                                       # [S, C, T, F]
  if config.method == 'MWF':
    est = multichannel_wiener(y, x).astype(np.complex64)
  else:
    mags = np.abs(y)
    mix_mag = np.abs(x)
    if config.domain == 'mel':
      def lift(m):
        # Flattened to [frames, bins]: TF 2.16's oneDNN batch matmul segfaults on
        # some 4-D inputs (e.g. [2, 1, 94, 257] @ [257, 40]).
        flat = np.square(m).reshape(-1, m.shape[-1])
        mel = transform.spectrogram_to_mel(flat)
        lin = transform.mel_to_spectrogram(mel, n_iter=config.nnls_iters).numpy()
        return np.sqrt(lin).reshape(m.shape)
      mags, mix_mag = lift(mags), lift(mix_mag)
    if config.method == 'IBM':
      m = tf_masks.binary_mask(mags, power=config.alpha, theta=config.theta,
                               mixture_mag=mix_mag)
    else:
      m = tf_masks.ratio_mask(mags, power=2.0 if config.method == 'Wiener' else config.alpha)
    est = tf_masks.apply_masks(np.asarray(m, np.float32), x.astype(np.complex64))
  out = transform.istft(np.asarray(est), length=n_samples).numpy().astype(np.float32)
  return out[:, 0] if mono else out


class OracleSeparator:
  """An oracle as a waveform separator (``experiments.separators``), given the true sources.

  Its ``separate(mixture, sample_rate)`` masks ``mixture`` with the oracle
  built from the references it holds, so evaluation runs oracles and models
  through one interface.

  Args:
    references: ``{source: float [n_samples]}``, the true sources at
      ``sample_rate`` (the same length as the mixtures it will separate).
    sample_rate: int > 0, Hz.
    method: an oracle name for :func:`parse_method` (``IBM1``, ``IRM2``, ``MWF``, ...).
    **options: ``theta``, ``n_fft``, ``hop_length``, ``features`` of :func:`parse_method`.

  Raises:
    ParameterError: no references, or references of different lengths.
  """

  def __init__(self, references: Dict[str, np.ndarray], sample_rate: int, *,
               method: str = 'IRM2', **options):
    if not references:
      raise ParameterError('an oracle needs the true sources (references)')
    self.sources = tuple(references)
    self.sample_rate = int(sample_rate)
    self.config = parse_method(method, **options)
    self._references = np.stack([np.asarray(references[n], np.float32)
                                 for n in self.sources])

  def separate(self, mixture, sample_rate: int) -> Dict[str, np.ndarray]:
    """``{source: [n_samples]}`` estimates of ``mixture`` (mono, at ``self.sample_rate``).

    Raises:
      ParameterError: another rate, or a mixture of another length than the
        references.
    """
    if int(sample_rate) != self.sample_rate:
      raise ParameterError(f'this oracle holds references at {self.sample_rate} Hz, got a '
                           f'mixture at {sample_rate} Hz')
    mixture = np.asarray(mixture, np.float32)
    if mixture.shape[-1] != self._references.shape[-1]:
      raise ParameterError(f'the mixture has {mixture.shape[-1]} samples, the references '
                           f'{self._references.shape[-1]}')
    est = separate(self._references, mixture, sample_rate=self.sample_rate, config=self.config)
    return dict(zip(self.sources, est))


@dataclasses.dataclass(frozen=True)
class OracleRunConfig:
  """``oracle_systems.py``: every oracle on every track of a references folder.

  Attributes:
    references_dir: ``<track>/mixture.wav`` + ``<track>/<source>.wav``.
    out_dir: estimates go to ``<out_dir>/<method name>/<track>/<source>.wav``.
    oracles: the oracles to run.
    tracks: track names to run (default: all).
    overwrite: recompute tracks whose estimates exist (default: skip them).
    progress: show a progress bar over tracks.
  """

  references_dir: str
  out_dir: str
  oracles: Tuple[OracleConfig, ...] = ()
  tracks: Optional[Tuple[str, ...]] = None
  overwrite: bool = False
  progress: bool = False

  def __post_init__(self):
    if not self.oracles:
      raise ParameterError('oracles is empty: name at least one (e.g. IBM1, IRM2, MWF)')
    names = [o.name for o in self.oracles]
    if len(set(names)) != len(names):
      raise ParameterError(f'oracle names repeat: {names}')


def run(config: OracleRunConfig) -> dict:
  """Writes every oracle's estimates in the museval folder layout.

  A track whose every estimate file exists already is skipped unless
  ``overwrite`` (so an interrupted run resumes). Files are 32-bit float wavs
  (no clipping of estimates that exceed [-1, 1]).

  Returns:
    ``{method name: folder}``.

  Raises:
    ParameterError: for a bad references folder or track (see
      ``evaluation.folders``).
  """
  from evaluation import folders  # pylint: disable=g-import-not-at-top
  from pipeline.audio import write_wav  # pylint: disable=g-import-not-at-top
  tracks = list(config.tracks) if config.tracks else folders.list_tracks(config.references_dir)
  outputs = {o.name: os.path.join(config.out_dir, o.name) for o in config.oracles}
  iterator = tracks
  if config.progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(tracks, unit='track', desc='oracles')
  for name in iterator:
    track = None
    for oracle in config.oracles:
      folder = os.path.join(outputs[oracle.name], name)
      if track is None:
        track = folders.load_track(config.references_dir, name)
      paths = [os.path.join(folder, f'{s}.wav') for s in track.source_names]
      if not config.overwrite and all(os.path.exists(p) for p in paths):
        continue
      est = separate(track.stacked_sources(), track.mixture,
                     sample_rate=track.sample_rate, config=oracle)
      for path, y in zip(paths, est):
        write_wav(path, y, track.sample_rate, subtype='FLOAT')
  return outputs
