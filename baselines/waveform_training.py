"""Training the U-Net and Conv-TasNet on waveform pairs with the shared loop, then export.

Data (``task``):

* ``speech-noise``: the voice + noise layout ``<split>/NNNN/{voice,noise,
  mix_snr_<s>}.wav`` (``pipeline.waveform_pairs``; ``make speech-data``); the
  sources are ``voice`` and the noise as it is in the mixture;
* ``piano-violin``: ``render_music.py``'s ``<split>/{piano,violin,mixture}/
  NNNNN.wav`` (``make data``); the saved sources sum to the mixture.

Training draws random segments (read from disk, ``soundfile`` offsets) of
clips whose every source is audible (at least -30 dB below the mixture), the
mixture being the sum of the sources, at a random level (``gain_db``). The
U-Net learns on ``patch_frames``-frame patches with its L1 loss; Conv-TasNet
on ``segment_s`` segments with ``loss``: permutation-invariant SI-SNR for
voice + noise, fixed-order SI-SNR for piano + violin by default.

Export: each checkpoint the run keeps is scored on whole validation clips
(mean SI-SDR over sources and clips, the best assignment under PIT) with its
EMA weights, and the best one is exported (``baselines.export``) with the
scores, the command, the steps, the time and the CPU; under PIT the export
also records the output order the model gives most often on validation
(``output_order``), so its outputs are named.
"""

import dataclasses
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from baselines import convtasnet, export, separation_losses, unet
from common import checks
from common.errors import ParameterError

TASK_SOURCES = {'speech-noise': ('voice', 'noise'), 'piano-violin': ('piano', 'violin')}
DEFAULT_LOSS = {'speech-noise': 'pit_si_snr', 'piano-violin': 'si_snr'}
FILE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class ModelFamily:
  """What a model trained here supplies (the U-Net and Conv-TasNet below; the synthesis
  encoders of issue 25 register theirs from ``synthesis.training``).

  Attributes:
    name: the ``--model`` value (also the exported method).
    named_config: ``(config_name, **overrides) -> network config`` (a dataclass with
      ``sample_rate``).
    build: ``(network config, seed) -> tf.Module``; ``module(mixture [b, n])`` gives
      the sources ``[b, K, n]`` (the export's validation scoring calls it).
    loss_function: ``(SeparatorTrainConfig, model) -> (train_fn, eval_fn)``, each
      ``(batch, seed) -> (loss, metrics)``.
    segment_samples: ``(SeparatorTrainConfig, network config) -> int``.
    batch_size: the default segments per step.
    loss_name: ``SeparatorTrainConfig -> str`` (``'pit_si_snr'`` scores under PIT).
    n_sources_field: the network config takes ``n_sources`` from the task.
    tasks: the tasks it trains on.
  """
  name: str
  named_config: Callable[..., Any]
  build: Callable[..., Any]
  loss_function: Callable[..., Tuple[Callable, Callable]]
  segment_samples: Callable[..., int]
  batch_size: int
  loss_name: Callable[..., str]
  n_sources_field: bool = True
  tasks: Tuple[str, ...] = ('speech-noise', 'piano-violin')


MODELS: Dict[str, ModelFamily] = {}


def register_model(family: ModelFamily, *, replace: bool = False) -> ModelFamily:
  """Adds a model family (a taken name is an error unless ``replace``)."""
  if family.name in MODELS and not replace:
    raise ParameterError(f'model {family.name!r} is already registered')
  MODELS[family.name] = family
  return family


# --------------------------------------------------------------------------- data
@dataclasses.dataclass(frozen=True)
class Example:
  """One clip: source wavs (mixture = sum of ``gains[k] * sources[k]``)."""
  name: str
  paths: Tuple[str, ...]
  gains: Tuple[float, ...]
  n_samples: int


def list_examples(split_dir: str, task: str, *, limit: Optional[int] = None) -> List[Example]:
  """The clips of a split of ``task``'s layout, checked (headers only).

  Raises:
    ParameterError: an unknown task, a missing folder or file, another
      rate, a stereo file, sources of unequal length (naming the file).
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  if task not in TASK_SOURCES:
    raise ParameterError(f'unknown task {task!r}; tasks: {sorted(TASK_SOURCES)}')
  out = []
  if task == 'speech-noise':
    from pipeline import waveform_pairs as wp  # pylint: disable=g-import-not-at-top
    for folder, snr in wp.check_split(split_dir, sample_rate=FILE_RATE):
      n = sf.info(os.path.join(folder, wp.VOICE_WAV)).frames
      out.append(Example(f'{os.path.basename(folder)}@{snr:g}',
                         (os.path.join(folder, wp.VOICE_WAV), os.path.join(folder, wp.NOISE_WAV)),
                         (1.0, wp.noise_gain(snr)), int(n)))
      if limit and len(out) >= limit:
        break
    return out
  sources = TASK_SOURCES[task]
  for name in sources:
    if not os.path.isdir(os.path.join(split_dir, name)):
      raise ParameterError(f'{split_dir} has no {name}/ folder: not a piano + violin split '
                           '(render_music.py writes <split>/{piano,violin,mixture}/NNNNN.wav)')
  ids = sorted(f[:-4] for f in os.listdir(os.path.join(split_dir, sources[0]))
               if f.endswith('.wav') and not f.startswith('.'))
  if not ids:
    raise ParameterError(f'{split_dir}/{sources[0]} holds no wav files')
  for clip in ids[:limit]:
    paths = tuple(os.path.join(split_dir, s, clip + '.wav') for s in sources)
    lengths = []
    for p in paths:
      if not os.path.isfile(p):
        raise ParameterError(f'{p} is missing (clip {clip})')
      try:
        info = sf.info(p)
      except Exception as e:  # pylint: disable=broad-except  (LibsndfileError / RuntimeError)
        raise ParameterError(f'{p} is not a readable audio file ({e})') from e
      if info.samplerate != FILE_RATE or info.channels != 1:
        raise ParameterError(f'{p}: {info.samplerate} Hz, {info.channels} channels; expected '
                             f'mono at {FILE_RATE} Hz')
      lengths.append(info.frames)
    if len(set(lengths)) != 1:
      raise ParameterError(f'clip {clip} of {split_dir}: sources of unequal length {lengths}')
    out.append(Example(clip, paths, (1.0,) * len(paths), int(lengths[0])))
  return out


def read_example(example: Example, start: int = 0, frames: int = -1) -> np.ndarray:
  """Sources float32 ``[n_sources, frames]`` (zero-padded past the end), gains applied."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  rows = []
  for path, gain in zip(example.paths, example.gains):
    y, _ = sf.read(path, start=start, frames=frames, dtype='float32', always_2d=False)
    rows.append(gain * y)
  n = max(len(r) for r in rows) if frames < 0 else frames
  return np.stack([np.pad(r, (0, n - len(r))) for r in rows]).astype(np.float32)


def _to_rate(x: np.ndarray, rate: int) -> np.ndarray:
  if rate == FILE_RATE:
    return x
  from pipeline import audio  # pylint: disable=g-import-not-at-top
  return audio.resample(x, orig_sr=FILE_RATE, target_sr=rate)


def segments(examples: Sequence[Example], *, segment_samples: int, sample_rate: int,
             seed: int, gain_db: Tuple[float, float] = (-10.0, 10.0),
             min_source_db: float = -30.0):
  """Endless ``(mixture [n], sources [K, n])`` float32 segments at ``sample_rate``.

  ``segment_samples`` is at ``sample_rate``; segments are read at the files'
  16 kHz and resampled when the model's rate differs. A segment is redrawn
  (up to 20 times) while a source is more than ``-min_source_db`` dB below
  the mixture or the mixture is silent.
  """
  rng = np.random.default_rng(seed)
  read_n = int(np.ceil(segment_samples * FILE_RATE / sample_rate))
  while True:
    for _ in range(20):
      ex = examples[int(rng.integers(len(examples)))]
      start = int(rng.integers(0, max(ex.n_samples - read_n, 0) + 1))
      src = read_example(ex, start, read_n)
      mix_e = float(np.sum(np.sum(src, 0) ** 2))
      energies = np.sum(src * src, axis=1)
      if mix_e > 1e-6 * read_n and np.all(energies > mix_e * 10 ** (min_source_db / 10)):
        break
    src = _to_rate(src, sample_rate)[:, :segment_samples]
    peak = float(np.max(np.abs(src.sum(0)))) + 1e-9
    src = src * np.float32(10 ** (rng.uniform(*gain_db) / 20) * 0.5 / peak)
    yield src.sum(0).astype(np.float32), src.astype(np.float32)


def segment_dataset(examples, *, segment_samples: int, sample_rate: int, batch_size: int,
                    seed: int, n_sources: int) -> tf.data.Dataset:
  """Endless batches ``([b, n], [b, K, n])`` of :func:`segments`."""
  ds = tf.data.Dataset.from_generator(
      lambda: segments(examples, segment_samples=segment_samples, sample_rate=sample_rate,
                       seed=seed),
      output_signature=(tf.TensorSpec([segment_samples], tf.float32),
                        tf.TensorSpec([n_sources, segment_samples], tf.float32)))
  return ds.batch(batch_size, drop_remainder=True).prefetch(2)


def fixed_batches(examples, *, segment_samples: int, sample_rate: int, batch_size: int,
                  n_batches: int, seed: int) -> tf.data.Dataset:
  """``n_batches`` batches drawn once (the loop's eval loss: the same data every time)."""
  gen = segments(examples, segment_samples=segment_samples, sample_rate=sample_rate, seed=seed)
  items = [next(gen) for _ in range(batch_size * n_batches)]
  mix = np.stack([m for m, _ in items])
  src = np.stack([s for _, s in items])
  return tf.data.Dataset.from_tensor_slices((mix, src)).batch(batch_size, drop_remainder=True)


# ------------------------------------------------------------------------- config
@dataclasses.dataclass(frozen=True)
class SeparatorTrainConfig:
  """One training run of a separator trained on waveform segments (any registered family).

  Attributes:
    model: a registered model family (``MODELS``: ``'unet'``, ``'convtasnet'``; with
      ``synthesis.training`` imported, ``'synthesis'`` and ``'synthesis-linear'``).
    task: ``'speech-noise'`` or ``'piano-violin'`` (layout, sources, loss).
    workdir: run folder (checkpoints, TensorBoard, ``metrics.json``); rerun to resume.
    train_dir: the training split folder.
    valid_dir: the validation split folder (eval loss, checkpoint choice).
    export_dir: export the best checkpoint here at the end ('' for none).
    config: a named network config of the model (``CONFIGS``).
    network: overrides of the named config's fields.
    loss: Conv-TasNet's loss (``separation_losses.LOSSES``); '' for the
      task's default; the U-Net always uses its L1 loss.
    steps: int > 0, training steps.
    batch_size: int > 0, segments per step.
    segment_s: Conv-TasNet's segment length, seconds (the U-Net uses its
      ``patch_frames``).
    learning_rate: float > 0, Adam.
    grad_clip_norm: clip the global gradient norm (0: none).
    ema_decay: EMA of the weights (used for evaluation and export).
    val_clips: int > 0, whole validation clips scored per kept checkpoint.
    keep_checkpoints, checkpoint_every, eval_every, log_every: loop cadence.
    strategy: ``training.strategy.STRATEGIES``.
    seed: int, initialisation and data order.
    progress: show a progress bar.
  """
  model: str
  task: str
  workdir: str
  train_dir: str
  valid_dir: str
  export_dir: str = ''
  config: str = 'cpu'
  network: Tuple[Tuple[str, Any], ...] = ()
  loss: str = ''
  steps: int = 2000
  batch_size: int = 0
  segment_s: float = 2.0
  learning_rate: float = 1e-3
  grad_clip_norm: float = 5.0
  ema_decay: float = 0.995
  val_clips: int = 24
  keep_checkpoints: int = 6
  checkpoint_every: int = 250
  eval_every: int = 250
  log_every: int = 25
  strategy: str = 'default'
  seed: int = 0
  progress: bool = True

  def __post_init__(self):
    if self.model not in MODELS:
      raise ParameterError(f'--model must be one of {list(MODELS)}, got {self.model!r}')
    if self.task in TASK_SOURCES and self.task not in MODELS[self.model].tasks:
      raise ParameterError(f'--model={self.model} trains on --task '
                           f'{list(MODELS[self.model].tasks)}, got {self.task!r}')
    if self.task not in TASK_SOURCES:
      raise ParameterError(f'--task must be one of {sorted(TASK_SOURCES)}, got {self.task!r}')
    if self.loss and self.loss not in separation_losses.LOSSES:
      raise ParameterError(f'--loss must be one of {list(separation_losses.LOSSES)}, got '
                           f'{self.loss!r}')
    checks.check_positive_ints(self, 'steps', 'val_clips', 'keep_checkpoints', 'checkpoint_every',
                               'eval_every', 'log_every')
    if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or \
        self.batch_size < 0:
      raise ParameterError(f'--batch_size must be a positive int (0: the model\'s default), '
                           f'got {self.batch_size!r}')
    if not self.learning_rate > 0:
      raise ParameterError(f'--learning_rate must be > 0, got {self.learning_rate!r}')
    if not self.segment_s > 0:
      raise ParameterError(f'--segment_s must be > 0, got {self.segment_s!r}')
    if os.path.isfile(self.workdir):
      raise ParameterError(f'--workdir={self.workdir} is a file, not a folder')

  @property
  def sources(self) -> Tuple[str, ...]:
    return TASK_SOURCES[self.task]

  @property
  def loss_name(self) -> str:
    return MODELS[self.model].loss_name(self)

  @property
  def batch(self) -> int:
    return self.batch_size or MODELS[self.model].batch_size

  def network_config(self):
    """The network's config (named config + overrides, ``n_sources`` from the task)."""
    family = MODELS[self.model]
    overrides = dict(self.network)
    if family.n_sources_field:
      overrides['n_sources'] = len(self.sources)
    return family.named_config(self.config, **overrides)

  def segment_samples(self, net) -> int:
    return MODELS[self.model].segment_samples(self, net)


def build_model(model: str, net, seed: int = 0) -> tf.Module:
  return MODELS[model].build(net, seed)


def loss_function(config: SeparatorTrainConfig, model) -> Tuple[Callable, Callable]:
  """``(loss_fn, eval_fn)``, each ``(batch, seed) -> (loss, metrics)``."""
  return MODELS[config.model].loss_function(config, model)


def _baseline_loss_function(config: SeparatorTrainConfig, model) -> Tuple[Callable, Callable]:
  if config.model == 'unet':
    def train_fn(batch, seed):
      return unet.l1_loss(model, batch[0], batch[1], training=True, seed=seed)

    def eval_fn(batch, seed):
      del seed
      loss, metrics = unet.l1_loss(model, batch[0], batch[1], training=False)
      est = model(batch[0])
      metrics['si_snr'] = tf.reduce_mean(separation_losses.si_snr(est, batch[1]))
      return loss, metrics
    return train_fn, eval_fn
  name = config.loss_name

  def fn(batch, seed):
    del seed
    return separation_losses.separation_loss(name, model(batch[0]), batch[1])
  return fn, fn


register_model(ModelFamily(
    name='unet', named_config=unet.named_config,
    build=lambda net, seed=0: unet.UNet(net, seed=seed),
    loss_function=_baseline_loss_function,
    segment_samples=lambda config, net: net.patch_samples, batch_size=16,
    loss_name=lambda config: 'l1'))
register_model(ModelFamily(
    name='convtasnet', named_config=convtasnet.named_config,
    build=lambda net, seed=0: convtasnet.ConvTasNet(net, seed=seed),
    loss_function=_baseline_loss_function,
    segment_samples=lambda config, net: int(round(config.segment_s * net.sample_rate)),
    batch_size=4, loss_name=lambda config: config.loss or DEFAULT_LOSS[config.task]))


# ------------------------------------------------------------------------ scoring
def score_clips(model, examples: Sequence[Example], sample_rate: int, *, pit: bool,
                max_s: float = 12.0) -> Dict[str, Any]:
  """Mean SI-SDR over sources and clips of ``model`` on whole clips (the first ``max_s`` s).

  Returns:
    ``{'si_sdr': dB, 'per_source': [dB]*K, 'order_votes': {perm: count}}``;
    under ``pit`` each clip is scored under its best assignment.
  """
  from evaluation import audio_metrics  # pylint: disable=g-import-not-at-top
  forward = tf.function(lambda x: model(x),
                        input_signature=[tf.TensorSpec([1, None], tf.float32)])
  scores, votes = [], {}
  n_max = int(max_s * FILE_RATE)
  for ex in examples:
    src = read_example(ex, 0, min(ex.n_samples, n_max))
    src = _to_rate(src, sample_rate)
    mix = src.sum(0)
    scale = float(np.sqrt(np.mean(mix * mix))) + 1e-8
    est = forward(tf.constant(mix[None] / scale, tf.float32)).numpy()[0] * scale
    if pit:
      s, perm = audio_metrics.best_permutation(est, src)
      key = ','.join(str(int(p)) for p in perm)
      votes[key] = votes.get(key, 0) + 1
    else:
      s = audio_metrics.si_sdr(est, src)
    scores.append(np.asarray(s, np.float64))
  arr = np.stack(scores)
  arr = np.where(np.isfinite(arr), arr, np.nan)
  return {'si_sdr': float(np.nanmean(arr)), 'per_source': np.nanmean(arr, 0).tolist(),
          'order_votes': votes}


def _checkpoints(workdir: str) -> List[str]:
  state = tf.train.get_checkpoint_state(os.path.join(workdir, 'checkpoints'))
  return list(state.all_model_checkpoint_paths) if state else []


def select_and_export(config: SeparatorTrainConfig, final: Dict[str, Any], *,
                      log=print) -> Dict[str, Any]:
  """Scores every kept checkpoint on validation clips and exports the best.

  Returns:
    The ``training`` record written into the export's ``config.json``.

  Raises:
    ParameterError: no checkpoint in the workdir; a bad export folder.
  """
  from training import prior_io  # pylint: disable=g-import-not-at-top
  from training.ema import EMA  # pylint: disable=g-import-not-at-top
  from common import compute  # pylint: disable=g-import-not-at-top
  export.check_target(config.export_dir)
  net = config.network_config()
  examples = list_examples(config.valid_dir, config.task, limit=config.val_clips)
  paths = _checkpoints(config.workdir)
  if not paths:
    raise ParameterError(f'no checkpoint in {config.workdir}/checkpoints to export')
  pit = config.loss_name == 'pit_si_snr'
  results = []
  for path in paths:
    model = build_model(config.model, net)
    ema = EMA(model.trainable_variables, 0.0)
    step = tf.Variable(0, dtype=tf.int64)
    elapsed = tf.Variable(0.0, dtype=tf.float64)
    prior_io.read_checkpoint(path, partial=True, model=model, ema=ema, step=step,
                             elapsed_s=elapsed)
    ema.copy_to_model()
    t0 = time.time()
    score = score_clips(model, examples, net.sample_rate, pit=pit)
    results.append(dict(score, checkpoint=os.path.basename(path), step=int(step.numpy()),
                        elapsed_s=float(elapsed.numpy()), model=model))
    log(f'{os.path.basename(path)} (step {int(step.numpy())}): validation SI-SDR '
        f'{score["si_sdr"]:.2f} dB over {len(examples)} clips ({time.time() - t0:.1f} s)')
  best = max(results, key=lambda r: r['si_sdr'] if np.isfinite(r['si_sdr']) else -np.inf)
  order = list(range(len(config.sources)))
  if pit and best['order_votes']:
    top = max(best['order_votes'], key=best['order_votes'].get)
    order = [int(v) for v in top.split(',')]
  record = {
      'command': ' '.join(['python', os.path.basename(sys.argv[0])] + sys.argv[1:]),
      'config_name': config.config, 'loss': config.loss_name, 'task': config.task,
      'train_dir': config.train_dir, 'valid_dir': config.valid_dir,
      'batch_size': config.batch, 'learning_rate': config.learning_rate,
      'segment_samples': config.segment_samples(net), 'steps': best['step'],
      'elapsed_s': round(best['elapsed_s'], 1), 'total_steps': final.get('step'),
      'cpu': compute.cpu_description(), 'num_parameters': unet.num_parameters(best['model']),
      'validation': {'clips': len(examples), 'metric': 'mean SI-SDR (dB) over sources and '
                     'clips' + (', best assignment per clip' if pit else ''),
                     'chosen': best['checkpoint'], 'si_sdr': round(best['si_sdr'], 3),
                     'per_source': {n: round(v, 3) for n, v in
                                    zip(config.sources, best['per_source'])},
                     'checkpoints': {r['checkpoint']: round(r['si_sdr'], 3) for r in results}},
      'output_order': order,
      'eval_loss': final.get('eval_loss'), 'train_loss': final.get('train_loss'),
  }
  if pit:
    record['validation']['order_votes'] = best['order_votes']
  export.write(config.export_dir, method=config.model, task=config.task,
               sources=config.sources, sample_rate=net.sample_rate,
               network=dataclasses.asdict(net), model=best['model'], training=record)
  log(f'exported {best["checkpoint"]} (step {best["step"]}, validation SI-SDR '
      f'{best["si_sdr"]:.2f} dB) to {config.export_dir}')
  return record


# ---------------------------------------------------------------------------- run
def run(config: SeparatorTrainConfig, *, export_only: bool = False) -> Dict[str, Any]:
  """Trains (or resumes) and, with ``export_dir``, exports the best checkpoint.

  ``export_only``: skip the training; score the kept checkpoints and export.

  Returns:
    The loop's final metrics (with ``export`` added when exported).

  Raises:
    ParameterError: bad data folders, a mismatched workdir, a bad export folder.
  """
  from training import loop as loop_lib  # pylint: disable=g-import-not-at-top
  from training import optim  # pylint: disable=g-import-not-at-top
  from training.strategy import get_strategy  # pylint: disable=g-import-not-at-top
  if config.export_dir:   # refused now, not after the training
    export.check_target(config.export_dir)
  if export_only:
    if not config.export_dir:
      raise ParameterError('--export_only needs --export_dir')
    from training.loop import read_json  # pylint: disable=g-import-not-at-top
    metrics = os.path.join(config.workdir, 'metrics.json')
    final = read_json(metrics) if os.path.exists(metrics) else {}
    final['export'] = select_and_export(config, final)
    return final
  net = config.network_config()
  n = config.segment_samples(net)
  train_examples = list_examples(config.train_dir, config.task)
  valid_examples = list_examples(config.valid_dir, config.task)
  print(f'{config.model} ({config.config}) on {config.task}: {len(train_examples)} training '
        f'and {len(valid_examples)} validation mixtures, segments of {n} samples at '
        f'{net.sample_rate} Hz, loss {config.loss_name}', flush=True)
  train_ds = segment_dataset(train_examples, segment_samples=n, sample_rate=net.sample_rate,
                             batch_size=config.batch, seed=config.seed,
                             n_sources=len(config.sources))
  eval_ds = fixed_batches(valid_examples, segment_samples=n, sample_rate=net.sample_rate,
                          batch_size=config.batch, n_batches=4, seed=config.seed + 1)
  description = {
      'model': config.model, 'config': config.config, 'network': dataclasses.asdict(net),
      'task': config.task, 'loss': config.loss_name, 'train_dir': config.train_dir,
      'segment_samples': n, 'batch_size': config.batch, 'seed': config.seed}

  def task_fn():
    model = build_model(config.model, net, seed=config.seed)
    opt = optim.Adam(model.trainable_variables,
                     optim.OptimizerConfig(learning_rate=config.learning_rate))
    train_fn, eval_fn = loss_function(config, model)
    return loop_lib.Task(model=model, optimizer=opt, loss_fn=train_fn, eval_fn=eval_fn,
                         description=description)

  loop_config = loop_lib.LoopConfig(
      workdir=config.workdir, total_steps=config.steps, log_every=config.log_every,
      eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
      keep_checkpoints=config.keep_checkpoints, ema_decay=config.ema_decay,
      grad_clip_norm=config.grad_clip_norm or None, eval_batches=4, seed=config.seed,
      progress=config.progress)
  strategy = get_strategy(config.strategy)
  final = loop_lib.train(task_fn, train_ds, loop_config, eval_data=eval_ds, strategy=strategy)
  if config.export_dir and loop_lib.worker_role(strategy)[0]:   # the chief exports
    final['export'] = select_and_export(config, final)
  return final

