"""What ``train_ncsn.py`` does: its run config and ``run(config)``.

  config = NCSNRunConfig(workdir='runs/ncsn_mnist', ngf=16, steps=2000)
  run(config)                                   # train (resumes an existing workdir)
  run(NCSNRunConfig(mode='export', workdir='runs/ncsn_mnist', prior='priors/ncsn_mnist'))

The script maps its flags onto :class:`NCSNRunConfig` (fields are named after
the flags; ``commandline.flag_groups``); nothing here reads flags.
"""

import dataclasses
import os
import sys
from typing import ClassVar, Optional, Tuple

import numpy as np
import tensorflow as tf

from ncsn import export
from ncsn import schedules
from ncsn import train_lib
from ncsn.model import ScoreNetConfig
from ncsn.sampling import make_sampler
from common import checks
from common import compute
from pipeline import datasets
from common import figures
from common.errors import ParameterError
from training.run_config import TrainingRunConfig
from training import loop
from training.strategy import get_strategy

MEL_DATASETS = ('melspec', 'audio')


@dataclasses.dataclass(frozen=True)
class NCSNRunConfig(TrainingRunConfig):
  """One ``train_ncsn.py`` run: train, sample or export (shared fields: the base class).

  Attributes:
    eval_data_dir: melspec / audio: held-out patch folder(s) for the eval loss
      (None: the 10 % test share of ``data_dir``).
    variant: 'v1' (level-conditional) or 'v2' (s(x) / sigma).
    arch: 'refinenet' or 'unet'.
    ngf: base width.
    channel_mult: U-Net: width per resolution in units of ``ngf`` (ints, or
      the strings of ``--channel_mult``).
    num_res_blocks: U-Net: residual blocks per resolution.
    v2_schedule: choose ``sigma_max`` and the levels from the data (NCSNv2).
    precision, bfloat16: the network compute precision
      (``common.compute.resolve_precision``; ``bfloat16`` is the deprecated alias).
    steps_each: Langevin steps per level in sample mode.
    step_lr: Langevin eps.
    grid_steps_each: Langevin steps per level of the preview grids.
  """

  MODES: ClassVar[Tuple[str, ...]] = ('train', 'sample', 'export')
  DATASETS: ClassVar[Tuple[str, ...]] = ('mnist', 'cifar10', 'melspec', 'audio')

  eval_data_dir: Optional[Tuple[str, ...]] = None
  variant: str = 'v1'
  arch: str = 'refinenet'
  ngf: int = 32
  channel_mult: Tuple[int, ...] = (1, 2, 2, 4)
  num_res_blocks: int = 1
  v2_schedule: bool = False
  precision: str = 'auto'
  bfloat16: Optional[bool] = None
  steps_each: int = 100
  step_lr: float = 2e-5
  grid_steps_each: int = 20

  def __post_init__(self):
    super().__post_init__()
    object.__setattr__(self, 'eval_data_dir', checks.as_tuple(self.eval_data_dir))
    checks.check_choice(self.variant, 'variant', ('v1', 'v2'))
    checks.check_choice(self.arch, 'arch', ('refinenet', 'unet'))
    try:
      object.__setattr__(self, 'channel_mult', tuple(int(m) for m in self.channel_mult))
    except ValueError as e:
      raise ParameterError(
          f'--channel_mult must be integers, got {list(self.channel_mult)}') from e
    if self.mode == 'train' and self.eval_data_dir and self.dataset not in MEL_DATASETS:
      raise ParameterError('--eval_data_dir applies to --dataset=melspec or audio')
    if self.mode == 'sample':
      checks.check_positive(self, 'n_samples', 'steps_each', 'step_lr')

  def net_config(self) -> ScoreNetConfig:
    """The score network's architecture."""
    if self.arch == 'refinenet':
      return ScoreNetConfig(ngf=self.ngf, conditional=self.variant == 'v1')
    return ScoreNetConfig(ngf=self.ngf, conditional=self.variant == 'v1', arch='unet',
                          channel_mult=self.channel_mult, num_res_blocks=self.num_res_blocks)

  def compute_dtype(self) -> str:
    return compute.resolve_precision(self.precision, bfloat16=self.bfloat16)


def run(config: NCSNRunConfig):
  """Runs ``config.mode``: the train metrics, the drawn samples, or the export folder."""
  return {'train': train, 'sample': sample, 'export': export_run}[config.mode](config)


def _schedule(config: NCSNRunConfig, train_ds_unbatched):
  if not config.v2_schedule:
    return schedules.NoiseSchedule(config.sigma_max, config.sigma_min, config.num_levels)
  xs = np.stack([x.numpy() for x in train_ds_unbatched.take(2000)])
  return schedules.ncsn_v2(xs, sigma_min=config.sigma_min)


def train(config: NCSNRunConfig):
  """Builds data, the train config and the task, and runs the shared loop."""
  checks.check_output_dir(config.workdir, 'workdir')
  mel = config.dataset in MEL_DATASETS
  common = dict(data_dir=list(config.data_dir or ()) or None if mel else config.single_data_dir,
                mnist_source=config.mnist_source)
  train_ds, info = datasets.get_dataset(config.dataset, 'train', batch_size=config.batch_size,
                                        repeat=True, drop_remainder=True,
                                        seed=config.seed, **common)
  if config.eval_data_dir:
    test_ds, eval_info = datasets.get_dataset(
        config.dataset, 'all', batch_size=config.batch_size, shuffle=False,
        data_dir=list(config.eval_data_dir), features=info.get('features'))
    print(f"eval: {eval_info.get('num_examples') or 'all'} held-out patches from "
          f"{', '.join(config.eval_data_dir)}", flush=True)
  else:
    test_ds, _ = datasets.get_dataset(config.dataset, 'test', batch_size=config.batch_size,
                                      shuffle=False, **common)
  print(f"data: {config.dataset} ({info.get('note', info.get('source'))}), "
        f"{info.get('num_examples') or 'streamed'} training examples, shape {info['image_shape']}",
        flush=True)
  schedule = _schedule(config, train_ds.unbatch() if config.v2_schedule else None)
  features = info.get('features')
  dataset_desc = {'name': config.dataset, 'source': info.get('source'),
                  'features': features.to_dict() if features is not None else None}
  train_config = export.NCSNTrainConfig(
      net=config.net_config(),
      schedule=schedule, image_shape=tuple(info['image_shape']),
      learning_rate=config.learning_rate, n_grid=36,
      grid_steps_each=config.grid_steps_each, step_lr=config.step_lr,
      dataset=dataset_desc, compute_dtype=config.compute_dtype(),
      seed=config.seed)
  loop_config = loop.LoopConfig(
      workdir=config.workdir, total_steps=config.steps, log_every=config.log_every,
      eval_every=config.eval_every, checkpoint_every=config.checkpoint_every,
      ema_decay=config.ema_decay, grad_clip_norm=config.grad_clip_norm, seed=config.seed,
      eval_batches=4, progress=sys.stderr.isatty() or bool(os.environ.get('FORCE_PROGRESS')))
  colormap = 'magma' if mel else None
  strategy = get_strategy(config.strategy)
  metrics = loop.train(
      lambda: train_lib.make_task(train_config, colormap=colormap, init_from=config.init_from),
      train_ds, loop_config, eval_data=test_ds, strategy=strategy)
  print('final:', {k: metrics[k] for k in sorted(metrics)}, flush=True)
  return metrics


def sample(config: NCSNRunConfig) -> np.ndarray:
  """Draws samples from an exported prior and writes a PNG grid and an .npy."""
  model = export.load_score_model(config.prior, compute_dtype=config.compute_dtype())
  meta = model.prior_metadata
  shape = tuple(meta['image_shape'])
  sampler = make_sampler(lambda x, labels: model(x, labels), model.sigmas.numpy(),
                         n_steps_each=config.steps_each, step_lr=config.step_lr)
  # A batch of one loses its static batch size inside the score network, which
  # tf.while_loop refuses ("enters the loop with shape (1, ...)"): draw two, keep one.
  n_draw = max(int(config.n_samples), 2)
  x0 = tf.random.stateless_uniform((n_draw,) + shape, [config.seed, 7])
  samples = sampler(x0, tf.constant([config.seed, 11], tf.int32)).numpy()[:config.n_samples]
  figures.save_sample_grid(config.out, samples, meta)
  print(f'wrote {config.out} ({config.n_samples} samples, {config.steps_each} steps x '
        f'{len(model.sigmas.numpy())} levels)', flush=True)
  return samples


def export_run(config: NCSNRunConfig) -> str:
  """Exports the EMA weights of ``config.workdir`` to ``config.prior``; returns the folder."""
  out = export.export_prior(config.workdir, config.prior, extra={'command': config.command})
  print(f'exported EMA weights of {config.workdir} to {out}', flush=True)
  return out

