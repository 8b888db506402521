"""Flow training glue: the Task the shared loop trains, export, loading, and
noise-conditioned fine-tuning of a family of flows.

``make_task`` builds a Glow or RealNVP flow, initialises its ActNorms on a
data batch, and supplies the loss (bits per dimension, every Jacobian
counted), an evaluation function and tempered sample grids to
:func:`training.loop.train`. ``export_prior`` writes the EMA weights of a
run as a small prior folder (``config.json`` + ``weights.*``) that
``load_flow`` reads back and ``--init_from`` starts from.

``finetune_noise`` makes the family BASIS needs: one flow per noise level,
each fine-tuned on data + ``N(0, sigma^2)`` noise, serially from the
smallest sigma upward (each level starts from the previous one; fine-tuning
a high-noise model straight from the clean one breaks invertibility). Each
level is a normal training run with its own workdir and export; the family
folder's ``family.json`` lists the levels (see ``flow_models.family``).
"""

import dataclasses
import os
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from flow_models import family as family_lib
from flow_models import model as model_lib
from flow_models import preprocessing
from flow_models import utils
from flow_models.glow import GlowConfig, build_glow
from flow_models.realnvp import RealNVPConfig, build_realnvp
from pipeline import atomic
from pipeline.errors import ParameterError
from training import loop
from training import optim
from training import prior_io

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
    return {'model': self.model_name, 'flow': self.flow.to_dict(),
            'image_shape': [int(v) for v in self.image_shape],
            'noise_sigma': float(self.noise_sigma), 'num_bins': self.num_bins,
            'dataset': self.dataset}


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


def make_objective(distribution, config: FlowTrainConfig, *, training: bool) -> Callable:
  """``(batch, seed) -> (loss, metrics)``: mean bits per dimension.

  ``batch`` is float32 ``[batch, height, width, channels]`` in data units;
  with ``config.noise_sigma > 0`` the function adds ``N(0, sigma^2)`` noise
  drawn from ``seed``. ``training`` selects batch statistics in the coupling
  networks' batch norms.
  """
  d = model_lib.num_dims(distribution)
  sigma = float(config.noise_sigma)

  def objective(batch, seed):
    x = tf.cast(batch, distribution.dtype)
    if sigma > 0:
      x = x + sigma * tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
    with model_lib.training_mode(distribution, training):
      log_prob = distribution.log_prob(x)
    bpd = tf.reduce_mean(preprocessing.bits_per_dim(log_prob, d, num_bins=config.num_bins))
    nll = -tf.reduce_mean(log_prob) / d
    return tf.cast(bpd, tf.float32), {'bits_per_dim': tf.cast(bpd, tf.float32),
                                      'nll_nats_per_dim': tf.cast(nll, tf.float32)}

  return objective


def make_task(config: FlowTrainConfig, *, init_batch=None, colormap: Optional[str] = None,
              init_from: Optional[str] = None, continue_steps: bool = True) -> loop.Task:
  """Builds the flow :class:`training.loop.Task` (call inside the strategy scope).

  Args:
    config: a :class:`FlowTrainConfig`.
    init_batch: float ``[batch, height, width, channels]`` data for the
      data-dependent ActNorm init (ignored with ``init_from``; a restored
      checkpoint overwrites it anyway).
    colormap: colour map of preview grids ('magma' for spectrograms).
    init_from: an exported prior folder whose weights start the run (used
      only when the workdir has no checkpoint: the loop's restore wins). Its
      noise level may differ (fine-tuning); its architecture may not.
    continue_steps: start the step counter at the exported prior's step
      (True) or at 0 (False: a fine-tuning run counts its own steps).

  Raises:
    ParameterError: neither ``init_batch`` nor ``init_from``, or a prior
      that does not match.
  """
  distribution = build_model(config)
  initial_step, initial_elapsed = 0, 0.0
  if init_from:
    meta = load_weights(distribution, init_from, config, allow_other_sigma=True)
    if continue_steps:
      initial_step = int(meta.get('step', 0))
      initial_elapsed = float(meta.get('elapsed_s', 0.0))
  elif init_batch is not None:
    model_lib.initialize(distribution, init_batch)
  else:
    raise ParameterError('make_task needs init_batch (data-dependent ActNorm init) or '
                         'init_from (an exported prior)')
  # After the data-dependent init: every variable exists now.
  optimizer = optim.Adam(distribution.trainable_variables, optim.OptimizerConfig(
      config.optimizer, config.learning_rate, warmup_steps=config.warmup_steps))
  sample_fn = None  # set below when a preview grid is wanted
  if config.n_grid > 0:
    forward = tf.function(distribution.bijector.forward)
    shape = (config.n_grid, model_lib.num_dims(distribution))

    def sample_fn(seed):
      z = config.temperature * tf.random.stateless_normal(shape, [seed, 7],
                                                          dtype=distribution.dtype)
      x = forward(z).numpy()
      return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)

  return loop.Task(model=distribution, optimizer=optimizer,
                   loss_fn=make_objective(distribution, config, training=True),
                   eval_fn=make_objective(distribution, config, training=False),
                   sample_fn=sample_fn, colormap=colormap, description=config.description(),
                   initial_step=initial_step, initial_elapsed_s=initial_elapsed)


def add_bits_per_dim(workdir: str, metrics: Dict[str, Any]) -> Dict[str, Any]:
  """Names the loop's losses by what they are and rewrites ``metrics.json``.

  The loss is bits/dim, so ``train_loss`` -> ``train_bits_per_dim`` (mean
  over the last logging window) and ``eval_loss`` -> ``test_bits_per_dim``
  (EMA weights, the loop's evaluation batches of the test split).
  """
  metrics = dict(metrics)
  if 'train_loss' in metrics:
    metrics['train_bits_per_dim'] = metrics['train_loss']
  if 'eval_loss' in metrics:
    metrics['test_bits_per_dim'] = metrics['eval_loss']
  atomic.write_json_atomic(os.path.join(workdir, 'metrics.json'), metrics)
  return metrics


# ----------------------------------------------------------------- export/load
PRIOR_CONFIG = prior_io.PRIOR_CONFIG
PRIOR_WEIGHTS = prior_io.PRIOR_WEIGHTS
_read_json = prior_io.read_json


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
                         num_bins=desc.get('num_bins', 256),
                         dataset=desc.get('dataset', {}))


def export_prior(workdir: str, out_dir: str, *,
                 extra: Optional[Dict[str, Any]] = None) -> str:
  """Writes the EMA weights of the newest checkpoint in ``workdir`` as a prior.

  ``out_dir/config.json`` holds the run description, step, elapsed time,
  parameter count, last metrics and ``extra``; ``out_dir/weights.*`` a TF
  checkpoint of the flow's variables (EMA values for the trainable ones).
  The folder is replaced atomically.

  Raises:
    ParameterError: no run or no checkpoint in ``workdir``, or a damaged one.
  """
  desc = _read_json(os.path.join(workdir, 'config.json'), 'run description')
  config = config_from_description(desc)
  distribution = build_model(config)
  latest, step, elapsed = prior_io.load_ema_weights(workdir, distribution)
  metrics_path = os.path.join(workdir, 'metrics.json')
  metrics = {}
  if os.path.exists(metrics_path):
    metrics = {k: v for k, v in _read_json(metrics_path, 'metrics').items()
               if k in ('train_bits_per_dim', 'test_bits_per_dim', 'steps_per_sec')}
  meta = dict(desc, step=step, elapsed_s=elapsed, source_checkpoint=os.path.basename(latest),
              num_parameters=utils.num_parameters(distribution), metrics=metrics,
              **(extra or {}))
  return prior_io.write_prior_folder(out_dir, distribution, meta)


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


# ------------------------------------------------------- noise fine-tuning
def finetune_noise(base_prior: str, family_dir: str, sigmas: Sequence[float], *,
                   train_data: tf.data.Dataset, loop_config: loop.LoopConfig,
                   eval_data: Optional[tf.data.Dataset] = None,
                   learning_rate: Optional[float] = None, warmup_steps: Optional[int] = None,
                   n_grid: int = 36, temperature: float = 0.7,
                   colormap: Optional[str] = None,
                   strategy: Optional[tf.distribute.Strategy] = None,
                   extra: Optional[Dict[str, Any]] = None,
                   log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Fine-tunes one flow per noise level, serially from the smallest sigma up.

  Level ``i`` (sigmas ascending) trains ``loop_config.total_steps`` steps on
  ``x + N(0, sigma_i^2)`` starting from level ``i - 1``'s export (level 0
  from ``base_prior``), in ``family_dir/runs/sigma_<i>``, and is exported to
  ``family_dir/sigma_<i>``; ``family.json`` is rewritten after every level,
  so an interrupted family resumes where it stopped (rerun the same call).

  Args:
    base_prior: exported prior folder of the clean (or lowest-noise) flow.
    family_dir: output folder.
    sigmas: noise levels > 0 (any order; run ascending), data units.
    train_data: repeated dataset of clean batches (noise is added per step).
    loop_config: cadence of each level's run; ``workdir`` is replaced per
      level and ``total_steps`` is the number of steps per level.
    eval_data: clean test batches (noisy at the level's sigma in evaluation).
    learning_rate, warmup_steps: override the base prior's optimiser
      settings (None: Adamax at 1e-3 / the base's, no warm-up).
    n_grid, temperature, colormap: preview grids.
    strategy: a ``tf.distribute.Strategy``.
    extra: json-able additions to every export's config.
    log: progress messages.

  Returns:
    The family description (also ``family_dir/family.json``).

  Raises:
    ParameterError: bad sigmas, a base prior with logit preprocessing, or a
      family folder holding a different family.
  """
  sig = np.asarray(sigmas, np.float64).reshape(-1)
  if len(sig) < 1 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
    raise ParameterError(f'sigmas must be finite and > 0, got {sigmas!r}')
  if len(np.unique(sig)) != len(sig):
    raise ParameterError(f'sigmas must be distinct, got {sigmas!r}')
  sig = np.sort(sig)
  base_meta = _read_json(os.path.join(base_prior, PRIOR_CONFIG), 'prior config')
  base = config_from_description(base_meta)
  os.makedirs(family_dir, exist_ok=True)
  previous = family_lib.read_family(family_dir, missing_ok=True)
  if previous is not None and not np.allclose(previous['sigmas'], sig, rtol=1e-9):
    raise ParameterError(f'{family_dir} holds a family for sigmas {previous["sigmas"]}, '
                         f'not {sig.tolist()}; use another folder')
  entries = []
  source = os.path.abspath(base_prior)
  for i, sigma in enumerate(sig):
    name = f'sigma_{i:02d}'
    out = os.path.join(family_dir, name)
    done = os.path.exists(os.path.join(out, PRIOR_CONFIG)) and _finished(
        out, sigma, loop_config.total_steps)
    if done:
      log(f'[{i + 1}/{len(sig)}] sigma={sigma:.4g}: already exported in {out}')
    else:
      config = dataclasses.replace(
          base, noise_sigma=float(sigma), n_grid=n_grid, temperature=temperature,
          learning_rate=base.learning_rate if learning_rate is None else learning_rate,
          warmup_steps=0 if warmup_steps is None else warmup_steps)
      workdir = os.path.join(family_dir, 'runs', name)
      log(f'[{i + 1}/{len(sig)}] sigma={sigma:.4g}: fine-tuning from {source} '
          f'for {loop_config.total_steps} steps in {workdir}')
      metrics = loop.train(
          lambda config=config, source=source: make_task(
              config, colormap=colormap, init_from=source, continue_steps=False),
          train_data, dataclasses.replace(loop_config, workdir=workdir),
          eval_data=eval_data, strategy=strategy)
      add_bits_per_dim(workdir, metrics)
      export_prior(workdir, out, extra=dict(extra or {}, fine_tuned_from=source))
    entries.append({'sigma': float(sigma), 'prior': name})
    family_lib.write_family(family_dir, entries, sigmas=sig, base_prior=base_prior,
        steps_per_sigma=loop_config.total_steps, description={
            k: base_meta.get(k) for k in ('model', 'flow', 'image_shape', 'num_bins',
                                          'dataset')})
    source = os.path.abspath(out)
  return family_lib.read_family(family_dir)


def _finished(prior_dir, sigma, steps) -> bool:
  meta = _read_json(os.path.join(prior_dir, PRIOR_CONFIG), 'prior config')
  return (np.isclose(float(meta.get('noise_sigma', -1.0)), sigma, rtol=1e-9)
          and int(meta.get('step', 0)) >= steps)
