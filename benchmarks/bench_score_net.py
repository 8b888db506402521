"""Speed of one NCSN score-network call: fused norm kernels vs the plain form.

Times, in one run and interleaved round by round, the same network (same
weights) as
  * float32, plain  -- normalisation and ELU op by op, what a direct port of
    the reference network computes,
  * float32, fused  -- norm (+ ELU) as one XLA kernel each (the default),
  * bfloat16, plain -- bfloat16 convolutions, op-by-op norm and bfloat16 ELU,
  * bfloat16, fused -- bfloat16 convolutions, fused float32 norm/ELU kernels
    (what training, sampling and BASIS use with --bfloat16),
and reports medians per call and per example, ratios to float32 plain, and
the largest output difference to float32 plain (relative to its max |s|).

  python benchmarks/bench_score_net.py --prior=assets/priors/ncsn_mnist
  python benchmarks/bench_score_net.py --batch_size=72 --training   # + train step
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

from ncsn import train_lib
from ncsn.losses import dsm_loss
from ncsn.model import ScoreNetConfig, ScoreNetwork
from common import compute

FLAGS = flags.FLAGS
flags.DEFINE_string('prior', None, 'Exported prior folder (default: a fresh net of --ngf).')
flags.DEFINE_integer('ngf', 32, 'Width of the fresh net when --prior is not given.')
flags.DEFINE_integer('batch_size', 72, 'Examples per call (72 = a BASIS step on 36 pairs).')
flags.DEFINE_integer('calls', 5, 'Network calls per timed round (one compiled loop).')
flags.DEFINE_integer('repeats', 7, 'Timed rounds; medians are reported.')
flags.DEFINE_boolean('training', False, 'Also time one DSM training step (gradients).')

VARIANTS = [('float32', False), ('float32', True), ('bfloat16', False), ('bfloat16', True)]


def _model(dtype):
  if FLAGS.prior:
    return train_lib.load_score_model(FLAGS.prior, compute_dtype=dtype)
  return ScoreNetwork(ScoreNetConfig(ngf=FLAGS.ngf), np.geomspace(1, 0.01, 10), (28, 28, 1),
                      compute_dtype=dtype)


def main(argv):
  del argv
  b, n = FLAGS.batch_size, FLAGS.calls
  models = {dtype: _model(dtype) for dtype in ('float32', 'bfloat16')}
  shape = (b,) + models['float32'].image_shape
  x0 = tf.random.stateless_uniform(shape, [0, 1])
  labels = tf.random.stateless_uniform([b], [0, 2], 0, models['float32'].num_levels,
                                       tf.int32)

  def make_call(model, fused):
    def loop(x):
      def body(t, x):
        # Each variant's flag is set on the model before tracing and read then.
        return t + 1, x + 1e-6 * model(x, labels)
      return tf.while_loop(lambda t, x: t < n, body, (tf.constant(0), x))[1]
    model.set_fused_norm(fused)
    fn = tf.function(loop)
    fn.get_concrete_function(x0)     # trace now, with this variant's flag
    return fn

  def make_train(model, fused):
    variables = model.trainable_variables
    sigmas = model.sigmas

    def step(x):
      with tf.GradientTape() as tape:
        loss, _ = dsm_loss(lambda x, l: model(x, l, training=True), x, sigmas, [1, 2])
      return tape.gradient(loss, variables)[0]
    model.set_fused_norm(fused)
    fn = tf.function(step)
    fn.get_concrete_function(x0)
    return fn

  calls = {v: make_call(models[v[0]], v[1]) for v in VARIANTS}
  ref_model = models['float32']
  ref_model.set_fused_norm(False)
  ref = ref_model(x0, labels).numpy()
  diffs = {}
  for dtype, fused in VARIANTS:
    models[dtype].set_fused_norm(fused)
    out = models[dtype](x0, labels).numpy()
    diffs[(dtype, fused)] = float(np.abs(out - ref).max() / np.abs(ref).max())
  trains = {}
  if FLAGS.training:
    trains = {v: make_train(models[v[0]], v[1]) for v in VARIANTS}

  times = {v: [] for v in VARIANTS}
  train_times = {v: [] for v in trains}
  for v in VARIANTS:              # warm-up (first runs allocate, XLA compiles)
    calls[v](x0).numpy()
    if v in trains:
      trains[v](x0).numpy()
  for _ in range(FLAGS.repeats):
    for v in VARIANTS:
      t0 = time.perf_counter()
      calls[v](x0).numpy()
      times[v].append((time.perf_counter() - t0) / n)
      if v in trains:
        t0 = time.perf_counter()
        trains[v](x0).numpy()
        train_times[v].append(time.perf_counter() - t0)

  base = statistics.median(times[VARIANTS[0]])
  print(f'\n{compute.cpu_description()}; load average {os.getloadavg()[0]:.1f}; network {ref_model.num_parameters():,} '
        f'parameters, batch {b}, {n} calls per round, medians of {FLAGS.repeats} '
        'interleaved rounds\n')
  print('| variant | ms per call | ms per example | speed vs float32 plain | '
        'max diff to float32 plain (rel.) |')
  print('|---|---:|---:|---:|---:|')
  for v in VARIANTS:
    t = statistics.median(times[v])
    print(f'| {v[0]}, {"fused" if v[1] else "plain"} | {1e3 * t:.1f} | '
          f'{1e3 * t / b:.2f} | {base / t:.2f}x | {diffs[v]:.1e} |')
  if trains:
    tbase = statistics.median(train_times[VARIANTS[0]])
    print('\n| variant | DSM training step (s) | speed vs float32 plain |')
    print('|---|---:|---:|')
    for v in VARIANTS:
      t = statistics.median(train_times[v])
      print(f'| {v[0]}, {"fused" if v[1] else "plain"} | {t:.3f} | {tbase / t:.2f}x |')


if __name__ == '__main__':
  app.run(main)
