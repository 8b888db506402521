"""Whole recordings separated into one wav per source: what ``separate_audio.py`` runs.

  mixture wav (any length, any rate)
    -> resample to the priors' rate, mono
    -> MelTransform -> scaled mel image [n_mels, n_frames, 1]
    -> overlapping patches [n_patches, n_mels, patch_frames, 1]
    -> BASIS with one prior per source and the dB power-sum mixing, in batches
       (finished batches cached in <out_dir>/partial: an interrupted run resumes)
    -> cross-faded stitching back to [n_sources, n_mels, n_frames, 1]
    -> mel power -> linear magnitude (the refiner, or NNLS) -> phase from the mixture
       (Wiener by default; MISI and the rest of inversion.phase.METHODS)
    -> <out_dir>/<source>.wav, spectrograms.png, separation.json and the
       separated scaled mel images estimates_mel.npy [n_sources, n_mels, n_frames, 1]
       (to invert again with another method: images_to_waveforms)

The features (rate, STFT, mel bands, dB range) come from the priors'
``config.json``: both priors must have been trained on the same features.
"""

import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from basis.mixing import DbPowerSum
from basis.priors import NCSNPrior
from basis.sampler import sampler_settings
from basis.separate import Separator
from experiments import patching
from experiments.batches import separate_in_batches
from experiments.resume import BatchCache, fingerprint_prior_dirs, mixtures_digest
from inversion import mel_to_linear
from inversion import phase as phase_lib
from pipeline import audio
from common import compute
from common.atomic import save_npy_atomic, write_json_atomic
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PRIOR_DIRS = (os.path.join(ROOT, 'assets', 'priors', 'ncsn_piano'),
                      os.path.join(ROOT, 'assets', 'priors', 'ncsn_violin'))
MIN_SECONDS = 0.25          # shorter input is refused (fewer than ~8 frames)
SILENCE_PEAK = 1e-5         # -100 dBFS: nothing to separate


@dataclasses.dataclass(frozen=True)
class AudioSeparationConfig:
  """One whole-recording separation.

  Attributes:
    input: the mixture audio file (wav, flac, ogg, ...).
    out_dir: folder for ``<source>.wav``, ``spectrograms.png``,
      ``separation.json`` and the resume cache ``partial/``.
    prior_dirs: one exported NCSN prior folder per source.
    names: source names (default: from the prior folders, ``ncsn_piano`` ->
      ``piano``).
    hop_frames: frames between patch starts (``patch_frames``: no overlap).
    sampler: 'fast' (default, measured in docs/basis.md: a warm start at the
      third level, 25 steps on each of the 8 levels left, a Tweedie step; 201
      score calls per source) or 'paper' (100 steps on all 10 levels, 1,000
      calls); the three fields below override it.
    steps_per_sigma: Langevin steps per noise level, or a tuple with the
      steps of each level (0 skips a level); None: the sampler's.
    step_size: delta of BASIS.
    likelihood_scale: multiplies the 1 / sigma^2 weight of the mixture term.
    start_level: warm start at this level (index into the priors' schedule)
      from the mixture split 3 dB down per source (two sources) plus noise;
      0: cold start; None: the sampler's.
    denoise: end with the Tweedie step x + sigma_L^2 s(x, sigma_L); None: the
      sampler's.
    batch_size: patches per compiled separation call.
    precision: ``'auto'``, ``'float32'`` or ``'bfloat16'`` (score networks).
    magnitude: mel -> linear magnitude: ``'auto'`` (the shipped refiner where
      it fits the features' STFT, else NNLS; docs/inversion.md), ``'refiner'``,
      ``'nnls'`` or ``'pinv'``.
    phase: a name in ``inversion.phase.METHODS`` (``'wiener'``, ``'misi'``, ...).
    phase_iterations: iterations of the iterative phase methods.
    seed: Langevin noise seed.
    input_peak: scale the mixture to this peak before separating (and the
      estimates back after), so that its dB levels match the priors' training
      data (the shipped piano / violin sets are rendered at mixture peak 0.3);
      None: separate the file as it is.
    resume: reuse finished batches of the same separation in ``out_dir/partial``.
    figure: write ``spectrograms.png``.
  """

  input: str
  out_dir: str
  prior_dirs: Tuple[str, ...] = DEFAULT_PRIOR_DIRS
  names: Optional[Tuple[str, ...]] = None
  hop_frames: int = 48
  sampler: str = 'fast'
  steps_per_sigma: Any = None
  step_size: float = 2e-5
  likelihood_scale: float = 1.0
  start_level: Optional[int] = None
  denoise: Optional[bool] = None
  batch_size: int = 8
  precision: str = 'auto'
  magnitude: str = 'auto'
  phase: str = 'wiener'
  phase_iterations: int = 20
  seed: int = 0
  input_peak: Optional[float] = 0.3
  resume: bool = True
  figure: bool = True

  def __post_init__(self):
    if len(self.prior_dirs) < 2:
      raise ParameterError(f'give one prior folder per source (at least 2), got '
                           f'{list(self.prior_dirs)}')
    if self.names is not None and len(self.names) != len(self.prior_dirs):
      raise ParameterError(f'{len(self.names)} names for {len(self.prior_dirs)} priors')
    for name in ('batch_size', 'hop_frames') + (
        ('steps_per_sigma',) if np.ndim(self.steps_per_sigma) == 0
        and self.steps_per_sigma is not None else ()):
      if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) <= 0:
        raise ParameterError(f'{name} must be a positive int, got {getattr(self, name)!r}')
    if not (self.step_size > 0 and np.isfinite(self.step_size)):
      raise ParameterError(f'step_size must be > 0 and finite, got {self.step_size!r}')
    if not (self.likelihood_scale >= 0 and np.isfinite(self.likelihood_scale)):
      raise ParameterError(f'likelihood_scale must be >= 0 and finite, got '
                           f'{self.likelihood_scale!r}')
    if self.input_peak is not None and not (0 < self.input_peak <= 1):
      raise ParameterError(f'input_peak must be in (0, 1] or None, got {self.input_peak!r}')
    if self.phase not in phase_lib.METHODS:
      raise ParameterError(f'unknown phase method {self.phase!r}; choose one of '
                           f'{sorted(phase_lib.METHODS)}')
    if self.magnitude not in mel_to_linear.MAGNITUDE_METHODS:
      raise ParameterError(f'unknown magnitude method {self.magnitude!r}; choose one of '
                           f'{list(mel_to_linear.MAGNITUDE_METHODS)}')

  def separator_options(self, sigmas, mixing) -> Dict[str, Any]:
    """The :class:`Separator` keyword arguments of the sampler and the overrides."""
    return sampler_settings(
        self.sampler, mixing=mixing, steps_per_sigma=self.steps_per_sigma,
        step_size=self.step_size, denoise=self.denoise,
        start_level=self.start_level).separator_kwargs(sigmas)

  def source_names(self) -> List[str]:
    if self.names:
      return list(self.names)
    names = []
    for d in self.prior_dirs:
      base = os.path.basename(os.path.normpath(d))
      names.append(base[5:] if base.startswith('ncsn_') else base)
    if len(set(names)) != len(names):
      raise ParameterError(f'the prior folders give repeated source names {names}; '
                           'pass names explicitly (--names)')
    return names


def prior_features(priors: Sequence[NCSNPrior], prior_dirs: Sequence[str]) -> FeatureConfig:
  """The mel features all priors were trained on (a clear error if they differ or lack them)."""
  found = None
  for prior, d in zip(priors, prior_dirs):
    meta = prior.model.prior_metadata
    feats = (meta.get('dataset') or {}).get('features')
    if feats is None:
      raise ParameterError(f'prior {d} records no mel features: it was not trained on '
                           'spectrogram patches (train_ncsn.py --dataset=melspec or audio)')
    feats = FeatureConfig.from_dict(feats)
    if tuple(meta.get('image_shape', feats.patch_shape)) != feats.patch_shape:
      raise ParameterError(f'prior {d}: image_shape {meta.get("image_shape")} does not match '
                           f'its features {feats.patch_shape}')
    if found is not None and feats != found[0]:
      raise ParameterError(f'priors {found[1]} and {d} were trained on different features')
    found = found or (feats, d)
  return found[0]


def load_mixture(path: str, features: FeatureConfig) -> Tuple[np.ndarray, int]:
  """The mixture at the priors' rate, mono; clear errors for unusable input.

  Returns:
    ``(waveform [n_samples] float32, original sample rate)``.
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  try:
    original_rate = int(sf.info(path).samplerate)
  except Exception:  # pylint: disable=broad-except  (audio.load names the problem)
    original_rate = None
  y, _ = audio.load(path, sample_rate=features.sample_rate, mono=True)
  seconds = len(y) / features.sample_rate
  if seconds < MIN_SECONDS:
    raise ParameterError(f'{path} is {seconds:.3f} s long; separation needs at least '
                         f'{MIN_SECONDS} s')
  peak = float(np.max(np.abs(y)))
  if peak < SILENCE_PEAK:
    raise ParameterError(f'{path} is silent (peak {peak:.2e}): nothing to separate')
  return y.astype(np.float32), original_rate


def _identity(config: AudioSeparationConfig, patches: np.ndarray, features: FeatureConfig,
              separator: Separator) -> Dict[str, Any]:
  return {
      'kind': 'audio_separation', 'patches_sha256': mixtures_digest(patches),
      'n_patches': int(len(patches)), 'hop_frames': config.hop_frames,
      'prior_dirs': [os.path.abspath(d) for d in config.prior_dirs],
      'prior_fingerprints': fingerprint_prior_dirs(list(config.prior_dirs)),
      'separator': separator.settings(), 'batch_size': config.batch_size, 'seed': config.seed,
      'features': features.to_dict()}


def separate_image(separator: Separator, image: np.ndarray, *, hop_frames: int,
                   batch_size: int, seed: int, cache: Optional[BatchCache] = None,
                   log=print) -> Tuple[np.ndarray, Dict[str, float]]:
  """A whole mel image ``[n_mels, n_frames, 1]`` -> ``[K, n_mels, n_frames, 1]`` estimates."""
  patch_frames = separator.priors[0].model.image_shape[1]
  n_frames = image.shape[1]
  patches, starts, padded = patching.split_into_patches(
      image, patch_frames=patch_frames, hop_frames=hop_frames)
  stats: Dict[str, float] = {}
  estimates = separate_in_batches(separator, patches, batch_size=min(batch_size, len(patches)),
                                  seed=seed, init=None, log=log, cache=cache, stats=stats)
  stitched = patching.stitch_patches(estimates, starts, padded, hop_frames=hop_frames)
  return stitched[:, :, :n_frames], dict(stats, n_patches=len(patches))


def images_to_waveforms(images: np.ndarray, mixture: np.ndarray, transform: MelTransform, *,
                        magnitude: str = 'auto', phase: str = 'wiener',
                        phase_iterations: int = 20) -> np.ndarray:
  """Separated mel images ``[K, n_mels, n_frames, 1]`` + the mixture -> ``[K, n_samples]``."""
  mel = transform.unit_to_mel(images).numpy()                      # [K, n_frames, n_mels]
  mags = mel_to_linear.mel_to_magnitude(mel, method=magnitude, transform=transform)
  mix_stft = transform.stft(mixture).numpy()                        # [n_frames, n_bins]
  # Methods that take no iterations ignore n_iter; gla / fgla start from the mixture phase.
  result = phase_lib.reconstruct(phase, mags, mix_stft, transform=transform,
                                 length=len(mixture), n_iter=phase_iterations)
  return np.asarray(result.waveform, np.float32)


def run(config: AudioSeparationConfig, *, log=print) -> Dict[str, Any]:
  """Separates ``config.input``; writes the wavs and returns the summary (separation.json)."""
  if os.path.exists(config.out_dir) and not os.path.isdir(config.out_dir):
    raise ParameterError(f'--out_dir {config.out_dir} exists and is not a folder')
  for d in config.prior_dirs:
    if not os.path.isdir(d):
      raise ParameterError(f'prior folder {d} does not exist (the shipped priors live in the '
                           "source checkout's assets/priors; pass --prior_dir)")
  names = config.source_names()
  dtype = compute.resolve_precision(config.precision, log=log)
  priors = [NCSNPrior(d, compute_dtype=dtype) for d in config.prior_dirs]
  features = prior_features(priors, config.prior_dirs)
  transform = MelTransform(features)
  mixture, original_rate = load_mixture(config.input, features)
  gain = 1.0
  if config.input_peak is not None:
    gain = config.input_peak / float(np.max(np.abs(mixture)))
    mixture = mixture * np.float32(gain)
  seconds = len(mixture) / features.sample_rate
  image = transform.waveform_to_unit(mixture).numpy()               # [n_mels, n_frames, 1]
  sigmas = np.sort(np.asarray(priors[0].sigmas, np.float64))[::-1]
  mixing = DbPowerSum.from_features(features)
  separator = Separator(priors, sigmas=sigmas, mixing=mixing, clip=(0.0, 1.0),
                        likelihood_scale=config.likelihood_scale,
                        **config.separator_options(sigmas, mixing))
  os.makedirs(config.out_dir, exist_ok=True)
  patches_for_id, _, _ = patching.split_into_patches(
      image, patch_frames=features.patch_frames, hop_frames=config.hop_frames)
  cache = (BatchCache(os.path.join(config.out_dir, 'partial'),
                      _identity(config, patches_for_id, features, separator))
           if config.resume else None)
  log(f'{config.input}: {seconds:.2f} s at {original_rate} Hz -> {features.sample_rate} Hz, '
      f'{image.shape[1]} frames, {len(patches_for_id)} patches of {features.patch_frames} '
      f'(hop {config.hop_frames}); separating into {", ".join(names)} '
      f'({separator.calls_per_source} score calls per source)')
  t0 = time.time()
  images, stats = separate_image(separator, image, hop_frames=config.hop_frames,
                                 batch_size=config.batch_size, seed=config.seed, cache=cache,
                                 log=log)
  t_sep = time.time() - t0
  t1 = time.time()
  waves = images_to_waveforms(images, mixture, transform, magnitude=config.magnitude,
                              phase=config.phase, phase_iterations=config.phase_iterations)
  t_inv = time.time() - t1
  save_npy_atomic(os.path.join(config.out_dir, 'estimates_mel.npy'), images)
  written = {}
  waves = waves / np.float32(gain)              # back to the input's level
  mixture = mixture / np.float32(gain)
  for name, y in zip(names, waves):
    path = os.path.join(config.out_dir, f'{name}.wav')
    audio.write_wav(path, y, features.sample_rate, subtype='FLOAT')
    written[name] = path
  if config.figure:
    from inversion.figures import spectrogram_figure  # pylint: disable=g-import-not-at-top
    spectrogram_figure(os.path.join(config.out_dir, 'spectrograms.png'),
                       {'mixture': mixture, **dict(zip(names, waves))}, transform)
  patch_seconds = features.patch_samples / features.sample_rate
  summary = {
      'input': os.path.abspath(config.input), 'duration_s': seconds,
      'original_sample_rate': original_rate, 'sample_rate': features.sample_rate,
      'input_gain_db': 20.0 * float(np.log10(gain)), 'features': features.to_dict(),
      'sources': written, 'precision': dtype, 'cpu': compute.cpu_description(),
      'config': {k: (list(v) if isinstance(v, tuple) else v)
                 for k, v in dataclasses.asdict(config).items()},
      'separator': separator.settings(),
      'magnitude': mel_to_linear.resolve_method(config.magnitude, transform),
      'n_patches': int(stats['n_patches']), 'separation_s': t_sep, 'inversion_s': t_inv,
      'patches_resumed': int(stats.get('resumed', 0)),
      'separation_s_per_patch_duration': (t_sep / seconds * patch_seconds
                                          if stats.get('computed') else None),
  }
  write_json_atomic(os.path.join(config.out_dir, 'separation.json'), summary)
  if cache is not None:
    cache.remove()
  log(f'wrote {", ".join(written.values())} (separation {t_sep:.1f} s, inversion '
      f'{t_inv:.1f} s)')
  return summary
