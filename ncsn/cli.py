"""What ``train_ncsn.py`` does, as library functions taking an absl FLAGS-like
object (any object with the flag attributes; library code never imports FLAGS)."""

import os
import sys

import numpy as np
import tensorflow as tf

from ncsn import schedules
from ncsn import train_lib
from ncsn.model import ScoreNetConfig
from ncsn.sampling import make_sampler
from pipeline import cli_errors
from pipeline import compute
from pipeline import datasets
from pipeline import figures as image_utils
from pipeline.errors import ParameterError
from training import loop
from training.strategy import get_strategy


def _precision(flags) -> str:
  return compute.resolve_precision(flags.precision, bfloat16=flags.bfloat16)


def _net_config(flags) -> ScoreNetConfig:
  if flags.arch == 'refinenet':
    return ScoreNetConfig(ngf=flags.ngf, conditional=flags.variant == 'v1')
  try:
    mult = tuple(int(m) for m in flags.channel_mult)
  except ValueError as e:
    raise ParameterError(f'--channel_mult must be integers, got {flags.channel_mult}') from e
  return ScoreNetConfig(ngf=flags.ngf, conditional=flags.variant == 'v1', arch='unet',
                        channel_mult=mult, num_res_blocks=flags.num_res_blocks)


def _schedule(flags, train_ds_unbatched):
  if not flags.v2_schedule:
    return schedules.NoiseSchedule(flags.sigma_max, flags.sigma_min, flags.num_levels)
  xs = np.stack([x.numpy() for x in train_ds_unbatched.take(2000)])
  return schedules.ncsn_v2(xs, sigma_min=flags.sigma_min)


def train_from_flags(flags):
  """Builds data, config and task from flags and runs the shared loop."""
  if not flags.workdir:
    raise ParameterError('--workdir is required for training')
  cli_errors.check_positive(flags, 'batch_size', 'steps', 'log_every', 'eval_every',
                            'checkpoint_every', 'learning_rate')
  cli_errors.check_output_dir(flags.workdir, 'workdir')
  data_dir = flags.data_dir
  mel = flags.dataset in ('melspec', 'audio')
  if not mel and data_dir:
    data_dir = data_dir[0]
  common = dict(data_dir=data_dir, mnist_source=flags.mnist_source)
  train_ds, info = datasets.get_dataset(flags.dataset, 'train', batch_size=flags.batch_size,
                                        repeat=True, drop_remainder=True,
                                        seed=flags.seed, **common)
  if flags.eval_data_dir:
    if not mel:
      raise ParameterError('--eval_data_dir applies to --dataset=melspec or audio')
    test_ds, eval_info = datasets.get_dataset(
        flags.dataset, 'all', batch_size=flags.batch_size, shuffle=False,
        data_dir=flags.eval_data_dir, features=info.get('features'))
    print(f"eval: {eval_info.get('num_examples') or 'all'} held-out patches from "
          f"{', '.join(flags.eval_data_dir)}", flush=True)
  else:
    test_ds, _ = datasets.get_dataset(flags.dataset, 'test', batch_size=flags.batch_size,
                                      shuffle=False, **common)
  print(f"data: {flags.dataset} ({info.get('note', info.get('source'))}), "
        f"{info.get('num_examples') or 'streamed'} training examples, shape {info['image_shape']}",
        flush=True)
  schedule = _schedule(flags, train_ds.unbatch()) if flags.v2_schedule else _schedule(flags, None)
  features = info.get('features')
  dataset_desc = {'name': flags.dataset, 'source': info.get('source'),
                  'features': features.to_dict() if features is not None else None}
  config = train_lib.NCSNTrainConfig(
      net=_net_config(flags),
      schedule=schedule, image_shape=tuple(info['image_shape']),
      learning_rate=flags.learning_rate, n_grid=36,
      grid_steps_each=flags.grid_steps_each, step_lr=flags.step_lr,
      dataset=dataset_desc, compute_dtype=_precision(flags),
      seed=flags.seed)
  loop_config = loop.LoopConfig(
      workdir=flags.workdir, total_steps=flags.steps, log_every=flags.log_every,
      eval_every=flags.eval_every, checkpoint_every=flags.checkpoint_every,
      ema_decay=flags.ema_decay, grad_clip_norm=flags.grad_clip_norm, seed=flags.seed,
      eval_batches=4, progress=sys.stderr.isatty() or bool(os.environ.get('FORCE_PROGRESS')))
  colormap = 'magma' if mel else None
  strategy = get_strategy(flags.strategy)
  metrics = loop.train(
      lambda: train_lib.make_task(config, colormap=colormap, init_from=flags.init_from),
      train_ds, loop_config, eval_data=test_ds, strategy=strategy)
  print('final:', {k: metrics[k] for k in sorted(metrics)}, flush=True)
  return metrics


def sample_from_flags(flags):
  """Draws samples from an exported prior and writes a PNG grid and an .npy."""
  if not flags.prior or not flags.out:
    raise ParameterError('--mode=sample needs --prior (folder) and --out (PNG path)')
  cli_errors.check_positive(flags, 'n_samples', 'steps_each', 'step_lr')
  model = train_lib.load_score_model(flags.prior, compute_dtype=_precision(flags))
  meta = model.prior_metadata
  shape = tuple(meta['image_shape'])
  sampler = make_sampler(lambda x, labels: model(x, labels), model.sigmas.numpy(),
                         n_steps_each=flags.steps_each, step_lr=flags.step_lr)
  # A batch of one loses its static batch size inside the score network, which
  # tf.while_loop refuses ("enters the loop with shape (1, ...)"): draw two, keep one.
  n_draw = max(int(flags.n_samples), 2)
  x0 = tf.random.stateless_uniform((n_draw,) + shape, [flags.seed, 7])
  samples = sampler(x0, tf.constant([flags.seed, 11], tf.int32)).numpy()[:flags.n_samples]
  image_utils.save_sample_grid(flags.out, samples, meta)
  print(f'wrote {flags.out} ({flags.n_samples} samples, {flags.steps_each} steps x '
        f'{len(model.sigmas.numpy())} levels)', flush=True)
  return samples


def export_from_flags(flags):
  if not flags.workdir or not flags.prior:
    raise ParameterError('--mode=export needs --workdir (run) and --prior (output folder)')
  out = train_lib.export_prior(flags.workdir, flags.prior,
                               extra={'command': ' '.join(sys.argv)})
  print(f'exported EMA weights of {flags.workdir} to {out}', flush=True)
