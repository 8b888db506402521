"""What ``train_glow.py`` does, as library functions taking an absl FLAGS-like
object (any object with the flag attributes; library code never imports FLAGS)."""

import os
import sys

import numpy as np
import tensorflow as tf

from flow_models import model as model_lib
from flow_models import train_lib
from flow_models import utils
from pipeline import cli_errors
from pipeline import datasets
from pipeline import figures as image_utils
from pipeline.errors import ParameterError
from training import loop
from training.strategy import get_strategy

# Architecture flags that default to the model's own defaults when unset.
_ARCH_FLAGS = {'glow': ('levels', 'steps_per_level', 'hidden_channels', 'coupling',
                        'learn_top', 'split_prior', 'preprocessing', 'logit_alpha'),
               'realnvp': ('levels', 'steps_per_level', 'hidden_channels', 'res_blocks',
                           'coupling', 'preprocessing', 'logit_alpha')}
_DEFAULT_LEVELS = 3


def _datasets(flags):
  data_dir = flags.data_dir
  if flags.dataset != 'melspec' and data_dir:
    data_dir = data_dir[0]
  images = flags.dataset != 'melspec'
  common = dict(data_dir=data_dir, mnist_source=flags.mnist_source, dequantize=images)
  train_ds, info = datasets.get_dataset(flags.dataset, 'train', batch_size=flags.batch_size,
                                        repeat=True, drop_remainder=True, seed=flags.seed,
                                        **common)
  # A fixed seed: the test set's dequantisation noise is the same at every
  # evaluation, so test bits/dim are comparable across steps.
  test_ds, _ = datasets.get_dataset(flags.dataset, 'test', batch_size=flags.batch_size,
                                    shuffle=False, seed=flags.seed + 1000, **common)
  print(f"data: {flags.dataset} ({info.get('note', info.get('source'))}), "
        f"{info.get('num_examples')} training examples, shape {info['image_shape']}",
        flush=True)
  return train_ds, test_ds, info


def flow_config_from_flags(flags, image_shape):
  """The GlowConfig / RealNVPConfig the architecture flags ask for.

  Unset flags take the model's defaults; unset ``levels`` takes 3, or fewer
  when the image size allows fewer 2x2 squeezes (MNIST 28 x 28: 2).
  """
  other = set().union(*_ARCH_FLAGS.values()) - set(_ARCH_FLAGS[flags.model])
  stray = sorted(n for n in other if getattr(flags, n, None) is not None)
  if stray:
    raise ParameterError(f'--model={flags.model} has no {", ".join("--" + n for n in stray)}')
  kwargs = {}
  for name in _ARCH_FLAGS[flags.model]:
    value = getattr(flags, name, None)
    if value is not None:
      kwargs[name] = value
  if 'levels' not in kwargs:
    kwargs['levels'] = min(_DEFAULT_LEVELS, utils.max_levels(*image_shape[:2]))
  return train_lib.flow_config(flags.model, **kwargs)


def _loop_config(flags, workdir, total_steps):
  return loop.LoopConfig(
      workdir=workdir, total_steps=total_steps, log_every=flags.log_every,
      eval_every=flags.eval_every, checkpoint_every=flags.checkpoint_every,
      ema_decay=flags.ema_decay, grad_clip_norm=flags.grad_clip_norm, seed=flags.seed,
      eval_batches=flags.eval_batches,
      progress=sys.stderr.isatty() or bool(os.environ.get('FORCE_PROGRESS')))


def _dataset_description(flags, info):
  features = info.get('features')
  return {'name': flags.dataset, 'source': info.get('source'),
          'features': features.to_dict() if features is not None else None}


def train_from_flags(flags):
  """Builds data, config and task from flags and runs the shared loop."""
  if not flags.workdir:
    raise ParameterError('--workdir is required for training')
  cli_errors.check_positive(flags, 'batch_size', 'steps', 'log_every', 'eval_every',
                            'checkpoint_every', 'learning_rate')
  cli_errors.check_output_dir(flags.workdir, 'workdir')
  train_ds, test_ds, info = _datasets(flags)
  shape = tuple(info['image_shape'])
  config = train_lib.FlowTrainConfig(
      flow=flow_config_from_flags(flags, shape), image_shape=shape,
      learning_rate=flags.learning_rate, optimizer=flags.optimizer,
      warmup_steps=flags.warmup_steps,
      num_bins=256 if flags.dataset != 'melspec' else None,
      n_grid=flags.n_grid, temperature=flags.temperature,
      dataset=_dataset_description(flags, info), seed=flags.seed)
  init_batch = next(iter(train_ds))
  colormap = 'magma' if flags.dataset == 'melspec' else None

  def task_fn():
    task = train_lib.make_task(config, init_batch=init_batch, colormap=colormap,
                               init_from=flags.init_from)
    if flags.summary:
      utils.print_summary(task.model)
    else:
      print(f'{config.model_name}: {config.flow}, '
            f'{utils.num_parameters(task.model):,d} parameters', flush=True)
    return task

  metrics = loop.train(task_fn, train_ds, _loop_config(flags, flags.workdir, flags.steps),
                       eval_data=test_ds, strategy=get_strategy(flags.strategy))
  metrics = train_lib.add_bits_per_dim(flags.workdir, metrics)
  print('final:', {k: metrics[k] for k in sorted(metrics)}, flush=True)
  return metrics


def finetune_noise_from_flags(flags):
  """Fine-tunes one flow per noise level from --init_from into --workdir (a family)."""
  if not flags.workdir or not flags.init_from:
    raise ParameterError('--mode=finetune_noise needs --init_from (the clean prior) and '
                         '--workdir (the family folder)')
  cli_errors.check_positive(flags, 'batch_size', 'steps_per_sigma', 'num_levels',
                            'learning_rate')
  cli_errors.check_output_dir(flags.workdir, 'workdir')
  sigmas = np.geomspace(flags.sigma_max, flags.sigma_min, flags.num_levels)
  train_ds, test_ds, info = _datasets(flags)
  family = train_lib.finetune_noise(
      flags.init_from, flags.workdir, sigmas, train_data=train_ds, eval_data=test_ds,
      loop_config=_loop_config(flags, flags.workdir, flags.steps_per_sigma),
      learning_rate=flags.learning_rate, warmup_steps=flags.warmup_steps,
      n_grid=flags.n_grid, temperature=flags.temperature,
      colormap='magma' if flags.dataset == 'melspec' else None,
      strategy=get_strategy(flags.strategy), extra={'command': ' '.join(sys.argv)})
  print(f"family of {len(family['levels'])} flows (sigma {family['sigmas'][0]:.4g} .. "
        f"{family['sigmas'][-1]:.4g}) in {flags.workdir}", flush=True)
  return family


def sample_from_flags(flags):
  """Draws tempered samples from an exported flow; writes a PNG grid and an .npy."""
  if not flags.prior or not flags.out:
    raise ParameterError('--mode=sample needs --prior (folder) and --out (PNG path)')
  distribution, meta = train_lib.load_flow(flags.prior)
  draw = tf.function(lambda seed: model_lib.sample(distribution, flags.n_samples, seed=seed,
                                                   temperature=flags.temperature))
  samples = draw(tf.constant([flags.seed, 0x5A], tf.int32)).numpy()
  samples = np.clip(np.nan_to_num(samples, nan=0.0), 0.0, 1.0).astype(np.float32)
  image_utils.save_sample_grid(flags.out, samples, meta)
  print(f'wrote {flags.out} ({flags.n_samples} samples, temperature {flags.temperature})',
        flush=True)
  return samples


def export_from_flags(flags):
  if not flags.workdir or not flags.prior:
    raise ParameterError('--mode=export needs --workdir (run) and --prior (output folder)')
  out = train_lib.export_prior(flags.workdir, flags.prior,
                               extra={'command': ' '.join(sys.argv)})
  print(f'exported EMA weights of {flags.workdir} to {out}', flush=True)
