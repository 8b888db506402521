"""Speed of annealed Langevin sampling and of BASIS separation.

Compares, in one run, on the same score network and batch:
  * compiled: the whole schedule in one tf.function (ncsn.make_sampler),
  * python loop: a Python loop calling a compiled single Langevin step,
  * eager: the same loop with no tf.function at all (what a straight port of
    the original PyTorch loop gives),
and reports the overhead of one Langevin step and of one BASIS step (K = 2,
both sources in one network call) over one bare forward pass of the network.

  python benchmarks/bench_sampling.py                    # shipped-size net, batch 36
  python benchmarks/bench_sampling.py --prior=assets/priors/ncsn_mnist
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import numpy as np
import tensorflow as tf

from basis import NCSNPrior, Separator
from ncsn import train_lib
from ncsn.model import ScoreNetConfig, ScoreNetwork
from ncsn.sampling import annealed_langevin, langevin_step_sizes

FLAGS = flags.FLAGS
flags.DEFINE_string('prior', None, 'Exported prior folder (default: a fresh ngf=32 net).')
flags.DEFINE_integer('ngf', 32, 'Width of the fresh net when --prior is not given.')
flags.DEFINE_integer('batch_size', 36, 'Samples (sampling) / mixtures (BASIS) per batch.')
flags.DEFINE_integer('steps', 50, 'Langevin steps per timed run (5 levels x 10).')
flags.DEFINE_integer('eager_steps', 5, 'Steps of the (slow) eager loop.')
flags.DEFINE_integer('repeats', 5, 'Timed repeats; medians are reported.')
flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'], 'Network compute dtype.')


def _median_time(fn, repeats):
  fn()  # warm-up / trace
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def main(argv):
  del argv
  if FLAGS.prior:
    model = train_lib.load_score_model(FLAGS.prior, compute_dtype=FLAGS.dtype)
  else:
    model = ScoreNetwork(ScoreNetConfig(ngf=FLAGS.ngf), np.geomspace(1, 0.01, 10),
                         (28, 28, 1), compute_dtype=FLAGS.dtype)
  b, n = FLAGS.batch_size, FLAGS.steps
  shape = (b,) + model.image_shape
  sigmas = model.sigmas.numpy()
  levels = 5
  sig = tf.constant(sigmas[:levels], tf.float32)
  each = n // levels
  x0 = tf.random.stateless_uniform(shape, [0, 1])
  labels = tf.zeros([b], tf.int32)
  score = lambda x, l: model(x, l)

  def network_only(x, labels):
    # n network calls in one compiled loop: the floor a sampler step can reach.
    def body(t, x):
      return t + 1, x + 1e-6 * score(x, labels)
    return tf.while_loop(lambda t, x: t < n, body, (tf.constant(0), x))[1]

  fwd = tf.function(network_only)
  t_fwd = _median_time(lambda: fwd(x0, labels).numpy(), FLAGS.repeats) / n
  x0_2 = tf.concat([x0, x0], 0)
  fwd2 = tf.function(network_only)
  t_fwd2 = _median_time(lambda: fwd2(x0_2, tf.zeros([2 * b], tf.int32)).numpy(),
                        FLAGS.repeats) / n

  compiled = tf.function(lambda x: annealed_langevin(
      score, x, sig, n_steps_each=each, step_lr=2e-5, seed=3, denoise=False))
  t_compiled = _median_time(lambda: compiled(x0).numpy(), FLAGS.repeats) / n

  alphas = langevin_step_sizes(sig, 2e-5)

  def one_step(x, level, t):
    z = tf.random.stateless_normal(tf.shape(x), [7, t])
    a = alphas[level]
    return x + a * score(x, tf.fill([b], level)) + tf.sqrt(2 * a) * z

  step_fn = tf.function(one_step)

  def python_loop():
    x = x0
    for t in range(n):
      x = step_fn(x, tf.constant(t // each), tf.constant(t))
    return x.numpy()

  t_loop = _median_time(python_loop, FLAGS.repeats) / n

  def eager_loop():
    x = x0
    for t in range(FLAGS.eager_steps):
      x = one_step(x, tf.constant(0), t)
    return x.numpy()

  t_eager = _median_time(eager_loop, max(1, FLAGS.repeats // 2)) / FLAGS.eager_steps

  prior = NCSNPrior(model)
  sep = Separator([prior, prior], sigmas=sigmas[:levels], steps_per_sigma=each,
                  step_size=3e-5, mixing='mean')
  mixture = tf.random.stateless_uniform(shape, [2, 2])
  t_basis = _median_time(lambda: sep(mixture, seed=1).numpy(), FLAGS.repeats) / n

  full_steps = 10 * 100
  rows = [
      ('network call, batch B (in a compiled loop)', t_fwd, '1.00'),
      ('Langevin step, compiled schedule', t_compiled, f'{t_compiled / t_fwd:.3f}'),
      ('Langevin step, Python loop of compiled steps', t_loop, f'{t_loop / t_fwd:.3f}'),
      ('Langevin step, eager', t_eager, f'{t_eager / t_fwd:.3f}'),
      ('network call, batch 2B (in a compiled loop)', t_fwd2, '1.00'),
      ('BASIS step (K=2), compiled schedule', t_basis, f'{t_basis / t_fwd2:.3f}'),
  ]
  cpu = 'unknown CPU'
  if os.path.exists('/proc/cpuinfo'):
    for line in open('/proc/cpuinfo'):
      if line.startswith('model name'):
        cpu = line.split(':', 1)[1].strip()
        break
  print(f'\n{cpu}, {os.cpu_count()} cores; network {model.num_parameters():,} '
        f'parameters ({FLAGS.dtype}), B = {b}, {n} timed steps, medians of '
        f'{FLAGS.repeats}\n')
  print('| what | seconds per step | ratio to the network call |')
  print('|---|---|---|')
  for name, t, r in rows:
    print(f'| {name} | {t:.4f} | {r} |')
  print(f'\ncompiled vs eager: {t_eager / t_compiled:.1f}x faster; '
        f'compiled vs Python loop: {t_loop / t_compiled:.2f}x')
  print(f'full schedule (10 x 100 steps): {b / (t_compiled * full_steps):.3f} samples/s '
        f'compiled, {b / (t_eager * full_steps):.4f} samples/s eager; BASIS '
        f'{b / (t_basis * full_steps):.3f} mixtures/s')


if __name__ == '__main__':
  app.run(main)
