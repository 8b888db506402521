"""NCSN training glue: the Task the shared loop trains, export and loading.

``make_task`` builds the score network, optimiser, DSM loss and a sample-grid
function for :func:`training.loop.train`. ``export_prior`` writes the EMA
weights of a training run as a small standalone prior folder
(``config.json`` + ``weights.*``), which ``load_score_model`` reads back and
``train_ncsn.py --init_from`` resumes from.
"""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from ncsn.losses import dsm_loss
from ncsn.model import ScoreNetConfig, ScoreNetwork
from ncsn.sampling import make_sampler
from ncsn.schedules import NoiseSchedule
from pipeline.errors import ParameterError
from training.ema import EMA
from training import optim
from training.loop import Task, write_json_atomic


@dataclasses.dataclass
class NCSNTrainConfig:
  """Model, schedule and optimiser of an NCSN run.

  Attributes:
    net: the architecture.
    schedule: the noise levels.
    image_shape: ``(height, width, channels)`` of the data.
    learning_rate: Adam learning rate (original: 1e-3).
    beta_1: Adam beta_1 (original NCSN: 0.9).
    n_grid: samples in the preview grid drawn at each evaluation.
    grid_steps_each: Langevin steps per level for the preview grid (the full
      sampler uses 100; previews use fewer to keep evaluation cheap).
    step_lr: Langevin eps.
    dataset: a json-able description of the data (name, source, features).
    compute_dtype: 'float32' or 'bfloat16' (mixed precision; about 2x faster
      on CPUs with AMX/AVX512-BF16). Not part of the model's identity.
    seed: seeds the initial weights.
  """

  net: ScoreNetConfig
  schedule: NoiseSchedule
  image_shape: Sequence[int]
  learning_rate: float = 1e-3
  beta_1: float = 0.9
  n_grid: int = 36
  grid_steps_each: int = 20
  step_lr: float = 2e-5
  dataset: Dict[str, Any] = dataclasses.field(default_factory=dict)
  compute_dtype: str = 'float32'
  seed: int = 0

  def description(self) -> Dict[str, Any]:
    """What defines the model (compared on resume); excludes preview knobs."""
    return {'model': 'ncsn', 'net': self.net.to_dict(),
            'schedule': self.schedule.to_dict(),
            'image_shape': [int(v) for v in self.image_shape],
            'dataset': self.dataset}


def build_model(config: NCSNTrainConfig) -> ScoreNetwork:
  return ScoreNetwork(config.net, config.schedule.sigmas, config.image_shape,
                      compute_dtype=config.compute_dtype, seed=config.seed)


def make_task(config: NCSNTrainConfig, *, colormap: Optional[str] = None,
              init_from: Optional[str] = None) -> Task:
  """Builds the NCSN :class:`Task` (call inside the strategy scope).

  Args:
    config: an :class:`NCSNTrainConfig`.
    colormap: colour map of preview grids (``'magma'`` for spectrograms).
    init_from: an exported prior folder whose weights start the run (used
      only when the workdir holds no checkpoint: the loop's restore wins).
  """
  model = build_model(config)
  initial_step, initial_elapsed = 0, 0.0
  if init_from:
    meta = _load_weights(model, init_from, config)
    initial_step = int(meta.get('step', 0))
    initial_elapsed = float(meta.get('elapsed_s', 0.0))
  optimizer = optim.Adam(model.trainable_variables, optim.OptimizerConfig(
      'adam', config.learning_rate, beta_1=config.beta_1))
  sigmas = tf.constant(config.schedule.sigmas, tf.float32)

  def loss_fn(batch, seed):
    return dsm_loss(lambda x, labels: model(x, labels, training=True), batch,
                    sigmas, seed)

  sampler = make_sampler(lambda x, labels: model(x, labels), config.schedule.sigmas,
                         n_steps_each=config.grid_steps_each, step_lr=config.step_lr)

  def sample_fn(seed):
    x0 = tf.random.stateless_uniform((config.n_grid,) + tuple(config.image_shape),
                                     [seed, 7])
    return sampler(x0, tf.constant([seed, 11], tf.int32)).numpy()

  return Task(model=model, optimizer=optimizer, loss_fn=loss_fn,
              sample_fn=sample_fn if config.n_grid > 0 else None,
              colormap=colormap, description=config.description(),
              initial_step=initial_step, initial_elapsed_s=initial_elapsed)


# ----------------------------------------------------------------- export/load
PRIOR_CONFIG = 'config.json'
PRIOR_WEIGHTS = 'weights'


def export_prior(workdir: str, out_dir: str, *, extra: Optional[Dict[str, Any]] = None):
  """Writes the EMA weights of the newest checkpoint in ``workdir`` as a prior.

  The result is ``out_dir/config.json`` (the run description plus ``extra``,
  e.g. the command and budget) and ``out_dir/weights.*`` (a TF checkpoint of
  the model variables only). The folder is replaced atomically.

  Raises:
    ParameterError: if ``workdir`` holds no run or no checkpoint.
  """
  desc = _read_json(os.path.join(workdir, 'config.json'), 'run description')
  config = config_from_description(desc)
  latest = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  if latest is None:
    raise ParameterError(f'no checkpoint in {workdir}/checkpoints')
  model = build_model(config)
  ema = EMA(model.trainable_variables, 0.0)
  step = tf.Variable(0, dtype=tf.int64)
  ckpt = tf.train.Checkpoint(model=model, ema=ema, step=step)
  ckpt.restore(latest).expect_partial().assert_existing_objects_matched()
  ema.copy_to_model()
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private (0700)
  try:
    tf.train.Checkpoint(model=model).write(os.path.join(tmp, PRIOR_WEIGHTS))
    elapsed = tf.Variable(0.0, dtype=tf.float64)
    tf.train.Checkpoint(elapsed_s=elapsed).read(latest).expect_partial()
    meta = dict(desc, step=int(step.numpy()), elapsed_s=float(elapsed.numpy()),
                source_checkpoint=os.path.basename(latest),
                num_parameters=model.num_parameters(), **(extra or {}))
    write_json_atomic(os.path.join(tmp, PRIOR_CONFIG), meta)
    if os.path.exists(out_dir):
      old = tempfile.mkdtemp(prefix='.old-', dir=parent)
      os.replace(out_dir, os.path.join(old, 'x'))
      os.replace(tmp, out_dir)
      shutil.rmtree(old)
    else:
      os.replace(tmp, out_dir)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
  return out_dir


def config_from_description(desc: Dict[str, Any]) -> NCSNTrainConfig:
  if desc.get('model') != 'ncsn':
    raise ParameterError(f"not an NCSN description (model={desc.get('model')!r})")
  return NCSNTrainConfig(net=ScoreNetConfig.from_dict(desc['net']),
                         schedule=NoiseSchedule.from_dict(desc['schedule']),
                         image_shape=tuple(desc['image_shape']),
                         dataset=desc.get('dataset', {}))


def load_score_model(prior_dir: str, *, compute_dtype: str = 'float32') -> ScoreNetwork:
  """Loads an exported NCSN prior folder.

  Args:
    prior_dir: folder written by :func:`export_prior`.
    compute_dtype: 'float32' or 'bfloat16' (faster on CPUs with BF16 units).

  Returns:
    The :class:`ScoreNetwork` with the exported (EMA) weights; its
    ``sigmas`` are the trained levels and ``prior_metadata`` the config json.

  Raises:
    ParameterError: missing folder, damaged or mismatched weights.
  """
  meta = _read_json(os.path.join(prior_dir, PRIOR_CONFIG), 'prior config')
  config = dataclasses.replace(config_from_description(meta), compute_dtype=compute_dtype)
  model = build_model(config)
  _load_weights(model, prior_dir, config)
  model.prior_metadata = meta
  return model


def _load_weights(model, prior_dir, config):
  meta = _read_json(os.path.join(prior_dir, PRIOR_CONFIG), 'prior config')
  saved = config_from_description(meta)
  if saved.net != config.net or tuple(saved.image_shape) != tuple(config.image_shape):
    raise ParameterError(
        f'prior {prior_dir} has net {saved.net} and image shape {saved.image_shape}, '
        f'but {config.net} and {tuple(config.image_shape)} were asked for')
  saved_sigmas, sigmas = saved.schedule.sigmas, config.schedule.sigmas
  # (np.allclose raises a bare ValueError for different level counts.)
  if saved_sigmas.shape != sigmas.shape or not np.allclose(saved_sigmas, sigmas):
    raise ParameterError(
        f'prior {prior_dir} was trained on schedule {saved.schedule}, not '
        f'{config.schedule}')
  path = os.path.join(prior_dir, PRIOR_WEIGHTS)
  try:
    tf.train.Checkpoint(model=model).read(path).assert_existing_objects_matched()
  # IndexError: a truncated weights.data file ("Read less bytes than requested").
  except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
    raise ParameterError(
        f'cannot load weights {path}: damaged or from a different model '
        f'({type(e).__name__}: {str(e)[:300]})') from e
  return meta


def _read_json(path, what):
  if not os.path.exists(path):
    raise ParameterError(f'{what} {path} does not exist')
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise ParameterError(f'{what} {path} is not valid json: {e}') from e
