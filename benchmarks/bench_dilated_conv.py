"""Dilated convolutions: TensorFlow's native kernel vs the space-to-batch form.

``ncsn.layers.Conv2D`` uses the native dilated convolution where oneDNN runs
(it has a gradient there) and the space-to-batch form elsewhere (TensorFlow's
plain CPU kernels have no dilated gradient). This measures both, in one run,
interleaved round by round, on a RefineNet score network: a forward call and
a DSM training step, float32 and bfloat16. Without oneDNN the native
training step fails (reported as such) and only its forward call is timed.

  python benchmarks/bench_dilated_conv.py                       # 28 x 28, ngf 32
  python benchmarks/bench_dilated_conv.py --shape=96,64,1 --ngf=16 --batch_size=16
  TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/bench_dilated_conv.py  # the plain kernels
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

from ncsn import layers
from ncsn.losses import dsm_loss
from ncsn.model import ScoreNetConfig, ScoreNetwork
from common import compute

FLAGS = flags.FLAGS
flags.DEFINE_list('shape', ['28', '28', '1'], 'height,width,channels of the input.')
flags.DEFINE_integer('ngf', 32, 'RefineNet width.')
flags.DEFINE_integer('batch_size', 64, 'Examples per call.')
flags.DEFINE_integer('repeats', 7, 'Timed rounds; medians are reported.')
flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Compute dtypes to time.')

MODES = ('native', 'space_to_batch')


def _build(model, mode, x0, labels, train):
  layers.set_dilated_conv_mode(mode)
  if train:
    def fn(x):
      with tf.GradientTape() as tape:
        loss, _ = dsm_loss(lambda x, l: model(x, l, training=True), x, model.sigmas, [1, 2])
      return tape.gradient(loss, model.trainable_variables)[0]
  else:
    def fn(x):
      return model(x, labels)
  fn = tf.function(fn)
  try:
    fn(x0).numpy()            # trace with this mode, warm up
    return fn
  except tf.errors.InvalidArgumentError as e:
    return str(e).strip().splitlines()[0][:90]
  finally:
    layers.set_dilated_conv_mode('auto')


def main(argv):
  del argv
  shape = tuple(int(v) for v in FLAGS.shape)
  b = FLAGS.batch_size
  x0 = tf.random.stateless_uniform((b,) + shape, [0, 1])
  labels = tf.random.stateless_uniform([b], [0, 2], 0, 10, tf.int32)
  fns, times, ref = {}, {}, {}
  for dtype in FLAGS.dtypes:
    model = ScoreNetwork(ScoreNetConfig(ngf=FLAGS.ngf), np.geomspace(1, 0.01, 10), shape,
                         compute_dtype=dtype)
    for train in (False, True):
      for mode in MODES:
        key = (dtype, train, mode)
        fns[key] = _build(model, mode, x0, labels, train)
        times[key] = []
      if not train:
        outs = [fns[(dtype, False, m)](x0).numpy() for m in MODES]
        ref[dtype] = float(np.abs(outs[0] - outs[1]).max() / np.abs(outs[0]).max())
  for _ in range(FLAGS.repeats):
    for key, fn in fns.items():
      if callable(fn):
        t0 = time.perf_counter()
        fn(x0).numpy()
        times[key].append(time.perf_counter() - t0)
  print(f'\n{compute.cpu_description()}; RefineNet ngf {FLAGS.ngf}, input {shape}, '
        f'batch {b}, medians of {FLAGS.repeats} interleaved rounds\n')
  print('| dtype | call | native (ms) | space-to-batch (ms) | native speed vs s2b | '
        'max diff (rel.) |')
  print('|---|---|---:|---:|---:|---:|')
  for dtype in FLAGS.dtypes:
    for train in (False, True):
      cells = []
      for mode in MODES:
        fn = fns[(dtype, train, mode)]
        cells.append(1e3 * statistics.median(times[(dtype, train, mode)])
                     if callable(fn) else fn)
      ratio = (f'{cells[1] / cells[0]:.2f}x' if all(isinstance(c, float) for c in cells)
               else 'n/a')
      fmt = [f'{c:.1f}' if isinstance(c, float) else f'fails: {c}' for c in cells]
      print(f'| {dtype} | {"DSM train step" if train else "forward"} | {fmt[0]} | {fmt[1]} | '
            f'{ratio} | {ref[dtype]:.1e} |')


if __name__ == '__main__':
  app.run(main)
