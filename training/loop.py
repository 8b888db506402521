"""The one training loop every trainer uses.

A model supplies a :class:`Task`: its variables, an optimiser and
``loss_fn(batch, seed) -> (loss, metrics)``. The loop owns everything else:
the ``tf.distribute`` strategy, checkpoints and resume, the exponential moving
average of the weights, TensorBoard scalars and images, the progress bar,
evaluation every N steps, sample grids and ``metrics.json``.

``seed`` is an int32 ``[2]`` stateless seed, fresh for every step and replica
(derived from the run seed, the step and the replica id), so runs are
reproducible, resume draws the same noise it would have drawn, and replicas
never share a noise draw.

Resume: rerunning the same command with the same ``workdir`` restores the
newest checkpoint (model, optimiser slots, EMA, step, elapsed time) and goes
on from its step. Checkpoints are written every ``checkpoint_every`` steps,
every ``checkpoint_every_secs`` seconds, at the end, and when the process is
interrupted (Ctrl-C or SIGTERM), so an interruption loses at most the steps
since the last write. The input pipeline is not checkpointed (a shuffle
buffer of images would be larger than the model): after a resume, the data
order is reshuffled with a seed that depends on the step.

What a resume compares: ``config.json`` (the task's description: model and
data) must match, or the run is refused (:func:`check_description`); it is
written only when a run saves its first checkpoint, so a run that fails
before that never locks the workdir to its settings. The
optimiser's settings (``Task.optimizer.settings()``: learning rate and its
warm-up, betas, ...) and the loop's ``grad_clip_norm`` and ``ema_decay`` are
recorded in ``optimizer.json``; a resume with other values is accepted --
lowering the learning rate to fine-tune is deliberate -- but prints a warning
line naming each old and new value and appends the change, with its step, to
``settings_changes`` in ``metrics.json`` (:func:`record_settings`). A run
folder from before ``optimizer.json`` resumes and gets one.

A record damaged inside a TFRecord shard (``tf.data``'s ``DataLossError``,
during a train step or an evaluation) becomes a ParameterError naming the
shard and the record (``pipeline.tfrecords.naming_damaged_records``).
"""

import dataclasses
import json
import os
import signal
import time
import shutil
from typing import Any, Callable, Dict, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from pipeline import tfrecords
from common import atomic
from common.atomic import json_default, write_json_atomic
from common.checks import check_seed
from common.errors import ParameterError
from common import figures as image_utils
from training.ema import EMA


@dataclasses.dataclass
class LoopConfig:
  """Cadence and bookkeeping of a training run.

  Attributes:
    workdir: folder for checkpoints (``checkpoints/``), TensorBoard logs
      (``tb/``), sample grids (``samples/``), ``config.json`` and
      ``metrics.json``.
    total_steps: int > 0, train until the step counter reaches this.
    log_every: steps between TensorBoard scalars / progress updates.
    eval_every: steps between evaluations (eval loss + sample grid).
    checkpoint_every: steps between checkpoints.
    checkpoint_every_secs: also checkpoint when this much time has passed.
    keep_checkpoints: how many checkpoints to keep.
    ema_decay: float in [0, 1); the EMA weights are used for evaluation and
      sampling and are what a prior loads.
    grad_clip_norm: clip gradients to this global norm (None: no clipping).
    eval_batches: batches of the eval set per evaluation.
    seed: run seed, an int in ``[0, 2**31 - 1]`` (``common.checks.check_seed``:
      the stateless seeds are int32, which would alias larger values).
    progress: show a progress bar.
  """

  workdir: str
  total_steps: int = 10000
  log_every: int = 50
  eval_every: int = 1000
  checkpoint_every: int = 500
  checkpoint_every_secs: float = 600.0
  keep_checkpoints: int = 3
  ema_decay: float = 0.999
  grad_clip_norm: Optional[float] = None
  eval_batches: int = 8
  seed: int = 0
  progress: bool = True

  def __post_init__(self):
    self.seed = check_seed(self.seed, name='seed')
    if self.total_steps <= 0:
      raise ParameterError(f'total_steps must be > 0, got {self.total_steps!r}')
    if not 0.0 <= self.ema_decay < 1.0:
      raise ParameterError(f'ema_decay must be in [0, 1), got {self.ema_decay!r}')
    for name in ('log_every', 'eval_every', 'checkpoint_every'):
      if getattr(self, name) <= 0:
        raise ParameterError(f'{name} must be > 0, got {getattr(self, name)!r}')


@dataclasses.dataclass
class Task:
  """What a model supplies to the loop.

  Attributes:
    model: the trained ``tf.Module`` / Keras model (its
      ``trainable_variables`` are optimised).
    optimizer: a :class:`training.optim.Adam` (or any object with
      ``apply_gradients(pairs)``, ``learning_rate()`` and checkpointable
      state, and optionally ``settings() -> dict`` for ``optimizer.json``);
      it receives gradients summed over replicas.
    loss_fn: ``(batch, seed) -> (loss, metrics)``; ``loss`` a float32 scalar,
      ``metrics`` a dict of float32 scalars.
    eval_fn: like ``loss_fn`` for evaluation batches; defaults to ``loss_fn``.
    sample_fn: optional ``(seed: int) -> images`` ``[n, height, width,
      channels]`` in [0, 1], called with the EMA weights at each evaluation;
      the grid is saved as PNG and sent to TensorBoard.
    colormap: colour map for single-channel sample grids (``None``: grey;
      ``'magma'`` for spectrogram patches, low bands drawn at the bottom).
    description: json-able dict describing the model and data (architecture,
      schedule, features); saved as ``config.json`` and compared on resume.
    trackables: extra objects to checkpoint (e.g. data-dependent init flags).
    initial_step: step counter and elapsed seconds to start from when the
      workdir holds no checkpoint (a run continued from exported weights).
  """

  model: Any
  optimizer: Any
  loss_fn: Callable
  eval_fn: Optional[Callable] = None
  sample_fn: Optional[Callable] = None
  colormap: Optional[str] = None
  description: Dict[str, Any] = dataclasses.field(default_factory=dict)
  trackables: Dict[str, Any] = dataclasses.field(default_factory=dict)
  initial_step: int = 0
  initial_elapsed_s: float = 0.0


def _changes(a, b, prefix='') -> Dict[str, Tuple[Any, Any]]:
  """``{path: (a's value, b's value)}`` where two json-like values differ."""
  if isinstance(a, dict) and isinstance(b, dict):
    out = {}
    for k in sorted(set(a) | set(b)):
      out.update(_changes(a.get(k), b.get(k), f'{prefix}{k}.'))
    return out
  if isinstance(a, float) and isinstance(b, float) and np.isclose(a, b, rtol=1e-9):
    return {}
  return {} if a == b else {prefix[:-1]: (a, b)}


def _diff(a, b):
  """Paths where two json-like values differ, as ``'path: saved a, now b'``."""
  return [f'{k}: saved {old!r}, now {new!r}' for k, (old, new) in _changes(a, b).items()]


def read_json(path: str) -> Any:
  """The json in ``path``; a ParameterError naming the file when it is invalid."""
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ParameterError(
        f'{path} is not valid json ({e}); fix or delete it (a run folder keeps its '
        'checkpoints without it)') from e


def check_description(workdir: str, description: Dict[str, Any]) -> Optional[Dict[str, Any]]:
  """Checks ``description`` against the ``config.json`` of a previous run in ``workdir``.

  Nothing is written here: the caller writes the returned description with
  :func:`write_description` once the run has started (its checkpoint
  restored and its first checkpoint saved), so a run that fails before that
  -- a checkpoint that does not fit the model, a bad setting -- leaves no
  ``config.json`` that would refuse the right settings next time.

  Returns:
    The description to record (json-normalised), or None when ``config.json``
    already holds it.

  Raises:
    ParameterError: if the workdir holds a run of a different model or data.
  """
  path = os.path.join(workdir, 'config.json')
  description = json.loads(json.dumps(description, default=json_default))
  checkpoints = os.path.join(workdir, 'checkpoints')
  if not os.path.exists(path) or not tf.train.latest_checkpoint(checkpoints):
    # No record, or one of a run that never reached a checkpoint (it failed at
    # step 0): nothing of it is kept, so it does not lock the workdir.
    return description
  diffs = _diff(read_json(path), description)
  if diffs:
    raise ParameterError(
        f'{workdir} holds a run of a different configuration; use a new '
        '--workdir or the same settings. Differences: ' + '; '.join(diffs))
  return None


def write_description(workdir: str, description: Dict[str, Any]):
  """Writes ``config.json`` (what :func:`check_description` returned)."""
  write_json_atomic(os.path.join(workdir, 'config.json'), description)


SETTINGS_FILE = 'optimizer.json'


def training_settings(task: 'Task', config: 'LoopConfig') -> Dict[str, Any]:
  """What ``optimizer.json`` records: the optimiser's ``settings()`` (None
  when it has none), ``grad_clip_norm`` and ``ema_decay``."""
  settings = getattr(task.optimizer, 'settings', None)
  return json.loads(json.dumps(
      {'optimizer': settings() if callable(settings) else None,
       'grad_clip_norm': config.grad_clip_norm, 'ema_decay': config.ema_decay},
      default=json_default))


def record_settings(workdir: str, settings: Dict[str, Any], *, resumed: bool, step: int,
                    log: Optional[Callable[[str], None]] = None) -> Optional[Dict[str, Any]]:
  """Writes ``optimizer.json``; on a resume, warns about settings that changed.

  Args:
    workdir: the run folder.
    settings: :func:`training_settings` of this run.
    resumed: a checkpoint was restored (otherwise the file is just written).
    step: the step the run resumes from, for the record.
    log: callable for the warning (default: print).

  Returns:
    ``{'step': step, 'changes': {path: {'saved': old, 'now': new}}}`` when a
    resume changes a setting (the caller adds it to ``metrics.json``), else
    None. A run folder without ``optimizer.json`` (made before it existed)
    is accepted and gets one.

  Raises:
    ParameterError: if ``optimizer.json`` is not valid json.
  """
  path = os.path.join(workdir, SETTINGS_FILE)
  change = None
  if resumed and os.path.exists(path):
    saved = read_json(path)
    changes = _changes(saved, settings)
    if changes:
      change = {'step': int(step),
                'changes': {k: {'saved': old, 'now': new} for k, (old, new) in changes.items()}}
      listed = '; '.join(f'{k} {old!r} -> {new!r}' for k, (old, new) in changes.items())
      message = (f'warning: {workdir} resumes at step {step} with other settings than it '
                 f'was trained with: {listed}; continuing with the new ones (recorded in '
                 'metrics.json settings_changes)')
      if log is None:
        print(message, flush=True)
      else:
        log(message)
    else:
      return None
  write_json_atomic(path, settings)
  return change


def worker_role(strategy: tf.distribute.Strategy) -> Tuple[bool, str]:
  """``(is_chief, name)`` of this process in a multi-worker run.

  Under ``MultiWorkerMirroredStrategy`` every worker runs the same loop; the
  chief (task ``chief``, or ``worker`` 0 when the cluster has no chief) owns
  the workdir: checkpoints, ``metrics.json``, TensorBoard and sample grids.
  The other workers save their checkpoints to ``workdir/workers/<name>/``
  (deleted when they finish) and resume from the chief's. Any other strategy
  has a single process, the chief.
  """
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True, 'chief'
  resolver = strategy.cluster_resolver
  task_type, task_id = resolver.task_type, resolver.task_id
  name = f'{task_type}_{task_id}'
  if task_type in (None, 'chief'):
    return True, name
  has_chief = 'chief' in resolver.cluster_spec().as_dict()
  return (task_type == 'worker' and task_id == 0 and not has_chief), name


def restore_or_initialize(manager: tf.train.CheckpointManager, checkpoint,
                          workdir: str, latest: Optional[str] = None,
                          log: Optional[Callable[[str], None]] = None) -> Optional[str]:
  """Restores the newest intact checkpoint; clear errors for damaged/mismatched ones.

  When the newest checkpoint is damaged (a truncated or missing ``.data`` or
  ``.index`` file), the older ones the manager keeps are tried, newest first,
  and ``log`` says which one was skipped and which one is used.

  Args:
    manager: the run's ``tf.train.CheckpointManager``.
    checkpoint: the ``tf.train.Checkpoint`` to restore into.
    workdir: the run folder, for messages.
    latest: restore this checkpoint path instead of the manager's newest
      (a non-chief worker resumes from the chief's); no fallback then.
    log: callable for the fallback message (default: print).

  Returns:
    The path restored, or None when there is no checkpoint.

  Raises:
    ParameterError: when no checkpoint can be restored (naming each one tried
      and why).
  """
  candidates = [latest] if latest else list(reversed(manager.checkpoints))
  if not candidates and manager.latest_checkpoint:
    candidates = [manager.latest_checkpoint]
  if not candidates:
    return None
  failures = []
  for path in candidates:
    try:
      status = checkpoint.restore(path)
      status.assert_existing_objects_matched()
    # A truncated .data file surfaces as IndexError ("Read less bytes than
    # requested") from the checkpoint reader, not as an OpError.
    except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
      failures.append((path, e))
      continue
    if failures:
      (log or print)(f'warning: checkpoint {failures[0][0]} in {workdir} is damaged '
          f'({type(failures[0][1]).__name__}); resumed from the older intact {path}')
    return path
  path, e = failures[0]
  older = (f'; the {len(failures) - 1} older one(s) failed too' if len(failures) > 1 else '')
  raise ParameterError(
      f'cannot restore checkpoint {path} in {workdir}: it is damaged or '
      f'belongs to a different model ({type(e).__name__}: {str(e)[:500]}){older}') from e


class _Interrupt:
  """Turns SIGTERM into KeyboardInterrupt so that the loop can checkpoint."""

  def __enter__(self):
    self._old = None
    try:
      self._old = signal.signal(signal.SIGTERM, self._handler)
    except ValueError:  # not in the main thread
      pass
    return self

  @staticmethod
  def _handler(signum, frame):
    del signum, frame
    raise KeyboardInterrupt('SIGTERM')

  def __exit__(self, *exc):
    if self._old is not None:
      signal.signal(signal.SIGTERM, self._old)
    return False


@dataclasses.dataclass
class _RunState:
  """What one call of :func:`train` works on, once built and resumed.

  Attributes:
    config: the :class:`LoopConfig`.
    strategy: the ``tf.distribute.Strategy``.
    task: the :class:`Task`, built in the strategy's scope.
    variables: the task model's trainable variables.
    step, elapsed: the checkpointed step counter (int64) and seconds (float64).
    ema: the :class:`training.ema.EMA` of ``variables``.
    checkpoint, manager: the ``tf.train.Checkpoint`` and its manager.
    is_chief, worker_name: :func:`worker_role`.
    start_step: the step restored (or the task's initial step).
    settings_change: :func:`record_settings`'s record of a changed setting.
    pending_description: the ``config.json`` still to write (chief), once
      this run saves its first checkpoint or finishes.
  """

  config: LoopConfig
  strategy: tf.distribute.Strategy
  task: Task
  variables: Any
  step: tf.Variable
  elapsed: tf.Variable
  ema: EMA
  checkpoint: tf.train.Checkpoint
  manager: tf.train.CheckpointManager
  is_chief: bool
  worker_name: str
  start_step: int
  settings_change: Optional[Dict[str, Any]] = None
  pending_description: Optional[Dict[str, Any]] = None

  def record_description(self):
    """Writes ``config.json`` if this run has not yet (chief only)."""
    if self.is_chief and self.pending_description is not None:
      write_description(self.config.workdir, self.pending_description)
      self.pending_description = None


def _start(task_fn: Callable[[], Task], config: LoopConfig,
           strategy: tf.distribute.Strategy) -> _RunState:
  """Builds the task and its bookkeeping variables, checks the workdir, resumes.

  Raises:
    ParameterError: as :func:`check_description`, :func:`restore_or_initialize`
      and :func:`record_settings`.
  """
  workdir = config.workdir
  os.makedirs(workdir, exist_ok=True)
  with strategy.scope():
    task = task_fn()
    variables = task.model.trainable_variables
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step',
                       aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='elapsed_s',
                          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
    ema = EMA(variables, config.ema_decay)
  is_chief, worker_name = worker_role(strategy)
  chief_ckpt_dir = os.path.join(workdir, 'checkpoints')
  pending_description = None
  if is_chief:
    pending_description = check_description(workdir, task.description)
    ckpt_dir, resume_from = chief_ckpt_dir, None
  else:   # every worker saves (as TF asks), only the chief's copy is kept
    ckpt_dir = os.path.join(workdir, 'workers', worker_name, 'checkpoints')
    resume_from = tf.train.latest_checkpoint(chief_ckpt_dir)
  checkpoint = tf.train.Checkpoint(step=step, elapsed_s=elapsed, model=task.model,
                                   optimizer=task.optimizer, ema=ema, **task.trackables)
  manager = tf.train.CheckpointManager(checkpoint, ckpt_dir,
                                       max_to_keep=config.keep_checkpoints)
  restored = restore_or_initialize(manager, checkpoint, workdir, latest=resume_from)
  if not restored and task.initial_step:
    step.assign(task.initial_step)
    elapsed.assign(task.initial_elapsed_s)
  start_step = int(step.numpy())
  if restored:
    logging.info('resumed from %s at step %d', restored, start_step)
    print(f'resumed from {restored} at step {start_step}', flush=True)
  if start_step >= config.total_steps:
    print(f'warning: {workdir} is already at step {start_step} >= total_steps '
          f'{config.total_steps}: nothing to train (raise --steps to continue)', flush=True)
  settings_change = None
  if is_chief:
    settings_change = record_settings(workdir, training_settings(task, config),
                                      resumed=bool(restored), step=start_step)
  return _RunState(config=config, strategy=strategy, task=task, variables=variables, step=step,
              elapsed=elapsed, ema=ema, checkpoint=checkpoint, manager=manager,
              is_chief=is_chief, worker_name=worker_name, start_step=start_step,
              settings_change=settings_change, pending_description=pending_description)


def _make_train_step(run: _RunState) -> Callable:
  """The compiled train step of ``run``.

  Returns:
    ``train_step(iterator) -> (loss, grad_norm, metrics)``, a ``tf.function``:
    takes the next global batch of a distributed iterator, runs ``loss_fn``
    on every replica with its stateless seed ``fold_in([seed, step],
    replica)``, sums the gradients over replicas, clips them (if
    ``grad_clip_norm``), applies the optimiser, updates the EMA and advances
    the step counter. Loss, gradient norm and metrics are means over
    replicas.
  """
  task, config, strategy, variables = run.task, run.config, run.strategy, run.variables
  replicas = strategy.num_replicas_in_sync
  step, ema = run.step, run.ema
  seed0 = tf.constant(config.seed, tf.int32)

  @tf.function
  def train_step(iterator):
    batch = next(iterator)

    def step_fn(batch):
      ctx = tf.distribute.get_replica_context()
      seed = tf.random.experimental.stateless_fold_in(
          tf.stack([seed0, tf.cast(step, tf.int32)]), ctx.replica_id_in_sync_group)
      with tf.GradientTape() as tape:
        loss, metrics = task.loss_fn(batch, seed)
        scaled = loss / replicas
      grads = tape.gradient(scaled, variables)
      grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
      if config.grad_clip_norm:
        grads, gnorm = tf.clip_by_global_norm(grads, config.grad_clip_norm)
      else:
        gnorm = tf.linalg.global_norm(grads)
      task.optimizer.apply_gradients(zip(grads, variables))
      ema.update()
      return loss, gnorm, metrics

    loss, gnorm, metrics = strategy.run(step_fn, args=(batch,))
    mean = lambda v: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
    step.assign_add(1)
    return mean(loss), mean(gnorm), {k: mean(v) for k, v in metrics.items()}

  return train_step


def _make_evaluate(run: _RunState, eval_data: Optional[tf.data.Dataset],
                  writer) -> Callable[[int], Dict[str, Any]]:
  """The evaluation of ``run``, with the EMA weights swapped in.

  Args:
    run: the run.
    eval_data: batches for the eval loss (``None``: none).
    writer: the TensorBoard writer of the eval scalars and the sample grid.

  Returns:
    ``evaluate(at_step) -> {'eval_loss': float, 'samples_png': path}`` (each
    when available): the mean eval loss over ``eval_batches`` batches, with
    fixed seeds so that evaluations compare; the sample grid (the chief
    only), saved as ``samples/step_<at_step>.png``.

  Raises:
    ParameterError: (from ``evaluate``) a damaged TFRecord record, named.
  """
  task, config, workdir = run.task, run.config, run.config.workdir
  eval_fn = task.eval_fn or task.loss_fn

  @tf.function
  def eval_step(batch, seed):
    return eval_fn(batch, seed)

  def evaluate(at_step):
    out = {}
    with run.ema.swapped_in():
      if eval_data is not None:
        losses = []
        with tfrecords.naming_damaged_records():
          for i, batch in enumerate(eval_data.take(config.eval_batches)):
            # Fixed, so comparable; mod 2**31: seed 2**31 - 1 gives [0, i], not a wrap.
            seed = tf.constant([(config.seed + 1) % 2 ** 31, i], tf.int32)
            loss, _ = eval_step(batch, seed)
            losses.append(float(loss))
        if losses:
          out['eval_loss'] = float(np.mean(losses))
      if task.sample_fn is not None and run.is_chief:
        imgs = np.asarray(task.sample_fn(config.seed))
        if task.colormap and imgs.shape[-1] == 1:
          imgs = image_utils.colorize(imgs, cmap=task.colormap)
        grid = image_utils.make_grid(imgs)
        png = os.path.join(workdir, 'samples', f'step_{at_step:07d}.png')
        image_utils.save_png(png, grid, scale=2)
        out['samples_png'] = os.path.relpath(png, workdir)
        with writer.as_default():
          tf.summary.image('samples', grid[None], step=at_step)
    with writer.as_default():
      for k, v in out.items():
        if isinstance(v, float):
          tf.summary.scalar(k, v, step=at_step)
    return out

  return evaluate


class _Checkpoints:
  """Checkpointing: every ``checkpoint_every`` steps or ``checkpoint_every_secs``,
  at the end, on an interrupt; adds the time since the last save to ``elapsed``."""

  def __init__(self, run: _RunState):
    self._run = run
    self._t0 = time.time()            # start of the time not yet in run.elapsed
    self._last = time.time()          # of the last periodic save

  def start(self):
    """Starts the clock of ``checkpoint_every_secs``."""
    self._last = time.time()

  def save(self, reason: str) -> str:
    run = self._run
    run.elapsed.assign_add(time.time() - self._t0)
    self._t0 = time.time()
    run.record_description()   # the run has started: its configuration is now the workdir's
    with atomic.writing(run.manager.directory):   # a full disk: one line, not TF's trace
      path = run.manager.save(checkpoint_number=int(run.step.numpy()))
    logging.info('checkpoint %s (%s)', path, reason)
    return path

  def after_step(self, cur: int):
    """The periodic save, when ``cur`` or the clock says so."""
    config = self._run.config
    if (cur % config.checkpoint_every == 0 or
        time.time() - self._last > config.checkpoint_every_secs):
      self.save('periodic')
      self._last = time.time()

  def save_final(self):
    """Saves the last step, unless the last periodic checkpoint is of it."""
    latest = self._run.manager.latest_checkpoint
    if latest is None or not latest.endswith(f'-{int(self._run.step.numpy())}'):
      self.save('final')


class _StepLog:
  """Every ``log_every`` steps: the mean loss of the steps since, gradient norm,
  steps/s, learning rate and the task's metrics to TensorBoard, ``train_loss``
  and ``steps_per_sec`` into the final metrics, and the progress bar."""

  def __init__(self, run: _RunState, writer, final: Dict[str, Any]):
    self._run, self._writer, self._final = run, writer, final
    self.bar = None
    config = run.config
    if config.progress and run.is_chief:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self.bar = tqdm(total=config.total_steps, initial=run.start_step, unit='step',
                      dynamic_ncols=True, mininterval=1.0)
    self._window, self._t0, self._steps = [], time.time(), 0

  def add(self, cur: int, loss: float, gnorm, metrics):
    config = self._run.config
    self._window.append(loss)
    self._steps += 1
    if self.bar is not None:
      self.bar.update(1)
    if cur % config.log_every == 0 or cur == config.total_steps:
      now = time.time()
      steps_per_sec = self._steps / max(now - self._t0, 1e-9)
      train_loss = float(np.mean(self._window))
      with self._writer.as_default():
        tf.summary.scalar('loss', train_loss, step=cur)
        tf.summary.scalar('grad_norm', float(gnorm), step=cur)
        tf.summary.scalar('steps_per_sec', steps_per_sec, step=cur)
        tf.summary.scalar('learning_rate', float(self._run.task.optimizer.learning_rate()),
                          step=cur)
        for k, v in metrics.items():
          tf.summary.scalar(k, float(v), step=cur)
      self._final.update(train_loss=train_loss, steps_per_sec=steps_per_sec)
      if self.bar is not None:
        self.bar.set_postfix(loss=f'{train_loss:.4g}', steps_s=f'{steps_per_sec:.2f}')
      self._window, self._t0, self._steps = [], now, 0

  def close(self):
    if self.bar is not None:
      self.bar.close()


def _run_steps(run: _RunState, train_step: Callable, iterator, evaluate: Callable,
               checkpoints: _Checkpoints, log: _StepLog, final: Dict[str, Any],
               metrics_path: str):
  """Steps until ``total_steps``: train step, log, periodic checkpoint and
  evaluation; an interrupt (Ctrl-C, SIGTERM) checkpoints first.

  Raises:
    ParameterError: the dataset ran out, or a damaged TFRecord record.
    FloatingPointError: a NaN or infinite loss (naming the step).
    KeyboardInterrupt: after checkpointing.
  """
  config, manager = run.config, run.manager
  checkpoints.start()
  cur = run.start_step
  try:
    with _Interrupt():
      while cur < config.total_steps:
        try:
          with tfrecords.naming_damaged_records():
            loss, gnorm, metrics = train_step(iterator)
        except (StopIteration, tf.errors.OutOfRangeError) as e:
          if cur == run.start_step:   # not one batch: no repeat() would help
            raise ParameterError(
                'the training data yield no batch: the data set is empty, every example '
                'was filtered out (e.g. every audio window quieter than min_rms_db: silent '
                'audio), or it holds fewer examples than one batch') from e
          raise ParameterError(f'the training data ran out at step {cur}: the data set '
                               'must repeat (tf.data.Dataset.repeat)') from e
        cur += 1
        loss_v = float(loss)
        if not np.isfinite(loss_v):
          raise FloatingPointError(
              f'loss is {loss_v} at step {cur}; last good checkpoint: '
              f'{manager.latest_checkpoint}. Check the data for silent or non-finite '
              'examples, then lower the learning rate or clip the gradients')
        log.add(cur, loss_v, gnorm, metrics)
        checkpoints.after_step(cur)
        if cur % config.eval_every == 0 and cur != config.total_steps:
          final.update(evaluate(cur), step=cur)
          if run.is_chief:
            write_json_atomic(metrics_path, final)
  except KeyboardInterrupt:
    log.close()
    path = checkpoints.save('interrupted')
    print(f'\ninterrupted at step {int(run.step.numpy())}; saved {path}. Rerun the same '
          'command to resume.', flush=True)
    raise


def _finish(run: _RunState, evaluate: Callable, checkpoints: _Checkpoints,
            final: Dict[str, Any], metrics_path: str):
  """The last checkpoint and evaluation, ``metrics.json`` (chief) or removing
  this worker's checkpoints (the others)."""
  checkpoints.save_final()
  run.record_description()   # (a run already at total_steps saves no checkpoint)
  step = int(run.step.numpy())
  final.update(evaluate(step))
  final.update(step=step, elapsed_s=float(run.elapsed.numpy()))
  final.pop('examples_seen', None)   # a key of older runs' metrics.json
  if run.is_chief:
    write_json_atomic(metrics_path, final)
  else:
    workdir = run.config.workdir
    shutil.rmtree(os.path.join(workdir, 'workers', run.worker_name), ignore_errors=True)
    try:
      os.rmdir(os.path.join(workdir, 'workers'))   # the last worker out
    except OSError:
      pass


def train(task_fn: Callable[[], Task], train_data: tf.data.Dataset,
          config: LoopConfig, *, eval_data: Optional[tf.data.Dataset] = None,
          strategy: Optional[tf.distribute.Strategy] = None) -> Dict[str, Any]:
  """Trains ``task_fn()`` on ``train_data`` until ``config.total_steps``.

  The steps, each a function of this module: :func:`_start` (build, check the
  workdir, resume), :func:`_make_train_step`, :func:`_make_evaluate`,
  :func:`_run_steps` (the loop with its logging, :class:`_StepLog`, its
  checkpoints, :class:`_Checkpoints`, and the interrupt) and :func:`_finish`.

  Args:
    task_fn: builds the :class:`Task`; called inside the strategy's scope so
      that the model's and optimiser's variables are distributed.
    train_data: ``tf.data.Dataset`` of global batches, repeated (the loop
      stops at ``total_steps``; an exhausted dataset is an error).
    config: a :class:`LoopConfig`.
    eval_data: batches for evaluation (``None``: no eval loss).
    strategy: a ``tf.distribute.Strategy``; default: the current one.

  Returns:
    The final metrics (also written to ``workdir/metrics.json``).

  Raises:
    ParameterError: mismatched workdir, damaged checkpoint, invalid json in
      the workdir, an exhausted dataset, or a damaged TFRecord record (named).
    FloatingPointError: the loss became NaN or infinite (the last checkpoint
      is kept).
  """
  strategy = strategy or tf.distribute.get_strategy()
  run = _start(task_fn, config, strategy)
  workdir = config.workdir
  n_params = int(sum(np.prod(v.shape) for v in run.variables))
  iterator = iter(strategy.experimental_distribute_dataset(train_data))
  train_step = _make_train_step(run)
  writers = {k: (tf.summary.create_file_writer(os.path.join(workdir, 'tb', k)) if run.is_chief
                 else tf.summary.create_noop_writer()) for k in ('train', 'eval')}
  final: Dict[str, Any] = {}
  metrics_path = os.path.join(workdir, 'metrics.json')
  if os.path.exists(metrics_path):   # a resumed run keeps its earlier metrics ...
    final.update(read_json(metrics_path))
  final.update(num_parameters=n_params,   # ... but not this run's facts
               replicas=strategy.num_replicas_in_sync)
  if run.settings_change is not None:   # recorded at once: an interrupt writes no metrics
    final['settings_changes'] = list(final.get('settings_changes') or []) + [run.settings_change]
    write_json_atomic(metrics_path, final)
  evaluate = _make_evaluate(run, eval_data, writers['eval'])
  checkpoints = _Checkpoints(run)
  log = _StepLog(run, writers['train'], final)
  _run_steps(run, train_step, iterator, evaluate, checkpoints, log, final, metrics_path)
  log.close()
  _finish(run, evaluate, checkpoints, final, metrics_path)
  for w in writers.values():
    w.flush()
  return final
