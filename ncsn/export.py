"""An NCSN prior folder: export it from a training run, load it for sampling or BASIS.

A prior folder is ``config.json`` (the run description of
:meth:`NCSNTrainConfig.description` plus step, elapsed time and what
``export_prior`` was given) and ``weights.*`` (a TF checkpoint of the score
network's variables, EMA values). ``export_prior`` writes one from a run's
newest checkpoint, ``load_score_model`` reads it back, and
``ncsn.train_lib.make_task(init_from=...)`` starts a run from one.

Nothing here imports the training loop: separating with a prior needs only
this module (the run config lives here because the description *is* the
prior's identity; ``ncsn.train_lib`` builds the training task from it).
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ncsn.model import ScoreNetConfig, build_score_network
from ncsn.schedules import NoiseSchedule
from common.errors import ParameterError
from training import prior_io

PRIOR_CONFIG = prior_io.PRIOR_CONFIG
PRIOR_WEIGHTS = prior_io.PRIOR_WEIGHTS
_read_json = prior_io.read_json


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


def export_prior(workdir: str, out_dir: str, *, extra: Optional[Dict[str, Any]] = None,
                 flag: str = 'prior'):
  """Writes the EMA weights of the newest checkpoint in ``workdir`` as a prior.

  The result is ``out_dir/config.json`` (the run description plus ``extra``,
  e.g. the command and budget) and ``out_dir/weights.*`` (a TF checkpoint of
  the model variables only). ``out_dir`` must be new, empty or an earlier
  NCSN export, whose own files alone are replaced
  (:func:`training.prior_io.write_prior_folder`); ``flag`` names it in errors.

  Raises:
    ParameterError: if ``workdir`` holds no run or no checkpoint, or a damaged
      one; if ``out_dir`` is the workdir, holds other files or another kind
      of prior.
  """
  desc = _read_json(os.path.join(workdir, 'config.json'), 'run description')
  prior_io.check_prior_target(out_dir, str(desc.get('model')), workdir=workdir, flag=flag)
  model = build_model(config_from_description(desc))
  latest, step, elapsed = prior_io.load_ema_weights(workdir, model)
  meta = dict(desc, step=step, elapsed_s=elapsed, source_checkpoint=os.path.basename(latest),
              num_parameters=model.num_parameters(), **(extra or {}))
  return prior_io.write_prior_folder(out_dir, model, meta, workdir=workdir, flag=flag)


def config_from_description(desc: Dict[str, Any]) -> NCSNTrainConfig:
  """The :class:`NCSNTrainConfig` a run or prior description stands for.

  Raises:
    ParameterError: not an NCSN description, or unknown keys.
  """
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
  load_weights(model, prior_dir, config)
  model.prior_metadata = meta
  return model


def load_weights(model, prior_dir: str, config: NCSNTrainConfig) -> Dict[str, Any]:
  """Restores an exported prior's weights into ``model`` (built from ``config``).

  Returns:
    The prior's config json.

  Raises:
    ParameterError: a prior of another net, image shape or schedule, or
      missing / damaged weights.
  """
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
