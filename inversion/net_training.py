"""Training the mel refiner and the Deep Griffin-Lim block with the shared loop.

Data: random crops of wav files (``crop_frames`` STFT frames each) with a
random gain, read once into memory from glob patterns (our rendered
instruments and synthetic speech, ``make data`` / ``make speech-data``).

* Refiner: each crop's power spectrogram goes through one mel filterbank drawn
  per item from ``MEL_BANKS`` (so one refiner serves them all), the clipped
  pseudo-inverse gives the base magnitude, and the loss is the L1 distance of
  the log magnitudes (floor -80 dB below the item's peak) plus the spectral
  convergence ``||V_hat - V|| / ||V||``.
* DeGLI: the clean STFT ``S`` plus complex Gaussian noise at an SNR drawn
  uniformly in ``snr_db`` (the paper's training, -6 .. 12 dB) is the block's
  input ``X``, ``A = |S|``; the network learns the residual ``Z - S``
  (L1 of real and imaginary parts, each item normalised by its RMS amplitude).

:func:`run` trains (resuming from ``workdir``) and exports the EMA weights to
``export_dir``; :func:`evaluate_degli` measures what the block buys on held-out
clips (inconsistency and spectral convergence against GLA / FGLA).
"""

import dataclasses
import glob
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from inversion import nets
from inversion import stft as stft_lib
from pipeline import audio
from pipeline.config import FeatureConfig
from common import checks
from common.errors import ParameterError
from pipeline.transforms import MelTransform, nnls_mel_inverse, nnls_step

# (n_mels, fmin, fmax) of the filterbanks the refiner is trained on.
MEL_BANKS = ((64, 0.0, 8000.0), (80, 0.0, 8000.0), (80, 125.0, 7600.0),
             (96, 125.0, 7600.0), (128, 0.0, 8000.0))


@dataclasses.dataclass(frozen=True)
class NetTrainConfig:
  """One training run of a refiner or a DeGLI block.

  Attributes:
    kind: ``'refiner'`` or ``'degli'``.
    workdir: run folder (checkpoints, TensorBoard, ``metrics.json``); rerun
      to resume.
    train_data: glob patterns of wav files to train on.
    eval_data: glob patterns of held-out wav files (evaluation loss).
    export_dir: folder to export the EMA weights to at the end ('' for none).
    steps: int > 0, training steps.
    batch_size: int > 0, crops per step.
    crop_frames: int > 0, STFT frames per crop.
    learning_rate: float > 0, Adam.
    channels: int > 0, network width (see the network configs).
    base_iterations: int >= 0, NNLS steps of the refiner's base estimate
      (0: the clipped pseudo-inverse).
    stft: the STFT (``n_fft``, ``hop_length``, sample rate) trained for.
    max_files: int > 0, at most this many files per pattern (evenly spaced).
    gain_db: ``(low, high)``, random gain range of the crops, dB.
    snr_db: ``(low, high)``, DeGLI input SNR range, dB.
    seed: int, initialisation and data order.
    eval_every, checkpoint_every, log_every: loop cadence, steps.
    progress: show a progress bar.
  """
  kind: str
  workdir: str
  train_data: Tuple[str, ...]
  eval_data: Tuple[str, ...] = ()
  export_dir: str = ''
  steps: int = 2000
  batch_size: int = 8
  crop_frames: int = 64
  learning_rate: float = 1e-3
  channels: Optional[int] = None
  base_iterations: int = 0
  stft: nets.StftSettings = nets.StftSettings()
  max_files: int = 200
  gain_db: Tuple[float, float] = (-20.0, 0.0)
  snr_db: Tuple[float, float] = (-6.0, 12.0)
  seed: int = 0
  eval_every: int = 500
  checkpoint_every: int = 250
  log_every: int = 50
  progress: bool = True

  def __post_init__(self):
    if self.kind not in nets.KINDS:
      raise ParameterError(f'kind must be one of {list(nets.KINDS)}, got {self.kind!r}')
    checks.check_positive_ints(self, 'steps', 'batch_size', 'crop_frames', 'max_files')
    if not self.learning_rate > 0:
      raise ParameterError(f'--learning_rate must be > 0, got {self.learning_rate!r}')
    if not self.train_data:
      raise ParameterError('--train_data names no wav files (give glob patterns)')
    if os.path.isfile(self.workdir):
      raise ParameterError(f'--workdir={self.workdir} is a file, not a folder')

  def network_config(self):
    extra = {} if self.channels is None else {'channels': self.channels}
    if self.kind == 'refiner':
      extra['base_iterations'] = self.base_iterations
    cls = nets.RefinerConfig if self.kind == 'refiner' else nets.DeGLIConfig
    return cls(stft=self.stft, **extra)

  @property
  def crop_samples(self) -> int:
    return stft_lib.default_length(self.transform(), self.crop_frames)

  def transform(self) -> MelTransform:
    c = self.stft
    return stft_lib.stft_transform(n_fft=c.n_fft, hop_length=c.hop_length,
                                   sample_rate=c.sample_rate, center=c.center)


# ----------------------------------------------------------------------- data
def list_files(patterns: Sequence[str], max_files: int) -> List[str]:
  """The files of each pattern (sorted, at most ``max_files`` evenly spaced).

  Raises:
    ParameterError: naming a pattern that matches nothing.
  """
  out = []
  for p in patterns:
    files = sorted(glob.glob(p))
    if not files:
      raise ParameterError(f'no file matches {p!r}')
    if len(files) > max_files:
      idx = np.linspace(0, len(files) - 1, max_files).round().astype(int)
      files = [files[i] for i in idx]
    out += files
  return out


def load_clips(files: Sequence[str], sample_rate: int, min_samples: int) -> List[np.ndarray]:
  """Waveforms at ``sample_rate``; clips shorter than ``min_samples`` are zero-padded.

  Raises:
    ParameterError: as ``pipeline.audio.load``; a silent clip (all zeros: its
      loss is 0 / 0).
  """
  clips = []
  for f in files:
    y, _ = audio.load(f, sample_rate=sample_rate)
    if not np.any(y):
      raise ParameterError(f'audio file {f!r} is silent (every sample is 0): the networks '
                           'learn nothing from it; leave it out of the data')
    if y.size < min_samples:
      y = np.pad(y, (0, min_samples - y.size))
    clips.append(y.astype(np.float32))
  return clips


def crop_dataset(clips: List[np.ndarray], *, crop_samples: int, batch_size: int,
                 gain_db: Tuple[float, float], seed: int) -> tf.data.Dataset:
  """Endless batches ``[batch_size, crop_samples]`` of random, audible crops."""
  def gen():
    rng = np.random.default_rng(seed)
    while True:
      for _ in range(20):   # skip crops that are (nearly) silent
        y = clips[rng.integers(len(clips))]
        start = rng.integers(0, y.size - crop_samples + 1)
        crop = y[start:start + crop_samples]
        if np.sqrt(np.mean(crop ** 2)) > 1e-3:
          break
      peak = max(float(np.abs(crop).max()), 1e-9)
      gain = 10.0 ** (rng.uniform(*gain_db) / 20.0) / peak * 0.9
      yield (crop * gain).astype(np.float32)
  ds = tf.data.Dataset.from_generator(
      gen, output_signature=tf.TensorSpec([crop_samples], tf.float32))
  return ds.batch(batch_size, drop_remainder=True).prefetch(2)


# ---------------------------------------------------------------------- losses
def mel_banks(stft: nets.StftSettings, banks=MEL_BANKS):
  """Stacked filterbanks ``[K, n_bins, M]``, pseudo-inverses ``[K, M, n_bins]``, NNLS steps ``[K]``.

  ``M`` is the largest band count; smaller banks are zero-padded (a zero band
  adds nothing to the mel and nothing back through the pseudo-inverse).
  """
  m_max = max(b[0] for b in banks)
  fbs, pinvs, steps = [], [], []
  for n_mels, fmin, fmax in banks:
    fmax = min(fmax, stft.sample_rate / 2)
    t = MelTransform(FeatureConfig(
        sample_rate=stft.sample_rate, n_fft=stft.n_fft, hop_length=stft.hop_length,
        n_mels=n_mels, fmin=fmin, fmax=fmax, patch_frames=8,
        patch_samples=7 * stft.hop_length if stft.center else 7 * stft.hop_length + stft.n_fft,
        center=stft.center))
    pad = m_max - n_mels
    fbs.append(np.pad(t.filterbank.numpy(), ((0, 0), (0, pad))))
    pinvs.append(np.pad(t.filterbank_pinv.numpy(), ((0, pad), (0, 0))))
    steps.append(nnls_step(t.filterbank.numpy()))
  return (tf.constant(np.stack(fbs)), tf.constant(np.stack(pinvs)),
          tf.constant(steps, tf.float32))


def base_magnitude(power, fb, pinv, step, n_iter: int):
  """The refiner's base for the mel of ``power [B, T, F]``, one bank per item.

  ``fb [B, F, M]``, ``pinv [B, M, F]``, ``step [B]``; NNLS with ``n_iter``
  steps from the clipped pseudo-inverse (``pipeline.transforms.nnls_mel_inverse``,
  the algorithm ``mel_to_magnitude`` runs), then the square root.
  """
  mel = tf.matmul(power, fb)           # [B, T, M]
  return tf.sqrt(nnls_mel_inverse(mel, fb, pinv, step[:, None, None], n_iter=n_iter))


def refiner_loss(model: nets.Refiner, waveforms, seed, *, transform, fbs, pinvs, steps):
  """``(loss, metrics)`` of the refiner on a batch of crops (one bank per item)."""
  s = transform.stft(waveforms)
  mags = tf.abs(s)
  idx = tf.random.stateless_uniform([tf.shape(mags)[0]], seed, 0, fbs.shape[0], tf.int32)
  base = base_magnitude(tf.square(mags), tf.gather(fbs, idx), tf.gather(pinvs, idx),
                        tf.gather(steps, idx), model.config.base_iterations)
  x, ref = nets.normalised_log(base)
  y = x + model.log_correction(x[..., tf.newaxis])[..., 0]
  target = tf.math.log(tf.maximum(mags / ref, nets.LOG_FLOOR))
  log_l1 = tf.reduce_mean(tf.abs(y - target))
  pred = nets.from_normalised_log(y, ref)
  sc = stft_lib.spectral_convergence(mags, pred, db=False)
  base_sc = stft_lib.spectral_convergence(mags, base, db=False)
  loss = log_l1 + tf.reduce_mean(sc)
  return loss, {'log_l1': log_l1, 'sc': tf.reduce_mean(sc),
                'base_sc': tf.reduce_mean(base_sc)}


def degli_loss(model: nets.DeGLINet, waveforms, seed, *, transform, snr_db):
  """``(loss, metrics)``: the residual ``Z - S`` learnt from noisy ``X = S + N``."""
  s = transform.stft(waveforms)
  amp = tf.abs(s)
  length = tf.shape(waveforms)[-1]
  b = tf.shape(s)[0]
  seeds = tf.random.experimental.stateless_split(seed, 3)
  snr = tf.random.stateless_uniform([b, 1, 1], seeds[0], snr_db[0], snr_db[1])
  power = tf.reduce_mean(tf.square(amp), axis=[-2, -1], keepdims=True)
  sigma = tf.sqrt(power / 10.0 ** (snr / 10.0) / 2.0)
  noise = tf.complex(tf.random.stateless_normal(tf.shape(amp), seeds[1]) * sigma,
                     tf.random.stateless_normal(tf.shape(amp), seeds[2]) * sigma)
  x = s + noise
  y = stft_lib.magnitude_projection(x, amp)
  z = transform.stft(transform.istft(y, length=length))
  r = model(x, y, z, amp)
  ref = tf.sqrt(power) + 1e-12
  target = z - s
  err = lambda d: tf.reduce_mean((tf.abs(tf.math.real(d)) + tf.abs(tf.math.imag(d))) / ref)
  loss = err(r - target)
  return loss, {'z_l1': err(target)}


# ------------------------------------------------------------------------ run
def run(config: NetTrainConfig) -> Dict[str, Any]:
  """Trains (or resumes) and exports; returns the final metrics.

  Raises:
    ParameterError: for bad data patterns, files or a mismatched workdir.
  """
  from training import loop as loop_lib  # pylint: disable=g-import-not-at-top
  from training import optim  # pylint: disable=g-import-not-at-top
  from training import prior_io  # pylint: disable=g-import-not-at-top
  if config.export_dir:   # refused now, not after the training
    prior_io.check_prior_target(config.export_dir, config.kind, workdir=config.workdir,
                                flag='export_dir')
  transform = config.transform()
  sr = config.stft.sample_rate
  train_files = list_files(config.train_data, config.max_files)
  eval_files = list_files(config.eval_data, config.max_files) if config.eval_data else []
  print(f'{config.kind}: {len(train_files)} training files, {len(eval_files)} held-out '
        f'files, crops of {config.crop_frames} frames ({config.crop_samples} samples)',
        flush=True)
  t0 = time.time()
  train_clips = load_clips(train_files, sr, config.crop_samples)
  eval_clips = load_clips(eval_files, sr, config.crop_samples) if eval_files else []
  print(f'read in {time.time() - t0:.1f} s', flush=True)
  train_ds = crop_dataset(train_clips, crop_samples=config.crop_samples,
                          batch_size=config.batch_size, gain_db=config.gain_db,
                          seed=config.seed)
  eval_ds = (crop_dataset(eval_clips, crop_samples=config.crop_samples,
                          batch_size=config.batch_size, gain_db=config.gain_db,
                          seed=config.seed + 1) if eval_clips else None)
  net_config = config.network_config()
  description = {
      'kind': config.kind, 'network': dataclasses.asdict(net_config),
      'train_data': list(config.train_data), 'n_train_files': len(train_files),
      'crop_frames': config.crop_frames, 'batch_size': config.batch_size,
      'gain_db': list(config.gain_db), 'seed': config.seed,
  }
  if config.kind == 'refiner':
    fbs, pinvs, steps = mel_banks(config.stft)
    description['mel_banks'] = [list(b) for b in MEL_BANKS]
    loss = lambda m, w, s: refiner_loss(m, w, s, transform=transform, fbs=fbs, pinvs=pinvs,
                                        steps=steps)
  else:
    description['snr_db'] = list(config.snr_db)
    loss = lambda m, w, s: degli_loss(m, w, s, transform=transform, snr_db=config.snr_db)
  holder = {}

  def task_fn():
    model = nets.build(config.kind, net_config)
    holder['model'] = model
    opt = optim.Adam(model.trainable_variables,
                     optim.OptimizerConfig(learning_rate=config.learning_rate))
    return loop_lib.Task(model=model, optimizer=opt,
                         loss_fn=lambda batch, seed: loss(model, batch, seed),
                         description=description)

  loop_config = loop_lib.LoopConfig(
      workdir=config.workdir, total_steps=config.steps, log_every=config.log_every,
      eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
      eval_batches=4, seed=config.seed, progress=config.progress)
  final = loop_lib.train(task_fn, train_ds, loop_config, eval_data=eval_ds)
  if config.export_dir:
    model = nets.build(config.kind, net_config)
    ckpt, step, elapsed = prior_io.load_ema_weights(config.workdir, model)
    from common import compute  # pylint: disable=g-import-not-at-top
    meta = dict(description, step=step, elapsed_s=elapsed, checkpoint=ckpt,
                command=' '.join(['python'] + [os.path.basename(sys.argv[0])] + sys.argv[1:]),
                cpu=compute.cpu_description(),
                learning_rate=config.learning_rate,
                eval_loss=final.get('eval_loss'), train_loss=final.get('train_loss'),
                num_parameters=final.get('num_parameters'))
    nets.export_net(config.export_dir, config.kind, model, meta, workdir=config.workdir)
    print(f'exported the EMA weights of step {step} to {config.export_dir}', flush=True)
  return final
