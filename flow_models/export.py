"""A flow prior folder: export it from a training run, load it for sampling or BASIS.

A prior folder is ``config.json`` (the run description of
:meth:`FlowTrainConfig.description` plus step, elapsed time, parameter count,
last metrics and what ``export_prior`` was given) and ``weights.*`` (a TF
checkpoint of the flow's variables, EMA values for the trainable ones).
``export_prior`` writes one from a run's newest checkpoint, ``load_flow``
reads it back; ``flow_models.family`` loads a family of them (one per noise
level) and ``flow_models.train_lib.make_task(init_from=...)`` starts a run
from one.

Nothing here imports the training loop: separating with a flow needs only
this module (the run config lives here because the description *is* the
prior's identity; ``flow_models.train_lib`` builds the training task from it).
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from flow_models import utils
from flow_models.glow import GlowConfig, build_glow
from flow_models.realnvp import RealNVPConfig, build_realnvp
from common.errors import ParameterError
from training import optim
from training import prior_io

PRIOR_CONFIG = prior_io.PRIOR_CONFIG
PRIOR_WEIGHTS = prior_io.PRIOR_WEIGHTS
_read_json = prior_io.read_json

MODELS = ('glow', 'realnvp')
FlowConfig = Union[GlowConfig, RealNVPConfig]


@dataclasses.dataclass
class FlowTrainConfig:
  """Model, data and optimiser of a flow run.

  Attributes:
    flow: a :class:`GlowConfig` or :class:`RealNVPConfig`.
    image_shape: ``(height, width, channels)`` of the data.
    learning_rate: peak learning rate (Glow: Adamax 1e-3).
    optimizer: 'adamax' (Glow's) or 'adam'.
    warmup_steps: linear learning-rate warm-up.
    noise_sigma: float >= 0; > 0 trains on ``x + N(0, sigma^2)`` (one member
      of a noise-conditioned family), in data units.
    score_matching_weight: float >= 0; with ``noise_sigma > 0`` adds this
      times the denoising score-matching loss ``mean((z + sigma s(x))^2)``
      (``s = grad_x log p``, ``x = x0 + sigma z``; it equals Tweedie's
      ``MSE / sigma^2`` of ``basis.denoising_error``) to the bits/dim: BASIS
      uses only the score, which likelihood training leaves rough.
    num_bins: 256 for 8-bit images (bits/dim of the dequantised data, the
      ``-D log 256`` Jacobian counted), None for continuous data (mel
      patches: bits/dim of the density in [0, 1] units).
    n_grid: samples in the preview grid at each evaluation (0: none).
    temperature: latent standard deviation of the preview samples.
    dataset: json-able description of the data (name, source, features).
    seed: seeds the initial weights.
  """

  flow: FlowConfig
  image_shape: Sequence[int]
  learning_rate: float = 1e-3
  optimizer: str = 'adamax'
  warmup_steps: int = 0
  noise_sigma: float = 0.0
  score_matching_weight: float = 0.0
  num_bins: Optional[int] = 256
  n_grid: int = 36
  temperature: float = 0.7
  dataset: Dict[str, Any] = dataclasses.field(default_factory=dict)
  seed: int = 0

  def __post_init__(self):
    if not isinstance(self.flow, (GlowConfig, RealNVPConfig)):
      raise ParameterError(f'flow must be a GlowConfig or RealNVPConfig, got {self.flow!r}')
    if not self.noise_sigma >= 0:
      raise ParameterError(f'noise_sigma must be >= 0, got {self.noise_sigma!r}')
    if not (np.isfinite(self.score_matching_weight) and self.score_matching_weight >= 0):
      raise ParameterError('score_matching_weight must be a finite number >= 0, got '
                           f'{self.score_matching_weight!r}')
    if self.score_matching_weight > 0 and not self.noise_sigma > 0:
      raise ParameterError(
          f'score_matching_weight={self.score_matching_weight} needs noise_sigma > 0 '
          '(denoising score matching trains the score of the noisy data: a member of a '
          'noise family, train_glow.py --mode=finetune_noise)')
    if self.noise_sigma > 0 and self.flow.preprocessing == 'logit':
      raise ParameterError(
          f'noise_sigma={self.noise_sigma}: noisy data leaves [0, 1], where logit '
          "preprocessing is undefined; use preprocessing='shift'")
    if not self.temperature >= 0:
      raise ParameterError(f'temperature must be >= 0, got {self.temperature!r}')
    optim.OptimizerConfig(self.optimizer, self.learning_rate, warmup_steps=self.warmup_steps)

  @property
  def model_name(self) -> str:
    return 'glow' if isinstance(self.flow, GlowConfig) else 'realnvp'

  def description(self) -> Dict[str, Any]:
    """What defines the model and its data (compared on resume)."""
    out = {'model': self.model_name, 'flow': self.flow.to_dict(),
           'image_shape': [int(v) for v in self.image_shape],
           'noise_sigma': float(self.noise_sigma), 'num_bins': self.num_bins,
           'dataset': self.dataset}
    if self.score_matching_weight > 0:   # absent (0) in the runs that predate it
      out['score_matching_weight'] = float(self.score_matching_weight)
    return out


def flow_config(model: str, **kwargs) -> FlowConfig:
  """``GlowConfig(**kwargs)`` or ``RealNVPConfig(**kwargs)`` by name.

  Raises:
    ParameterError: unknown model name or keyword.
  """
  if model == 'glow':
    return GlowConfig.from_dict(kwargs)
  if model == 'realnvp':
    return RealNVPConfig.from_dict(kwargs)
  raise ParameterError(f'model must be one of {MODELS}, got {model!r}')


def build_model(config: FlowTrainConfig, *, dtype=tf.float32):
  """The untrained flow distribution of ``config``."""
  if isinstance(config.flow, GlowConfig):
    return build_glow(config.flow, config.image_shape, dtype=dtype, seed=config.seed)
  return build_realnvp(config.flow, config.image_shape, dtype=dtype, seed=config.seed)


def config_from_description(desc: Dict[str, Any]) -> FlowTrainConfig:
  """The :class:`FlowTrainConfig` a run or prior description stands for.

  Raises:
    ParameterError: not a flow description, or unknown keys.
  """
  if desc.get('model') not in MODELS:
    raise ParameterError(f"not a flow description (model={desc.get('model')!r})")
  return FlowTrainConfig(flow=flow_config(desc['model'], **desc['flow']),
                         image_shape=tuple(desc['image_shape']),
                         noise_sigma=float(desc.get('noise_sigma', 0.0)),
                         score_matching_weight=float(desc.get('score_matching_weight', 0.0)),
                         num_bins=desc.get('num_bins', 256),
                         dataset=desc.get('dataset', {}))


def export_prior(workdir: str, out_dir: str, *,
                 extra: Optional[Dict[str, Any]] = None, flag: str = 'prior') -> str:
  """Writes the EMA weights of the newest checkpoint in ``workdir`` as a prior.

  ``out_dir/config.json`` holds the run description, step, elapsed time,
  parameter count, last metrics and ``extra``; ``out_dir/weights.*`` a TF
  checkpoint of the flow's variables (EMA values for the trainable ones).
  ``out_dir`` must be new, empty or an earlier export of the same model,
  whose own files alone are replaced
  (:func:`training.prior_io.write_prior_folder`); ``flag`` names it in errors.

  Raises:
    ParameterError: no run or no checkpoint in ``workdir``, or a damaged one;
      ``out_dir`` is the workdir, holds other files or another kind of prior.
  """
  desc = _read_json(os.path.join(workdir, 'config.json'), 'run description')
  prior_io.check_prior_target(out_dir, str(desc.get('model')), workdir=workdir, flag=flag)
  config = config_from_description(desc)
  distribution = build_model(config)
  latest, step, elapsed = prior_io.load_ema_weights(workdir, distribution)
  metrics_path = os.path.join(workdir, 'metrics.json')
  metrics = {}
  if os.path.exists(metrics_path):
    metrics = {k: v for k, v in _read_json(metrics_path, 'metrics').items()
               if k in ('train_bits_per_dim', 'test_bits_per_dim', 'train_objective',
                        'test_objective', 'steps_per_sec')}
  meta = dict(desc, step=step, elapsed_s=elapsed, source_checkpoint=os.path.basename(latest),
              num_parameters=utils.num_parameters(distribution), metrics=metrics,
              **(extra or {}))
  return prior_io.write_prior_folder(out_dir, distribution, meta, workdir=workdir, flag=flag)


def load_flow(prior_dir: str) -> Tuple[Any, Dict[str, Any]]:
  """Loads an exported flow prior folder.

  Args:
    prior_dir: folder written by :func:`export_prior`.

  Returns:
    ``(distribution, meta)``: the ``tfd.TransformedDistribution`` with the
    exported weights (batch norms in inference mode) and the config json.

  Raises:
    ParameterError: missing folder or config, damaged or mismatched weights.
  """
  meta = _read_json(os.path.join(prior_dir, PRIOR_CONFIG), 'prior config')
  config = config_from_description(meta)
  distribution = build_model(config)
  load_weights(distribution, prior_dir, config)
  return distribution, meta


def load_weights(distribution, prior_dir: str, config: FlowTrainConfig, *,
                 allow_other_sigma: bool = False) -> Dict[str, Any]:
  """Restores an exported prior's weights into ``distribution`` (built from ``config``).

  Args:
    distribution: the flow to fill.
    prior_dir: an exported prior folder.
    config: what ``distribution`` was built from; the prior must have the
      same architecture and image shape.
    allow_other_sigma: accept a prior trained at another noise level.

  Returns:
    The prior's config json.

  Raises:
    ParameterError: missing, mismatched or damaged prior.
  """
  meta = _read_json(os.path.join(prior_dir, PRIOR_CONFIG), 'prior config')
  saved = config_from_description(meta)
  if (saved.model_name != config.model_name or saved.flow != config.flow
      or tuple(saved.image_shape) != tuple(config.image_shape)):
    raise ParameterError(
        f'prior {prior_dir} is a {saved.model_name} {saved.flow} on {tuple(saved.image_shape)}'
        f', but a {config.model_name} {config.flow} on {tuple(config.image_shape)} was '
        'asked for')
  if not allow_other_sigma and not np.isclose(saved.noise_sigma, config.noise_sigma):
    raise ParameterError(f'prior {prior_dir} was trained at noise_sigma={saved.noise_sigma}, '
                         f'not {config.noise_sigma}')
  prior_io.read_checkpoint(os.path.join(prior_dir, PRIOR_WEIGHTS), what='weights',
                           model=distribution)
  return meta
