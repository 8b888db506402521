"""Size and speed of the discriminative separators (U-Net, Conv-TasNet) on this CPU.

For each named config: trainable parameters, separation time per second of
audio (one ``--seconds`` mixture, batch 1, float32, the compiled forward
call, median of ``--repeats``) and a training step per second of audio (the
config's training batch: U-Net 16 patches, Conv-TasNet 4 x 2 s). The CPU and
its load are printed with the table (docs/baselines.md).

  python benchmarks/bench_baselines.py                        # the default (cpu) configs
  python benchmarks/bench_baselines.py --configs=unet:cpu,unet:paper,convtasnet:cpu,\
convtasnet:paper-small,convtasnet:paper
  python benchmarks/bench_baselines.py --seconds=2 --repeats=1 --no-train   # quick
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import tensorflow as tf

from baselines import convtasnet, separation_losses, unet
from common import compute

FLAGS = flags.FLAGS
flags.DEFINE_list('configs', ['unet:cpu', 'convtasnet:cpu'], 'model:config pairs.')
flags.DEFINE_float('seconds', 10.0, 'Mixture length of the separation timing, s.')
flags.DEFINE_integer('repeats', 3, 'Timed calls; medians are reported.')
flags.DEFINE_bool('train', True, 'Also time a training step.')


def _median_s(fn, repeats):
  fn()   # trace + warm up
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def measure(model_name: str, config_name: str, seconds: float, repeats: int, train: bool):
  """``{'params', 'sep_s_per_s', 'train_s_per_s', 'rate'}`` of one config."""
  if model_name == 'unet':
    config = unet.named_config(config_name)
    model = unet.UNet(config)
    batch, n = 16, config.patch_samples
    def loss_fn(mix, src):
      return unet.l1_loss(model, mix, src, training=True, seed=tf.constant([1, 2]))[0]
  else:
    config = convtasnet.named_config(config_name)
    model = convtasnet.ConvTasNet(config)
    batch, n = 4, 2 * config.sample_rate
    def loss_fn(mix, src):
      return separation_losses.separation_loss('pit_si_snr', model(mix), src)[0]
  rate = config.sample_rate
  x = tf.random.stateless_normal([1, int(seconds * rate)], [0, 1])
  forward = tf.function(lambda x: model(x))
  sep = _median_s(lambda: forward(x).numpy(), repeats) / seconds
  out = {'params': int(sum(v.shape.num_elements() for v in model.trainable_variables)),
         'rate': rate, 'sep_s_per_s': sep, 'train_s_per_s': None}
  if train:
    mix = tf.random.stateless_normal([batch, n], [2, 3])
    src = tf.random.stateless_normal([batch, config.n_sources, n], [4, 5])

    @tf.function
    def step():
      with tf.GradientTape() as tape:
        loss = loss_fn(mix, src)
      return tape.gradient(loss, model.trainable_variables)[0]
    out['train_s_per_s'] = _median_s(lambda: step().numpy(), repeats) / (batch * n / rate)
  return out


def main(argv):
  del argv
  print(f'CPU: {compute.cpu_description()}; load average {os.getloadavg()[0]:.1f}')
  print('| model | config | parameters | rate (Hz) | separation s / audio s | '
        'training s / audio s |')
  print('|---|---|---|---|---|---|')
  for spec in FLAGS.configs:
    model_name, _, config_name = spec.partition(':')
    r = measure(model_name, config_name or 'cpu', FLAGS.seconds, FLAGS.repeats, FLAGS.train)
    train = f"{r['train_s_per_s']:.4f}" if r['train_s_per_s'] is not None else '-'
    print(f"| {model_name} | {config_name} | {r['params'] / 1e6:.2f} M | {r['rate']} | "
          f"{r['sep_s_per_s']:.4f} | {train} |", flush=True)


if __name__ == '__main__':
  app.run(main)
