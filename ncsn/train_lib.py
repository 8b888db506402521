"""NCSN training glue: the Task the shared loop trains, export and loading.

``make_task`` builds the score network, optimiser, DSM loss and a sample-grid
function for :func:`training.loop.train`. ``export_prior`` writes the EMA
weights of a training run as a small standalone prior folder
(``config.json`` + ``weights.*``), which ``load_score_model`` reads back and
``train_ncsn.py --init_from`` resumes from.
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from ncsn.losses import dsm_loss
from ncsn.model import ScoreNetConfig, build_score_network
from ncsn.sampling import make_sampler
from ncsn.schedules import NoiseSchedule
from pipeline.errors import ParameterError
from training import optim
from training import prior_io
from training.loop import Task


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


def build_model(config: NCSNTrainConfig):
  """The score network of ``config.net.arch`` (:func:`ncsn.model.build_score_network`)."""
  return build_score_network(config.net, config.schedule.sigmas, config.image_shape,
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
PRIOR_CONFIG = prior_io.PRIOR_CONFIG
PRIOR_WEIGHTS = prior_io.PRIOR_WEIGHTS
_read_json = prior_io.read_json


def export_prior(workdir: str, out_dir: str, *, extra: Optional[Dict[str, Any]] = None):
  """Writes the EMA weights of the newest checkpoint in ``workdir`` as a prior.

  The result is ``out_dir/config.json`` (the run description plus ``extra``,
  e.g. the command and budget) and ``out_dir/weights.*`` (a TF checkpoint of
  the model variables only). The folder is replaced atomically.

  Raises:
    ParameterError: if ``workdir`` holds no run or no checkpoint, or a damaged one.
  """
  desc = _read_json(os.path.join(workdir, 'config.json'), 'run description')
  model = build_model(config_from_description(desc))
  latest, step, elapsed = prior_io.load_ema_weights(workdir, model)
  meta = dict(desc, step=step, elapsed_s=elapsed, source_checkpoint=os.path.basename(latest),
              num_parameters=model.num_parameters(), **(extra or {}))
  return prior_io.write_prior_folder(out_dir, model, meta)


def config_from_description(desc: Dict[str, Any]) -> NCSNTrainConfig:
  if desc.get('model') != 'ncsn':
    raise ParameterError(f"not an NCSN description (model={desc.get('model')!r})")
  return NCSNTrainConfig(net=ScoreNetConfig.from_dict(desc['net']),
                         schedule=NoiseSchedule.from_dict(desc['schedule']),
                         image_shape=tuple(desc['image_shape']),
                         dataset=desc.get('dataset', {}))


def load_score_model(prior_dir: str, *, compute_dtype: str = 'float32'):
  """Loads an exported NCSN prior folder.

  Args:
    prior_dir: folder written by :func:`export_prior`.
    compute_dtype: 'float32' or 'bfloat16' (faster on CPUs with BF16 units).

  Returns:
    The score network (a :class:`ncsn.model.ScoreNetwork`, or an
    :class:`ncsn.unet.UNetScoreNetwork` for ``arch='unet'``) with the
    exported (EMA) weights; its
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
  prior_io.read_checkpoint(os.path.join(prior_dir, PRIOR_WEIGHTS), what='weights',
                           model=model)
  return meta
