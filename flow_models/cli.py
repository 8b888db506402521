"""What ``train_glow.py`` does: its run config and ``run(config)``.

  run(GlowRunConfig(workdir='runs/glow_mnist', levels=2, steps=2000))
  run(GlowRunConfig(mode='finetune_noise', init_from='priors/glow_mnist',
                    workdir='priors/glow_mnist_family', steps_per_sigma=2000))

The script maps its flags onto :class:`GlowRunConfig` (fields are named after
the flags; ``commandline.flag_groups``); nothing here reads flags.
"""

import dataclasses
import os
import sys
from typing import ClassVar, Optional, Tuple

import numpy as np
import tensorflow as tf

from flow_models import export
from flow_models import model as model_lib
from flow_models import train_lib
from flow_models import utils
from common import checks
from pipeline import datasets
from pipeline import tfrecords
from common import figures
from common.errors import ParameterError
from training.run_config import TrainingRunConfig
from training import loop
from training.strategy import get_strategy

# Architecture fields that default to the model's own defaults when unset.
_ARCH_FIELDS = {'glow': ('levels', 'steps_per_level', 'hidden_channels', 'coupling',
                         'learn_top', 'split_prior', 'preprocessing', 'logit_alpha'),
                'realnvp': ('levels', 'steps_per_level', 'hidden_channels', 'res_blocks',
                            'coupling', 'preprocessing', 'logit_alpha')}
_DEFAULT_LEVELS = 3


@dataclasses.dataclass(frozen=True)
class GlowRunConfig(TrainingRunConfig):
  """One ``train_glow.py`` run: train, sample, export or finetune_noise.

  Shared fields: the base class (``sigma_max``, ``sigma_min``, ``num_levels``:
  the geometric levels of finetune_noise). The architecture fields left None
  take the model's defaults (``levels``: 3, or what the image size allows).

  Attributes:
    model: 'glow' or 'realnvp'.
    levels: multi-scale levels (2x2 squeezes).
    steps_per_level: flow steps per level (Glow K; RealNVP couplings per mask type).
    hidden_channels: width of the coupling networks.
    res_blocks: RealNVP: residual blocks per coupling network.
    coupling: 'affine' or 'additive'.
    learn_top: Glow: learned top prior.
    split_prior: Glow: conditional prior at factor-out.
    preprocessing: 'shift' (x - 0.5) or 'logit'.
    logit_alpha: squashing of the logit preprocessing.
    optimizer: 'adamax' or 'adam'.
    warmup_steps: linear learning-rate warm-up steps.
    eval_batches: test batches per evaluation.
    summary: print every trainable variable before training.
    temperature: latent standard deviation of sample grids.
    n_grid: samples in the preview grid at each evaluation.
    steps_per_sigma: finetune_noise: steps per noise level.
    score_matching_weight: finetune_noise: weight of the denoising
      score-matching loss added to the bits/dim (0: likelihood only).
    init_family: finetune_noise: a family whose member of each sigma starts
      that level (None: the level below, the first from ``init_from``).
  """

  MODES: ClassVar[Tuple[str, ...]] = ('train', 'sample', 'export', 'finetune_noise')
  DATASETS: ClassVar[Tuple[str, ...]] = ('mnist', 'cifar10', 'melspec')

  model: str = 'glow'
  levels: Optional[int] = None
  steps_per_level: Optional[int] = None
  hidden_channels: Optional[int] = None
  res_blocks: Optional[int] = None
  coupling: Optional[str] = None
  learn_top: Optional[bool] = None
  split_prior: Optional[bool] = None
  preprocessing: Optional[str] = None
  logit_alpha: Optional[float] = None
  optimizer: str = 'adamax'
  warmup_steps: int = 200
  eval_batches: int = 8
  summary: bool = False
  temperature: float = 0.7
  n_grid: int = 36
  steps_per_sigma: int = 1000
  score_matching_weight: float = 0.0
  init_family: Optional[str] = None

  def __post_init__(self):
    super().__post_init__()
    checks.check_choice(self.model, 'model', tuple(_ARCH_FIELDS))
    checks.check_choice(self.optimizer, 'optimizer', ('adamax', 'adam'))
    if self.mode == 'train':
      other = set().union(*_ARCH_FIELDS.values()) - set(_ARCH_FIELDS[self.model])
      stray = sorted(n for n in other if getattr(self, n) is not None)
      if stray:
        raise ParameterError(
            f'--model={self.model} has no {", ".join("--" + n for n in stray)}')
    elif self.mode == 'finetune_noise':
      if not self.workdir or not self.init_from:
        raise ParameterError('--mode=finetune_noise needs --init_from (the clean prior) and '
                             '--workdir (the family folder)')
      checks.check_positive(self, 'batch_size', 'steps_per_sigma', 'num_levels',
                                'learning_rate')
    if not (np.isfinite(self.score_matching_weight) and self.score_matching_weight >= 0):
      raise ParameterError('--score_matching_weight must be a finite number >= 0, got '
                           f'{self.score_matching_weight!r}')
    if self.mode != 'finetune_noise':
      for name in ('init_family',) + (('score_matching_weight',)
                                       if self.score_matching_weight else ()):
        if getattr(self, name):
          raise ParameterError(f'--{name} is a --mode=finetune_noise flag '
                               f'(--mode={self.mode})')

  def flow_config(self, image_shape):
    """The GlowConfig / RealNVPConfig asked for, for images of ``image_shape``.

    Unset fields take the model's defaults; unset ``levels`` takes 3, or fewer
    when the image size allows fewer 2x2 squeezes (MNIST 28 x 28: 2).
    """
    kwargs = {name: getattr(self, name) for name in _ARCH_FIELDS[self.model]
              if getattr(self, name) is not None}
    if 'levels' not in kwargs:
      kwargs['levels'] = min(_DEFAULT_LEVELS, utils.max_levels(*image_shape[:2]))
    return export.flow_config(self.model, **kwargs)


def run(config: GlowRunConfig):
  """Runs ``config.mode``: train metrics, samples, the export folder or the family."""
  return {'train': train, 'sample': sample, 'export': export_run,
          'finetune_noise': finetune_noise}[config.mode](config)


def _datasets(config: GlowRunConfig):
  images = config.dataset != 'melspec'
  data_dir = config.single_data_dir if images else list(config.data_dir or ()) or None
  common = dict(data_dir=data_dir, mnist_source=config.mnist_source, dequantize=images)
  train_ds, info = datasets.get_dataset(config.dataset, 'train', batch_size=config.batch_size,
                                        repeat=True, drop_remainder=True, seed=config.seed,
                                        **common)
  # A fixed seed: the test set's dequantisation noise is the same at every
  # evaluation, so test bits/dim are comparable across steps.
  test_ds, _ = datasets.get_dataset(config.dataset, 'test', batch_size=config.batch_size,
                                    shuffle=False, seed=config.seed + 1000, **common)
  print(f"data: {config.dataset} ({info.get('note', info.get('source'))}), "
        f"{info.get('num_examples')} training examples, shape {info['image_shape']}",
        flush=True)
  return train_ds, test_ds, info


def _loop_config(config: GlowRunConfig, total_steps: int) -> loop.LoopConfig:
  return loop.LoopConfig(
      workdir=config.workdir, total_steps=total_steps, log_every=config.log_every,
      eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
      ema_decay=config.ema_decay, grad_clip_norm=config.grad_clip_norm, seed=config.seed,
      eval_batches=config.eval_batches,
      progress=sys.stderr.isatty() or bool(os.environ.get('FORCE_PROGRESS')))


def _dataset_description(config: GlowRunConfig, info):
  features = info.get('features')
  return {'name': config.dataset, 'source': info.get('source'),
          'features': features.to_dict() if features is not None else None}


def _colormap(config: GlowRunConfig) -> Optional[str]:
  return 'magma' if config.dataset == 'melspec' else None


def train(config: GlowRunConfig):
  """Builds data, the train config and the task, and runs the shared loop."""
  checks.check_output_dir(config.workdir, 'workdir')
  train_ds, test_ds, info = _datasets(config)
  shape = tuple(info['image_shape'])
  train_config = export.FlowTrainConfig(
      flow=config.flow_config(shape), image_shape=shape,
      learning_rate=config.learning_rate, optimizer=config.optimizer,
      warmup_steps=config.warmup_steps,
      num_bins=256 if config.dataset != 'melspec' else None,
      n_grid=config.n_grid, temperature=config.temperature,
      dataset=_dataset_description(config, info), seed=config.seed)
  with tfrecords.naming_damaged_records():   # names a damaged shard, as the loop does
    init_batch = next(iter(train_ds))

  def task_fn():
    task = train_lib.make_task(train_config, init_batch=init_batch,
                               colormap=_colormap(config), init_from=config.init_from)
    if config.summary:
      utils.print_summary(task.model)
    else:
      print(f'{train_config.model_name}: {train_config.flow}, '
            f'{utils.num_parameters(task.model):,d} parameters', flush=True)
    return task

  metrics = loop.train(task_fn, train_ds, _loop_config(config, config.steps),
                       eval_data=test_ds, strategy=get_strategy(config.strategy))
  metrics = train_lib.add_bits_per_dim(config.workdir, metrics)
  print('final:', {k: metrics[k] for k in sorted(metrics)}, flush=True)
  return metrics


def finetune_noise(config: GlowRunConfig):
  """Fine-tunes one flow per noise level from ``init_from`` into ``workdir`` (a family)."""
  checks.check_output_dir(config.workdir, 'workdir')
  sigmas = np.geomspace(config.sigma_max, config.sigma_min, config.num_levels)
  train_ds, test_ds, _ = _datasets(config)
  family = train_lib.finetune_noise(
      config.init_from, config.workdir, sigmas, train_data=train_ds, eval_data=test_ds,
      loop_config=_loop_config(config, config.steps_per_sigma),
      learning_rate=config.learning_rate, warmup_steps=config.warmup_steps,
      score_matching_weight=config.score_matching_weight, init_family=config.init_family,
      n_grid=config.n_grid, temperature=config.temperature, colormap=_colormap(config),
      strategy=get_strategy(config.strategy), extra={'command': config.command})
  print(f"family of {len(family['levels'])} flows (sigma {family['sigmas'][0]:.4g} .. "
        f"{family['sigmas'][-1]:.4g}) in {config.workdir}", flush=True)
  return family


def sample(config: GlowRunConfig) -> np.ndarray:
  """Draws tempered samples from an exported flow; writes a PNG grid and an .npy."""
  distribution, meta = export.load_flow(config.prior)
  draw = tf.function(lambda seed: model_lib.sample(distribution, config.n_samples, seed=seed,
                                                   temperature=config.temperature))
  samples = draw(tf.constant([config.seed, 0x5A], tf.int32)).numpy()
  samples = np.clip(np.nan_to_num(samples, nan=0.0), 0.0, 1.0).astype(np.float32)
  figures.save_sample_grid(config.out, samples, meta)
  print(f'wrote {config.out} ({config.n_samples} samples, temperature {config.temperature})',
        flush=True)
  return samples


def export_run(config: GlowRunConfig) -> str:
  """Exports the EMA weights of ``config.workdir`` to ``config.prior``; returns the folder."""
  out = export.export_prior(config.workdir, config.prior, extra={'command': config.command})
  print(f'exported EMA weights of {config.workdir} to {out}', flush=True)
  return out

