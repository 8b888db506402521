"""What the inversion commands do: ``mel_to_wav`` and ``melspec_inversion_basis``.

The absl mains only map flags onto :class:`MelToWavConfig` /
:class:`BasisInversionConfig` and call :func:`run_mel_to_wav` /
:func:`run_basis_inversion`.
"""

import dataclasses
import json
import os
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from inversion import figures
from inversion import mel_to_linear
from inversion import phase
from inversion import stft as stft_lib
from pipeline import audio
from common.atomic import write_json_atomic
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform

# Measured in docs/inversion.md (mel -> wav table): the refiner where it fits the
# STFT (else NNLS) + fast GLA.
DEFAULT_MAGNITUDE = 'auto'
DEFAULT_PHASE = 'fgla'
DEFAULT_PHASE_ITERATIONS = 100


def compiled_phase(method: phase.Method, transform, *, length, options):
  """The method compiled once for these settings: ``fn(mags, mixture=None, n_iter=None)``.

  ``n_iter`` (an int tensor) overrides ``options['n_iter']``, so one function
  serves several iteration counts. DeGLI's network is loaded here, eagerly:
  its variables must not be made inside the trace.
  """
  if method.name == 'degli':
    from inversion import nets  # pylint: disable=g-import-not-at-top
    nets.load_net(options.get('degli'), 'degli', transform=transform)

  @tf.function
  def fn(mags, mixture=None, n_iter=None):
    opts = options if n_iter is None else dict(options, n_iter=n_iter)
    return method(mags, mixture, transform=transform, length=length, **opts)
  return fn


def _check_phase_name(name: str) -> phase.Method:
  return phase.get_method(name)


def quality_scores(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> Dict:
  """PESQ (wide band) and STOI when the PyPI packages ``pesq`` / ``pystoi`` are installed.

  The project's one implementation (:mod:`evaluation.speech_quality`: PESQ reference
  first, other rates resampled to 16 kHz; a pair it cannot score is None with a note).

  Args:
    reference, estimate: float ``[n_samples]`` at ``sample_rate`` Hz.
    sample_rate: int, Hz.

  Returns:
    ``{'pesq': float or None, 'stoi': float or None, 'notes': [str]}``.
  """
  from evaluation import speech_quality  # pylint: disable=g-import-not-at-top
  out = {'pesq': None, 'stoi': None, 'notes': []}
  for key, fn in (('pesq', speech_quality.pesq_wb), ('stoi', speech_quality.stoi)):
    if not speech_quality.available(key.upper()):
      out['notes'].append(f'{key.upper()} not computed: pip install '
                          f'{speech_quality.PACKAGES[key.upper()]}')
      continue
    value, why = fn(reference, estimate, sample_rate)
    if why:
      out['notes'].append(f'{key.upper()} not computed: {why}')
    else:
      out[key] = float(value)
  return out


def _fit_peak(y: np.ndarray):
  """Scales a waveform into [-1, 1] if it overshoots; returns (y, gain)."""
  peak = float(np.abs(y).max()) if y.size else 0.0
  if peak > 1.0:
    return y / peak, 1.0 / peak
  return y, 1.0


def _magnitude(config, method: str, mel, transform):
  """``mel_to_magnitude`` with ``method`` (the config's, resolved) and its option."""
  extra = {}
  if method == 'nnls':
    extra['n_iter'] = config.nnls_iter
  elif method == 'refiner':
    extra['refiner'] = config.refiner
  return mel_to_linear.mel_to_magnitude(mel, method=method, transform=transform, **extra)


# ------------------------------------------------------------------ mel_to_wav
@dataclasses.dataclass(frozen=True)
class MelToWavConfig:
  """wav -> mel -> wav.

  Attributes:
    input: audio file to read (resampled to ``features.sample_rate``).
    output: wav to write.
    figure: PNG of the spectrograms; None for ``output`` with ``.png``, ''
      for none.
    features: the mel features (those the priors are trained on).
    clip: clip the mel power to ``[amin, amax]`` as the dB features do (loud
      signals exceed the reference ``amax``).
    magnitude: ``'pinv'``, ``'nnls'``, ``'refiner'`` or ``'auto'`` (the
      refiner where it fits the STFT, else NNLS).
    nnls_iter: int >= 0, NNLS steps.
    refiner: refiner folder (``'refiner'``); None for the shipped one.
    phase: a registry method that needs no mixture (``'gla'``, ``'fgla'``,
      ``'degli'``).
    degli: DeGLI folder (``'degli'``); None for the shipped one.
    n_iter: int >= 0, phase iterations.
    momentum: float in [0, 1), fast GLA only.
    seed: int, initial random phase.
  """
  input: str
  output: str
  figure: Optional[str] = None
  features: FeatureConfig = FeatureConfig()
  clip: bool = False
  magnitude: str = DEFAULT_MAGNITUDE
  nnls_iter: int = mel_to_linear.DEFAULT_NNLS_ITERATIONS
  refiner: Optional[str] = None
  phase: str = DEFAULT_PHASE
  degli: Optional[str] = None
  n_iter: int = DEFAULT_PHASE_ITERATIONS
  momentum: float = 0.99
  seed: int = 0

  def __post_init__(self):
    if self.magnitude not in mel_to_linear.MAGNITUDE_METHODS:
      raise ParameterError(f'unknown magnitude method {self.magnitude!r}; choose one of '
                           f'{list(mel_to_linear.MAGNITUDE_METHODS)}')
    if _check_phase_name(self.phase).needs_mixture:
      ok = sorted(n for n, m in phase.METHODS.items() if not m.needs_mixture)
      raise ParameterError(
          f'phase method {self.phase!r} needs a mixture; mel_to_wav has none: use one of {ok}')


def run_mel_to_wav(config: MelToWavConfig, *, log=print) -> Dict:
  """Reads ``config.input``, rebuilds it from its mel spectrogram, writes ``config.output``.

  Returns:
    A dict of measures: spectral convergence (dB) of the estimated magnitude
    and of the rebuilt waveform's STFT against the original, PESQ / STOI
    (None when not installed), seconds, settings.

  Raises:
    ParameterError: for an unreadable input or bad settings.
  """
  import time  # pylint: disable=g-import-not-at-top
  t = MelTransform(config.features)
  c = config.features
  y, sr = audio.load(config.input, sample_rate=c.sample_rate)
  length = (len(y) // c.hop_length) * c.hop_length if c.center else len(y)
  if length < c.hop_length:
    raise ParameterError(f'{config.input!r} has {len(y)} samples, too short for '
                         f'hop_length={c.hop_length}')
  y = y[:length]
  start = time.perf_counter()
  target = tf.abs(t.stft(y))
  mel = t.spectrogram_to_mel(t.spectrogram(y))
  if config.clip:
    mel = tf.clip_by_value(mel, c.amin, c.amax)
  magnitude = mel_to_linear.resolve_method(config.magnitude, t, refiner=config.refiner)
  mag = _magnitude(config, magnitude, mel, t)
  method = phase.get_method(config.phase)
  fn = compiled_phase(method, t, length=length, options=dict(
      n_iter=config.n_iter, momentum=config.momentum, seed=config.seed,
      degli=config.degli))
  rec = fn(mag)
  out = rec.waveform.numpy()
  seconds = time.perf_counter() - start
  results = {
      'input': config.input, 'output': config.output, 'seconds': seconds,
      'magnitude': magnitude, 'phase': config.phase, 'n_iter': config.n_iter,
      'magnitude_spectral_convergence_db': float(stft_lib.spectral_convergence(target, mag)),
      'spectral_convergence_db': float(stft_lib.spectral_convergence(target, t.stft(out))),
  }
  results.update(quality_scores(y, out, c.sample_rate))
  written, gain = _fit_peak(out)
  audio.write_wav(config.output, written, c.sample_rate)
  figure = config.figure if config.figure is not None else os.path.splitext(config.output)[0] + '.png'
  if figure:
    figures.spectrogram_figure(figure, {
        f'original ({os.path.basename(config.input)})': y,
        f'from {c.n_mels} mel bands: {results["magnitude"]} + {config.phase} '
        f'({config.n_iter} it.), SC {results["spectral_convergence_db"]:.1f} dB': out}, t)
  results['figure'] = figure or None
  log(f"spectral convergence {results['spectral_convergence_db']:.2f} dB (magnitude "
      f"alone {results['magnitude_spectral_convergence_db']:.2f} dB)" +
      (f", PESQ {results['pesq']:.2f}" if results['pesq'] is not None else '') +
      (f", STOI {results['stoi']:.3f}" if results['stoi'] is not None else '') +
      f"; {seconds:.1f} s; wrote {config.output}" + (f' and {figure}' if figure else '') +
      (f' (scaled by {gain:.3f} to fit [-1, 1])' if gain != 1.0 else ''))
  for note in results['notes']:
    log(note)
  return results


# ------------------------------------------------------- BASIS mel -> wavs
@dataclasses.dataclass(frozen=True)
class BasisInversionConfig:
  """BASIS mel estimates (+ the mixture audio) -> one wav per source.

  Attributes:
    basis_dir: run_basis_sep's mel output folder (``estimates.npy``
      ``[K, n, n_mels, patch_frames, 1]`` in [0, 1], ``features.json``;
      ``mixtures.npy`` is used for a consistency check).
    output_dir: folder for the wavs, ``spectrograms.png`` and ``inversion.json``.
    mixture_wav: the mixture audio whose consecutive ``patch_samples``
      windows are the separated patches; needed by every phase method that
      uses the mixture (all but ``gla`` / ``fgla``).
    magnitude: ``'pinv'``, ``'nnls'``, ``'refiner'`` or ``'auto'``.
    nnls_iter: int >= 0.
    refiner: refiner folder; None for the shipped one.
    phase: a name of ``inversion.phase.METHODS``.
    degli: DeGLI folder (``'degli'``); None for the shipped one.
    n_iter, lam, weights, momentum: options of the phase method (None: its
      default).
    stitch: write one wav per source for the whole signal (patches joined
      end to end); otherwise one wav per source and patch.
    batch_size: int > 0, patches inverted per compiled call.
  """
  basis_dir: str
  output_dir: str
  mixture_wav: Optional[str] = None
  magnitude: str = DEFAULT_MAGNITUDE
  nnls_iter: int = mel_to_linear.DEFAULT_NNLS_ITERATIONS
  refiner: Optional[str] = None
  phase: str = 'wiener'
  degli: Optional[str] = None
  n_iter: Optional[int] = None
  lam: Optional[float] = None
  weights: Optional[str] = None
  momentum: Optional[float] = None
  stitch: bool = True
  batch_size: int = 16

  def __post_init__(self):
    if self.magnitude not in mel_to_linear.MAGNITUDE_METHODS:
      raise ParameterError(f'unknown magnitude method {self.magnitude!r}; choose one of '
                           f'{list(mel_to_linear.MAGNITUDE_METHODS)}')
    m = _check_phase_name(self.phase)
    if m.needs_mixture and not self.mixture_wav:
      raise ParameterError(
          f'phase method {self.phase!r} needs the mixture audio (--mixture_wav); '
          "without it use 'gla' or 'fgla'")
    if int(self.batch_size) != self.batch_size or self.batch_size <= 0:
      raise ParameterError(f'batch_size must be a positive int, got {self.batch_size!r}')


def load_basis_output(basis_dir: str):
  """Reads ``estimates.npy`` and ``features.json`` of a BASIS mel run.

  Returns:
    ``(estimates [K, n, n_mels, patch_frames, 1] float32, FeatureConfig,
    mixtures [n, n_mels, patch_frames, 1] or None)``.

  Raises:
    ParameterError: for a missing file or shapes that do not fit the features.
  """
  paths = {k: os.path.join(basis_dir, k) for k in ('estimates.npy', 'features.json')}
  for name, p in paths.items():
    if not os.path.exists(p):
      raise ParameterError(f'{basis_dir!r} is not a BASIS mel output folder: {name} is '
                           'missing (run_basis_sep.py --dataset=melspec writes it)')
  with open(paths['features.json'], encoding='utf-8') as f:
    features = FeatureConfig.from_dict(json.load(f))
  est = np.load(paths['estimates.npy']).astype(np.float32)
  want = features.patch_shape
  if est.ndim != 5 or tuple(est.shape[2:]) != want:
    raise ParameterError(
        f'estimates.npy in {basis_dir!r} has shape {est.shape}; expected '
        f'[n_sources, n_patches, {", ".join(map(str, want))}] for its features.json')
  mix_path = os.path.join(basis_dir, 'mixtures.npy')
  mixtures = np.load(mix_path).astype(np.float32) if os.path.exists(mix_path) else None
  if mixtures is not None and mixtures.shape != est.shape[1:]:
    raise ParameterError(f'mixtures.npy has shape {mixtures.shape}, estimates.npy '
                         f'{est.shape}: not from the same run')
  return est, features, mixtures


def run_basis_inversion(config: BasisInversionConfig, *, log=print) -> Dict:
  """Turns BASIS mel estimates into wavs; returns a summary (also in inversion.json).

  Raises:
    ParameterError: for a bad folder, a mixture with fewer windows than
      patches, or bad settings.
  """
  est, features, mixtures = load_basis_output(config.basis_dir)
  t = MelTransform(features)
  c = features
  n_sources, n_patches = est.shape[:2]
  length = c.patch_samples
  mix_windows = None
  summary = {'basis_dir': config.basis_dir, 'phase': config.phase,
             'magnitude': mel_to_linear.resolve_method(config.magnitude, t,
                                                       refiner=config.refiner),
             'n_sources': int(n_sources),
             'n_patches': int(n_patches)}
  if config.mixture_wav:
    y, _ = audio.load(config.mixture_wav, sample_rate=c.sample_rate)
    windows = t.frame_waveform(y, pad_end=True).numpy()
    if len(windows) < n_patches:
      raise ParameterError(
          f'{config.mixture_wav!r} has {len(windows)} windows of {c.patch_samples} samples '
          f'but {config.basis_dir!r} holds {n_patches} patches')
    mix_windows = windows[:n_patches]
    if mixtures is not None:  # how far the given audio is from the separated mixture
      unit = t.waveform_to_unit(mix_windows).numpy()
      err = float(np.mean(np.abs(unit - mixtures)) * (t.max_db - t.min_db))
      summary['mixture_wav_vs_mixtures_npy_db'] = err
      if err > 3.0:
        log(f'warning: {config.mixture_wav!r} differs from mixtures.npy by {err:.1f} dB on '
            'average; is it the mixture that was separated?')
  method = phase.get_method(config.phase)
  options = dict(n_iter=config.n_iter, lam=config.lam, weights=config.weights,
                 momentum=config.momentum, degli=config.degli)
  fn = compiled_phase(method, t, length=length, options=options)
  waves = np.zeros((n_sources, n_patches, length), np.float32)
  for s in range(0, n_patches, config.batch_size):
    e = slice(s, min(s + config.batch_size, n_patches))
    mel = t.patches_to_mel(est[:, e])                        # [K, b, frames, n_mels]
    mag = _magnitude(config, summary['magnitude'], mel, t)
    x = t.stft(mix_windows[e]) if mix_windows is not None else None
    rec = fn(mag, x) if x is not None else fn(mag)
    waves[:, e] = rec.waveform.numpy()
  os.makedirs(config.output_dir, exist_ok=True)
  written = []
  peak = max(1.0, float(np.abs(waves).max()))
  if config.stitch:
    for k in range(n_sources):
      path = os.path.join(config.output_dir, f'source_{k}.wav')
      audio.write_wav(path, waves[k].reshape(-1) / peak, c.sample_rate)
      written.append(path)
    if mix_windows is not None:
      path = os.path.join(config.output_dir, 'mixture.wav')
      audio.write_wav(path, mix_windows.reshape(-1) / max(1.0, np.abs(mix_windows).max()),
                      c.sample_rate)
      written.append(path)
  else:
    for k in range(n_sources):
      for i in range(n_patches):
        path = os.path.join(config.output_dir, f'source_{k}', f'patch_{i:04d}.wav')
        audio.write_wav(path, waves[k, i] / peak, c.sample_rate)
        written.append(path)
  clips = {}
  if mix_windows is not None:
    clips['mixture'] = mix_windows.reshape(-1)
  for k in range(n_sources):
    clips[f'source {k}: {summary["magnitude"]} + {config.phase}'] = waves[k].reshape(-1)
  fig = os.path.join(config.output_dir, 'spectrograms.png')
  figures.spectrogram_figure(fig, clips, t)
  summary.update(files=[os.path.relpath(p, config.output_dir) for p in written],
                 figure='spectrograms.png', gain=1.0 / peak)
  write_json_atomic(os.path.join(config.output_dir, 'inversion.json'), summary)
  log(f'wrote {len(written)} wav(s) and spectrograms.png to {config.output_dir} '
      f'({n_sources} sources x {n_patches} patches, {summary["magnitude"]} + {config.phase})')
  return summary
