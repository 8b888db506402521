"""BASIS on waveforms: the ``basis`` method of the separator seam (``experiments.separators``).

  mixture chunk [n_samples] at the priors' rate (the seam resamples, scales to
  the priors' training level and chunks)
    -> MelTransform -> scaled mel image [n_mels, n_frames, 1]
    -> overlapping patches [n_patches, n_mels, patch_frames, 1]
    -> BASIS with one prior per source and the dB power-sum mixing, in batches
    -> cross-faded stitching back to [n_sources, n_mels, n_frames, 1]
    -> mel power -> linear magnitude (the refiner, or NNLS) -> phase from the
       mixture (Wiener by default; MISI and the rest of inversion.phase.METHODS)
    -> {source: [n_samples]}

The features (rate, STFT, mel bands, dB range) come from the priors'
``config.json``: all priors must have been trained on the same features. A
model folder (``separator.json`` with ``"method": "basis"``) names one prior
folder per source; the shipped one is ``assets/separators/piano-violin/basis``.
"""

import collections
import dataclasses
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from basis import registry
from basis.mixing import DbPowerSum
from basis.sampler import sampler_settings
from basis.separate import SATURATION_LIMIT, Separator, clipped_fraction
from common import assets
from common import compute
from common.errors import ParameterError
from common.result_cache import KeyedCache, digest, key_of
from experiments import patching
from experiments import prior_checks
from experiments.batches import separate_in_batches
from experiments.resume import fingerprint_prior_dirs
from inversion import mel_to_linear
from inversion import phase as phase_lib
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform

# The shipped piano and violin priors (what assets/separators/piano-violin/basis names).
DEFAULT_PRIOR_DIRS = (assets.prior_dir('ncsn_piano'), assets.prior_dir('ncsn_violin'))
MIN_SECONDS = 0.25          # shorter input is refused (fewer than ~8 frames)
SILENCE_PEAK = 1e-5         # -100 dBFS: nothing to separate
STEP_CHECK_PATCHES = 4      # patches the step-size check probes per prior
# The last separated mel images by key, so that another phase method of the same
# separation (evaluation's BASIS-wiener, BASIS-misi) reuses them; 32 entries of at
# most 2 x 96 x 940 floats (a 30 s chunk) are under 25 MB.
_MEL_MEMO: 'collections.OrderedDict[str, np.ndarray]' = collections.OrderedDict()
_MEL_MEMO_SIZE = 32
# Level-normalised scoring (issue 23 item 3; docs/generalization.md "Unequal levels").
LEVEL_MODES = ('off', 'estimate')
# The median power-mean level (dB) of the shipped priors' training patches
# (out/music/tfr/{piano,violin}/train: piano -6.5, violin -6.1; quartiles about
# -10 .. -3 dB; experiments/studies/level_study.py --mode=typical measures it).
PRIOR_LEVEL_DB = -6.3
# With a guide, the chains start at this level of the priors' schedule (sigma 0.077 of the
# shipped priors' 1 .. 0.01): the best of levels 3-7 on the 12 validation tracks, and the
# one that kept the loud source above the mixture in all 8 tracks at a 20 dB balance
# (docs/generalization.md, "A guided start"); level 2, the unguided warm start's, loses
# what the guide found.
GUIDE_START_LEVEL = 5


def patch_levels_db(image: np.ndarray, features: FeatureConfig) -> np.ndarray:
  """Power-mean level of each non-overlapping patch of a unit-scale mel image.

  Args:
    image: float ``[..., n_mels, n_frames, 1]`` in the unit scale of ``features``.
    features: the :class:`FeatureConfig` whose dB range the image uses.

  Returns:
    float64 ``[..., n_patches]``: ``10 log10(mean power)`` of each patch of
    ``features.patch_frames`` frames (a last, shorter patch is kept), dB. A
    gain of G dB adds G to it exactly as long as nothing is clipped.
  """
  min_db, max_db = features.db_range
  db = np.asarray(image, np.float64)[..., 0] * (max_db - min_db) + min_db
  n_frames, width = db.shape[-1], features.patch_frames
  levels = []
  for start in range(0, n_frames, width):
    part = db[..., start:start + width]
    peak = part.max(axis=(-2, -1), keepdims=True)      # log-mean-exp, overflow-free
    mean = np.mean(10.0 ** ((part - peak) / 10.0), axis=(-2, -1))
    levels.append(10.0 * np.log10(mean) + peak[..., 0, 0])
  return np.stack(levels, axis=-1)


def track_level_db(image: np.ndarray, features: FeatureConfig) -> np.ndarray:
  """The level of a mel image (or ``[K, ...]`` images): the median of its patch levels, dB."""
  return np.median(patch_levels_db(image, features), axis=-1)


class LevelShiftedPrior:
  """A prior scored at the patch shifted by a level offset: ``s(x + offset, sigma)``.

  In the unit scale of dB features a gain of G dB adds ``G / (max_db - min_db)``
  (above the floor), so evaluating a prior trained at a typical level on
  ``x + offset`` makes it a prior over level-normalised patches, while the
  mixing model keeps the unshifted ``x``. Gaussian noise commutes with the
  shift, so the noise-smoothed score shifts exactly too. Only the floor
  breaks it: a bin at the floor (``x`` = 0) of a source raised by ``offset``
  sits at ``offset`` instead of 0, a value the prior saw as a real, very quiet
  bin (about 1 % of its training bins are at the floor). Nothing is clipped.

  Args:
    prior: any object with ``score(x, sigma)``; its other attributes pass through.

  Attributes:
    offset: a float32 ``[n]`` ``tf.Variable`` (unit scale): one offset for
      every patch (``n`` = 1) or one per patch of the next batch (the first
      ``batch`` are used), read at run time by compiled steps, set with
      :meth:`set_offset`.
  """

  def __init__(self, prior):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self.prior = prior
    self.offset = tf.Variable([0.0], dtype=tf.float32, trainable=False,
                              shape=tf.TensorShape([None]))

  def set_offset(self, offset):
    """A float, or float ``[batch]`` (one per patch of the next batch)."""
    self.offset.assign(np.asarray(offset, np.float32).reshape(-1))

  def score(self, x, sigma):
    """``prior.score(x + offset, sigma)``, the shape and dtype of the prior's score."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    offset = self.offset[:tf.shape(x)[0]]              # [1] or [batch]
    offset = tf.reshape(offset, [-1] + [1] * (x.shape.rank - 1))
    # The offset's length is not static; x's static shape is kept.
    return self.prior.score(tf.ensure_shape(x + offset, x.shape), sigma)

  def __getattr__(self, name):
    return getattr(self.__dict__['prior'], name)


class LevelSplitSeparator(Separator):
  """A :class:`Separator` whose warm start splits the mixture by the sources' levels.

  Source k starts at ``m + 10 log10(w_k)`` dB with ``w_k`` its share of the
  power (``start_shares``; equal shares give the usual split), plus noise.
  """

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self.start_shift = np.zeros(self.num_sources, np.float32)

  def set_start_shares(self, shares_db, span_db: float):
    """Sources' levels in dB (any common reference): ``[K]``, or ``[K, batch]`` (one per
    patch of the next batch); None for equal shares."""
    if shares_db is None:
      self.start_shift = np.zeros(self.num_sources, np.float32)
      return
    levels = np.asarray(shares_db, np.float64)
    top = levels.max(axis=0, keepdims=True)
    w_db = levels - top - 10.0 * np.log10(np.sum(10.0 ** ((levels - top) / 10.0), axis=0))
    self.start_shift = ((w_db + 10.0 * np.log10(self.num_sources)) / span_db).astype(np.float32)

  def warm_start(self, mixture, seed, start=None):
    xs = super().warm_start(mixture, seed, start)
    if start is not None:                     # given estimates carry their own levels
      return xs
    shift = np.reshape(self.start_shift, self.start_shift.shape
                       + (1,) * (len(xs.shape) - self.start_shift.ndim))
    return xs + shift


@dataclasses.dataclass(frozen=True)
class BasisOptions:
  """The options of the ``basis`` method (``separate_audio.py`` flags of the same names).

  Attributes:
    hop_frames: frames between patch starts (``patch_frames``: no overlap).
    sampler: 'fast' (default, measured in docs/basis.md: a warm start at the
      third level, 25 steps on each of the 8 levels left, a Tweedie step; 201
      score calls per source) or 'paper' (100 steps on all 10 levels, 1,000
      calls); the fields below override it.
    steps_per_sigma: Langevin steps per noise level, or a tuple with the
      steps of each level (0 skips a level); None: the sampler's.
    step_size: delta of BASIS.
    likelihood_scale: multiplies the 1 / sigma^2 weight of the mixture term.
    start_level: warm start at this level (index into the priors' schedule)
      from the mixture split 3 dB down per source (two sources) plus noise;
      0: cold start; None: the sampler's.
    denoise: end with the Tweedie step; None: the sampler's.
    batch_size: patches per compiled separation call.
    precision: ``'auto'``, ``'float32'`` or ``'bfloat16'`` (score networks).
    magnitude: mel -> linear magnitude: ``'auto'`` (the shipped refiner where
      it fits the features' STFT, else NNLS; docs/inversion.md), ``'refiner'``,
      ``'nnls'``, ``'pinv'``, or ``'guide'`` (with a ``guide``: the guide's own
      STFT magnitudes times the gains BASIS put on each mel band,
      :func:`inversion.mel_to_linear.mel_gain_magnitude`; a model folder's
      ``'guide'`` becomes ``'auto'`` when its guide is turned off).
    refiner: a trained refiner folder for ``magnitude`` 'refiner' / 'auto'
      (a model folder's ``separator.json`` may name one relative to itself);
      None: the shipped one (``assets/inversion/refiner``).
    phase: a name in ``inversion.phase.METHODS`` (``'wiener'``, ``'misi'``, ...).
    phase_iterations: iterations of the iterative phase methods.
    seed: Langevin noise seed.
    chains: independent chains per patch, whose mel powers are averaged (the
      posterior mean in the power domain) before inversion; 1: one sample.
      Costs ``chains`` times the separation time (docs/generalization.md).
    input_peak: the mixture peak the priors were trained at (the seam scales
      the mixture to it and the estimates back); None: as it is.
    check_step: before separating, probe each prior's score at the mixture's
      patches and warn when the step size is near the stability limit.
    mel_cache_dir: keep the separated mel images there by key (so another
      phase method of the same separation reuses them); None: no cache.
    level_normalise: level-normalised scoring (docs/generalization.md,
      "Unequal levels"): each prior is scored at its source shifted to
      ``prior_level_db`` (:class:`LevelShiftedPrior`) while the mixing sees
      the unshifted source. 'off': no shift; 'estimate': the sources' levels
      are measured on a first, unshifted separation and each of the next
      ``level_passes`` - 1 separations runs with the levels of the one
      before; 'given': the levels set by
      :meth:`BasisSeparator.set_source_levels` (an oracle, for studies).
    level_passes: separations with ``level_normalise='estimate'`` (each
      costs a whole separation).
    level_start: with ``level_normalise``, the warm start splits the mixture
      by the sources' levels instead of equally.
    prior_level_db: the typical power-mean patch level of the priors'
      training data, dB (:func:`track_level_db`).
    guide: another separator whose estimates start the chains instead of the
      mixture split (docs/generalization.md, "A guided start"): a registered
      method name (its shipped model for the task, e.g. ``'unet'``) or a
      model folder; the guide's waveforms go through the priors' mel
      transform and the chains start from them plus the start level's noise
      (``start_level`` None: ``guide_start_level``). None or ``'off'``: no
      guide.
    guide_start_level: the start level with a guide when ``start_level`` is
      None (None: :data:`GUIDE_START_LEVEL`); unused without a guide, so a
      model folder's guided start does not move its unguided one.
  """

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
  refiner: Optional[str] = None
  phase: str = 'wiener'
  phase_iterations: int = 20
  seed: int = 0
  chains: int = 1
  input_peak: Optional[float] = 0.3
  check_step: bool = True
  mel_cache_dir: Optional[str] = None
  level_normalise: str = 'off'
  level_passes: int = 2
  level_start: bool = True
  prior_level_db: float = PRIOR_LEVEL_DB
  guide: Optional[str] = None
  guide_start_level: Optional[int] = None

  def __post_init__(self):
    if self.level_normalise not in LEVEL_MODES + ('given',):
      raise ParameterError(f'level_normalise must be one of {list(LEVEL_MODES)}, got '
                           f'{self.level_normalise!r}')
    if self.guide == 'off':
      object.__setattr__(self, 'guide', None)
    if self.guide is not None and (not isinstance(self.guide, str) or not self.guide):
      raise ParameterError(f'guide must be a method name or a model folder, got '
                           f'{self.guide!r}')
    if self.guide is not None and self.level_normalise != 'off':
      raise ParameterError(f'guide={self.guide!r} and level_normalise='
                           f'{self.level_normalise!r} exclude each other: the guide\'s '
                           'estimates carry the sources\' levels (guide=off, --guide=off, '
                           'for a level mode)')
    if not np.isfinite(self.prior_level_db):
      raise ParameterError(f'prior_level_db must be finite, got {self.prior_level_db!r}')
    for name in ('batch_size', 'hop_frames', 'chains', 'level_passes') + (
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
    if self.magnitude not in mel_to_linear.MAGNITUDE_METHODS + ('guide',):
      raise ParameterError(f'unknown magnitude method {self.magnitude!r}; choose one of '
                           f'{list(mel_to_linear.MAGNITUDE_METHODS) + ["guide"]}')
    if self.magnitude == 'guide' and self.guide is None:
      raise ParameterError("magnitude='guide' takes the guide's STFT magnitudes: give a "
                           'guide (e.g. guide=unet) or another magnitude method')

  def separator_options(self, sigmas, mixing, kind: str) -> Dict[str, Any]:
    """The :class:`Separator` keyword arguments of the sampler and the overrides."""
    start_level = self.start_level
    if start_level is None and self.guide is not None:
      start_level = (GUIDE_START_LEVEL if self.guide_start_level is None
                     else self.guide_start_level)
    return sampler_settings(
        self.sampler, mixing=mixing, prior_kind=kind, steps_per_sigma=self.steps_per_sigma,
        step_size=self.step_size, denoise=self.denoise,
        start_level=start_level).separator_kwargs(sigmas)


def prior_features(priors: Sequence[Any], prior_dirs: Sequence[str]) -> FeatureConfig:
  """The mel features all priors were trained on (a clear error if they differ or lack them)."""
  found = None
  for prior, d in zip(priors, prior_dirs):
    feats = prior.features
    if feats is None:
      raise ParameterError(f'prior {d} records no mel features: it was not trained on '
                           'spectrogram patches (train_ncsn.py --dataset=melspec or audio)')
    if found is not None and feats != found[0]:
      raise ParameterError(f'priors {found[1]} and {d} were trained on different features')
    found = found or (feats, d)
  return found[0]


def power_mean(images: np.ndarray, mixing: DbPowerSum, *, axis: int) -> np.ndarray:
  """The mean over ``axis`` of unit-scale dB images taken in the power domain: the
  mixing's power sum of them, split back into that many equal parts."""
  images = np.moveaxis(np.asarray(images, np.float32), axis, 0)
  return np.asarray(mixing.split(mixing(images), images.shape[0]), np.float32)


def separate_image(separator: Separator, image: np.ndarray, *, patch_frames: int,
                   hop_frames: int, batch_size: int, seed: int, chains: int = 1,
                   start: Optional[np.ndarray] = None,
                   log=print) -> Tuple[np.ndarray, Dict[str, float]]:
  """A whole mel image ``[n_mels, n_frames, 1]`` -> ``[K, n_mels, n_frames, 1]`` estimates.

  With ``chains`` > 1 every patch is separated that many times (the copies run
  as separate batch items, so each draws its own noise) and the estimates'
  powers are averaged (:func:`power_mean`) before stitching. ``start``
  (``[K, n_mels, n_frames, 1]``, with a warm-starting separator) are estimates
  the chains begin from instead of the mixture split, cut into the same patches.
  """
  n_frames = image.shape[1]
  patches, starts, padded = patching.split_into_patches(
      image, patch_frames=patch_frames, hop_frames=hop_frames)
  n_patches = len(patches)
  stats: Dict[str, float] = {}
  copies = np.concatenate([patches] * chains) if chains > 1 else patches
  init = None
  if start is not None:
    init = np.stack([patching.split_into_patches(s, patch_frames=patch_frames,
                                                 hop_frames=hop_frames)[0] for s in start])
    init = np.concatenate([init] * chains, axis=1)
  # Equal batches: 9 patches at batch size 8 run as 5 + 4 (padded to 5), not 8 + 1
  # (padded to 8): the fewest batches, the least padding.
  n_batches = -(-len(copies) // batch_size)
  estimates = separate_in_batches(separator, copies,
                                  batch_size=-(-len(copies) // n_batches),
                                  seed=seed, init=init, log=log, stats=stats)
  if chains > 1:
    estimates = np.asarray(estimates)
    estimates = power_mean(estimates.reshape((estimates.shape[0], chains, n_patches)
                                             + estimates.shape[2:]), separator.mixing, axis=1)
  stitched = patching.stitch_patches(estimates, starts, padded, hop_frames=hop_frames)
  return stitched[:, :, :n_frames], dict(stats, n_patches=n_patches)


def images_to_waveforms(images: np.ndarray, mixture: np.ndarray, transform: MelTransform, *,
                        magnitude: str = 'auto', phase: str = 'wiener',
                        phase_iterations: int = 20,
                        refiner: Optional[str] = None) -> np.ndarray:
  """Separated mel images ``[K, n_mels, n_frames, 1]`` + the mixture -> ``[K, n_samples]``."""
  mel = transform.unit_to_mel(images).numpy()                      # [K, n_frames, n_mels]
  mags = mel_to_linear.mel_to_magnitude(
      mel, method=magnitude, transform=transform,
      refiner=refiner if magnitude == 'refiner' else None)
  mix_stft = transform.stft(mixture).numpy()                        # [n_frames, n_bins]
  # Methods that take no iterations ignore n_iter; gla / fgla start from the mixture phase.
  result = phase_lib.reconstruct(phase, mags, mix_stft, transform=transform,
                                 length=len(mixture), n_iter=phase_iterations)
  return np.asarray(result.waveform, np.float32)


def guided_waveforms(images: np.ndarray, guide: np.ndarray, mixture: np.ndarray,
                     transform: MelTransform, *, phase: str = 'wiener',
                     phase_iterations: int = 20) -> np.ndarray:
  """Separated mel images ``[K, n_mels, n_frames, 1]`` as gains on the guide's STFT
  magnitudes (``guide`` ``[K, n_samples]``; :func:`mel_to_linear.mel_gain_magnitude`),
  then the phase method on the mixture: ``[K, n_samples]``."""
  mel = transform.unit_to_mel(images).numpy()                       # [K, n_frames, n_mels]
  mags = mel_to_linear.mel_gain_magnitude(transform.spectrogram(guide).numpy(), mel,
                                          transform)
  mix_stft = transform.stft(mixture).numpy()
  result = phase_lib.reconstruct(phase, mags, mix_stft, transform=transform,
                                 length=len(mixture), n_iter=phase_iterations)
  return np.asarray(result.waveform, np.float32)


class BasisSeparator:
  """BASIS with one mel prior per source, as a waveform separator.

  Args:
    prior_dirs: one exported prior folder per source (any registered kind
      with mel features; ``basis.registry``).
    names: the source names, one per prior.
    options: :class:`BasisOptions`.
    log: progress lines, or None.
    task: the task (``experiments.separators.TASKS``) whose shipped model a
      ``guide`` method name loads; None: the task of ``names``.

  Raises:
    ParameterError: fewer than two priors, names that do not match, priors
      without (or with different) mel features, a guide that cannot be loaded
      or separates other sources.
  """

  overlap_s = 1.0

  def __init__(self, prior_dirs: Sequence[str], names: Sequence[str], *,
               options: BasisOptions = BasisOptions(), log=print,
               task: Optional[str] = None):
    if len(prior_dirs) < 2:
      raise ParameterError(f'give one prior folder per source (at least 2), got '
                           f'{list(prior_dirs)}')
    if len(names) != len(prior_dirs):
      raise ParameterError(f'{len(names)} names for {len(prior_dirs)} priors')
    self.prior_dirs = tuple(prior_dirs)
    self.sources = tuple(names)
    self.options = options
    self.log = log or (lambda line: None)
    kinds = {registry.kind_of(d).name for d in self.prior_dirs}
    if len(kinds) > 1:
      raise ParameterError(f'the priors are of different kinds {sorted(kinds)}: '
                           f'{list(self.prior_dirs)}')
    self.kind = kinds.pop()
    self.precision = compute.resolve_precision(options.precision, log=self.log)
    self.priors = [registry.load_prior(d, compute_dtype=self.precision)[0]
                   for d in self.prior_dirs]
    self.features = prior_features(self.priors, self.prior_dirs)
    self.transform = MelTransform(self.features)
    self.sample_rate = self.features.sample_rate
    self.input_peak = options.input_peak
    self.sigmas = np.sort(np.asarray(self.priors[0].sigmas, np.float64))[::-1]
    self.mixing = DbPowerSum.from_features(self.features)
    self._given_levels: Optional[Tuple[float, ...]] = None
    scored = self.priors
    separator_class = Separator
    if options.level_normalise != 'off':
      scored = [LevelShiftedPrior(p) for p in self.priors]
      separator_class = LevelSplitSeparator
    self.separator = separator_class(scored, sigmas=self.sigmas, mixing=self.mixing,
                               clip=(0.0, 1.0), likelihood_scale=options.likelihood_scale,
                               **options.separator_options(self.sigmas, self.mixing,
                                                           self.kind))
    if options.refiner is not None and options.magnitude not in ('refiner', 'auto'):
      raise ParameterError(f'refiner={options.refiner!r} goes with magnitude refiner or auto, '
                           f'not {options.magnitude!r}')
    self.magnitude = (options.magnitude if options.magnitude == 'guide' else
                      mel_to_linear.resolve_method(options.magnitude, self.transform,
                                                   refiner=options.refiner))
    self._mel_cache = KeyedCache(options.mel_cache_dir) if options.mel_cache_dir else None
    self.guide = self._load_guide(options.guide, task) if options.guide else None
    self._step_check: Dict[str, Any] = {}
    # Read once: identity() runs for every chunk (the caches' keys).
    self._fingerprints = tuple(fingerprint_prior_dirs(self.prior_dirs).values())
    self.reset_stats()

  def _load_guide(self, guide: str, task: Optional[str]):
    """The guide separator (a :class:`experiments.separators.Separation`)."""
    from experiments import separators  # pylint: disable=g-import-not-at-top
    if guide == 'basis':
      raise ParameterError('guide=basis: a BASIS separation cannot guide itself; give '
                           'another method (e.g. guide=unet)')
    if guide in separators.methods():          # a name first: ./basis is also a folder
      if task is None:                         # prior folders: the task of these sources
        task = next((t for t, names in separators.TASKS.items() if names == self.sources),
                    None)
      sep = separators.load_separator(guide, task=task, log=None)
    elif os.path.isdir(guide):
      sep = separators.load_separator(model_dir=guide, log=None)
    else:
      raise ParameterError(f'guide={guide!r} is neither a model folder nor a registered '
                           f'method ({", ".join(separators.methods())})')
    if tuple(sep.sources) != self.sources:
      raise ParameterError(f'the guide {guide!r} separates {list(sep.sources)}, BASIS '
                           f'separates {list(self.sources)}: give a guide of the same task')
    return sep

  def reset_stats(self):
    """Starts the counters of a new input (the seam calls it per input); the step
    check, made once per separator, stays in them."""
    self.stats: Dict[str, Any] = {'n_patches': 0, 'separation_s': 0.0, 'inversion_s': 0.0,
                                  'clipped_fraction': 0.0, 'warnings': []}
    if self._step_check:
      self.stats['step_check_eta_L_p90'] = self._step_check['eta_L_p90']
      self.stats['warnings'] += self._step_check['warnings']

  @property
  def chunk_s(self) -> float:
    """30 s chunks: bounded memory (the refiner, the STFTs) at any length."""
    return 30.0

  def identity(self) -> Dict[str, Any]:
    """Everything the estimates depend on besides the input."""
    opts = dataclasses.asdict(self.options)
    opts.pop('mel_cache_dir')
    opts.pop('check_step')
    if opts['level_normalise'] == 'off':     # the keys of separations made before the option
      for name in ('level_normalise', 'level_passes', 'level_start', 'prior_level_db'):
        opts.pop(name)
    elif opts['level_normalise'] == 'given':
      opts['source_levels_db'] = self._given_levels
    if opts['guide'] is None:                # the same for the guide
      opts.pop('guide')
      opts.pop('guide_start_level')
    else:
      opts['guide'] = self.guide.identity()
    return {'method': 'basis', 'sources': list(self.sources),
            'prior_fingerprints': list(self._fingerprints),
            'options': opts, 'precision': self.precision, 'magnitude': self.magnitude,
            'features': self.features.to_dict()}

  def settings(self) -> Dict[str, Any]:
    """The sampler's settings (``separation.json``)."""
    return self.separator.settings()

  def _check_step(self, image: np.ndarray):
    """Warns once when the step size is near the stability limit of a prior's score.

    The check of ``run_basis_sep`` (``experiments.prior_checks.check_step_size``:
    a bfloat16 prior probed in float32), at the mixture's first patches and the
    schedule's active levels.
    """
    patches, _, _ = patching.split_into_patches(
        image, patch_frames=self.features.patch_frames, hop_frames=self.features.patch_frames)
    probe = patches[:STEP_CHECK_PATCHES]
    warnings = []

    def log(line):
      self.log(line)
      if line.startswith('warning'):
        warnings.append(line)

    rows = prior_checks.check_step_size(
        self.priors, self.prior_dirs, [probe] * len(self.priors),
        self.sigmas[self.separator.active_levels], self.separator.step_size,
        n_probe=STEP_CHECK_PATCHES, log=log)
    worst = {name: float(rows[d]['eta_L_p90']) for name, d in zip(self.sources, self.prior_dirs)}
    self._step_check = {'eta_L_p90': worst, 'warnings': warnings}
    self.stats['step_check_eta_L_p90'] = worst
    self.stats['warnings'] += warnings

  def separate(self, mixture: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    """``{source: [n_samples]}`` from a mono mixture at ``self.sample_rate``.

    Raises:
      ParameterError: another rate, a mixture under 0.25 s or silent, a chain
        that diverged.
    """
    if int(sample_rate) != self.sample_rate:
      raise ParameterError(f'BASIS works at the priors\' {self.sample_rate} Hz, got '
                           f'{sample_rate} Hz (the separator seam resamples)')
    mixture = np.asarray(mixture, np.float32)
    seconds = len(mixture) / self.sample_rate
    if seconds < MIN_SECONDS:
      raise ParameterError(f'the mixture is {seconds:.3f} s long; separation needs at least '
                           f'{MIN_SECONDS} s')
    peak = float(np.max(np.abs(mixture)))
    if peak < SILENCE_PEAK:
      raise ParameterError(f'the mixture is silent (peak {peak:.2e}): nothing to separate')
    image = self.transform.waveform_to_unit(mixture).numpy()         # [n_mels, n_frames, 1]
    guide = self._run_guide(mixture) if self.guide is not None else None
    images = self._separate_image(image, guide)
    t1 = time.time()
    if self.magnitude == 'guide':
      waves = guided_waveforms(images, guide, mixture, self.transform,
                               phase=self.options.phase,
                               phase_iterations=self.options.phase_iterations)
    else:
      waves = images_to_waveforms(images, mixture, self.transform, magnitude=self.magnitude,
                                  phase=self.options.phase,
                                  phase_iterations=self.options.phase_iterations,
                                  refiner=self.options.refiner)
    self.stats['inversion_s'] += time.time() - t1
    return dict(zip(self.sources, waves))

  def set_source_levels(self, levels_db: Optional[Sequence[float]]):
    """The sources' levels for ``level_normalise='given'`` (dB, :func:`track_level_db`
    of each true source as the separator sees it), or None to unset.

    Raises:
      ParameterError: another mode, or not one finite level per source.
    """
    if self.options.level_normalise != 'given':
      raise ParameterError(f"set_source_levels needs level_normalise='given', not "
                           f'{self.options.level_normalise!r}')
    if levels_db is not None:
      levels_db = tuple(float(v) for v in levels_db)
      if len(levels_db) != len(self.sources) or not np.all(np.isfinite(levels_db)):
        raise ParameterError(f'give one finite level per source {self.sources}, got '
                             f'{levels_db}')
    self._given_levels = levels_db

  def _apply_levels(self, levels_db: Optional[Sequence[float]]):
    """Shifts each prior to ``prior_level_db`` from its source's level (None: no shift)."""
    min_db, max_db = self.features.db_range
    for k, prior in enumerate(self.separator.priors):
      offset = 0.0 if levels_db is None else (
          (self.options.prior_level_db - levels_db[k]) / (max_db - min_db))
      prior.set_offset(offset)
    self.separator.set_start_shares(
        levels_db if self.options.level_start else None, max_db - min_db)

  def _run_guide(self, mixture: np.ndarray) -> np.ndarray:
    """The guide's estimates of ``mixture``, ``[K, n_samples]``."""
    t0 = time.time()
    est = self.guide.separate(mixture, self.sample_rate)
    self.stats['guide_s'] = self.stats.get('guide_s', 0.0) + time.time() - t0
    return np.stack([np.asarray(est[name], np.float32) for name in self.sources])

  def _guide_images(self, guide: np.ndarray) -> np.ndarray:
    """Guide waveforms ``[K, n_samples]`` -> unit mel images ``[K, n_mels, n_frames, 1]``."""
    return self.transform.waveform_to_unit(guide).numpy()

  def _separate_levelled(self, image: np.ndarray, start: Optional[np.ndarray] = None
                         ) -> np.ndarray:
    """The separation of ``image`` with the level mode of the options (from ``start``,
    the guide's images, when given)."""
    def run(levels):
      if self.options.level_normalise != 'off':
        self._apply_levels(levels)
      images, stats = separate_image(self.separator, image,
                                     patch_frames=self.features.patch_frames,
                                     hop_frames=self.options.hop_frames,
                                     batch_size=self.options.batch_size,
                                     seed=self.options.seed,
                                     chains=self.options.chains, start=start,
                                     log=self.log)
      self._patches_last = int(stats['n_patches'])
      return images

    images = self._run_level_mode(run)
    self.stats['n_patches'] += self._patches_last
    return images

  def _run_level_mode(self, run) -> np.ndarray:
    """``run(levels)`` once (off, given) or ``level_passes`` times (estimate)."""
    mode = self.options.level_normalise
    if mode == 'off':
      return run(None)
    if mode == 'given':
      if self._given_levels is None:
        raise ParameterError("level_normalise='given' needs set_source_levels(...) first")
      levels = self._given_levels
      self.stats['source_levels_db'] = [dict(zip(self.sources, levels))]
      return run(levels)
    images = run(None)                        # estimate: each pass uses the last one's levels
    for _ in range(self.options.level_passes - 1):
      levels = tuple(float(v) for v in track_level_db(images, self.features))
      self.stats.setdefault('source_levels_db', []).append(dict(zip(self.sources, levels)))
      self.log('source levels (dB, power mean): ' + ', '.join(
          f'{n} {v:.1f}' for n, v in zip(self.sources, levels)))
      images = run(levels)
    return images

  def _mel_key(self, image: np.ndarray) -> str:
    ident = self.identity()
    for name in ('phase', 'phase_iterations', 'magnitude', 'refiner'):
      ident['options'].pop(name)
    ident.pop('magnitude')
    return key_of({'basis_mel': ident, 'image': digest(image)})

  def _separate_image(self, image: np.ndarray, guide: Optional[np.ndarray] = None
                      ) -> np.ndarray:
    key = self._mel_key(image)
    if key in _MEL_MEMO:
      _MEL_MEMO.move_to_end(key)
      return _MEL_MEMO[key]
    if self._mel_cache is not None:
      hit = self._mel_cache.get(key)
      if hit is not None:
        return hit['images']
    if self.options.check_step and not self._step_check:
      self._check_step(image)
    start = self._guide_images(guide) if guide is not None else None
    t0 = time.time()
    images = self._separate_levelled(image, start)
    self.stats['separation_s'] += time.time() - t0
    fraction = clipped_fraction(images, self.separator.clip)
    self.stats['clipped_fraction'] = max(self.stats['clipped_fraction'], fraction)
    if fraction > SATURATION_LIMIT:
      text = (f'warning: {100 * fraction:.1f} % of the separated mel values sit at the clip '
              f'bounds: the chains blew up; the result is not a separation. Lower the step '
              f'size (now {self.separator.step_size:g}; --step_size)')
      self.stats['warnings'].append(text)
      self.log(text)
    if self._mel_cache is not None:
      self._mel_cache.put(key, {'images': images})
    _MEL_MEMO[key] = images
    while len(_MEL_MEMO) > _MEL_MEMO_SIZE:
      _MEL_MEMO.popitem(last=False)
    return images


def _resolve(model_dir: str, path: str) -> str:
  return path if os.path.isabs(path) else os.path.normpath(os.path.join(model_dir, path))


def from_model_folder(model_dir: Optional[str], doc: Optional[Dict[str, Any]], *,
                      prior_dirs: Optional[Sequence[str]] = None,
                      names: Optional[Sequence[str]] = None, log=print,
                      **options) -> BasisSeparator:
  """The ``basis`` method's loader (``experiments.separators``).

  Args:
    model_dir: a folder whose ``separator.json`` (``doc``) has ``"priors":
      {source: prior folder}`` (paths relative to the folder), or None when
      ``prior_dirs`` are given.
    doc: its parsed ``separator.json``.
    prior_dirs: use these prior folders instead (one per source).
    names: source names for ``prior_dirs`` (default: the folder names, without
      an ``ncsn_`` prefix).
    log: progress lines.
    **options: :class:`BasisOptions` fields; the folder's ``"options"`` are
      the defaults.

  Raises:
    ParameterError: a folder without ``priors``, unknown options.
  """
  defaults = dict((doc or {}).get('options') or {})
  fields = [f.name for f in dataclasses.fields(BasisOptions)]
  unknown = sorted(set(options) - set(fields))
  if unknown:
    raise ParameterError(f'unknown basis options {unknown} (it takes prior_dirs, names, '
                         f'{", ".join(fields)})')
  if defaults.get('refiner') and model_dir:      # a folder's refiner is relative to it
    defaults['refiner'] = _resolve(model_dir, defaults['refiner'])
  defaults.update({k: v for k, v in options.items() if v is not None})
  if (defaults.get('guide') in (None, 'off') and defaults.get('magnitude') == 'guide'
      and not options.get('magnitude')):
    defaults['magnitude'] = 'auto'               # the folder's guided inversion, unguided
  if defaults.get('magnitude') not in (None, 'refiner', 'auto') and not options.get('refiner'):
    # The folder's refiner serves its refiner / auto magnitude; another magnitude (the
    # folder's or given) leaves it unused.
    defaults.pop('refiner', None)
  opts = BasisOptions(**defaults)
  if prior_dirs:
    dirs = list(prior_dirs)
    if names is None:
      names = []
      for d in dirs:
        base = os.path.basename(os.path.normpath(d))
        names.append(base[5:] if base.startswith('ncsn_') else base)
  else:
    priors = (doc or {}).get('priors')
    if not isinstance(priors, dict) or len(priors) < 2:
      raise ParameterError(f'{model_dir}/separator.json names no priors ("priors": '
                           '{"<source>": "<prior folder>", ...})')
    names = list(names or priors)
    dirs = [_resolve(model_dir, p) for p in priors.values()]
  return BasisSeparator(dirs, list(names), options=opts, log=log,
                        task=(doc or {}).get('task'))


def write_model_folder(out_dir: str, prior_dirs: Dict[str, str], *, task: Optional[str] = None,
                       options: Optional[Dict[str, Any]] = None) -> str:
  """Writes a ``basis`` model folder (``separator.json`` naming the prior folders).

  Prior paths are stored relative to ``out_dir``. Refuses a folder that holds
  anything but a ``separator.json``.

  Raises:
    ParameterError: ``out_dir`` holds other files.
  """
  from common.atomic import write_json_atomic  # pylint: disable=g-import-not-at-top
  if os.path.isdir(out_dir):
    others = sorted(set(os.listdir(out_dir)) - {'separator.json'})
    if others:
      raise ParameterError(f'{out_dir} holds other files ({others[:3]}); choose an empty '
                           'folder for the model')
  os.makedirs(out_dir, exist_ok=True)
  doc = {'method': 'basis', 'sources': list(prior_dirs),
         'priors': {n: os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir))
                    for n, p in prior_dirs.items()}}
  if task:
    doc['task'] = task
  if options:
    doc['options'] = dict(options)
  write_json_atomic(os.path.join(out_dir, 'separator.json'), doc)
  return out_dir
