"""One worker of the two-process MultiWorkerMirroredStrategy test (not a test itself).

  TF_CONFIG=... python tests/multi_worker_child.py WORKDIR OUT.npz STEPS STRATEGY

Trains a 4-parameter linear model with the shared loop for STEPS steps under
STRATEGY ('multi_worker' reads TF_CONFIG; 'default' is one process) and
writes its final weights to OUT.npz.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf

from training import loop
from training import optim
from training.strategy import get_strategy


def main(workdir, out, steps, strategy_name):
  strategy = get_strategy(strategy_name)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 3)).astype(np.float32)
  y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3
  data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(8, drop_remainder=True)
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
  data = data.with_options(options)
  model = {}

  def task_fn():
    model['w'] = w = tf.Variable(tf.zeros([3, 1]), name='w')
    model['b'] = b = tf.Variable(tf.zeros([1]), name='b')
    module = tf.Module()
    module.w, module.b = w, b

    def loss_fn(batch, seed):
      xb, yb = batch
      noise = 0.01 * tf.random.stateless_normal(tf.shape(yb), seed)
      mse = tf.reduce_mean(tf.square(xb @ w + b - yb - noise))
      return mse, {}
    return loop.Task(model=module, loss_fn=loss_fn, description={'model': 'linear'},
                     optimizer=optim.Adam(module.trainable_variables, optim.OptimizerConfig(learning_rate=0.05)))

  config = loop.LoopConfig(workdir=workdir, total_steps=steps, log_every=2, eval_every=1000,
                           checkpoint_every=3, progress=False, ema_decay=0.5)
  final = loop.train(task_fn, data, config, strategy=strategy)
  np.savez(out, step=final['step'], replicas=final['replicas'],
           w=model['w'].numpy(), b=model['b'].numpy())


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
