"""Our Glow against ``tfp.bijectors.Glow`` configured the same.

Both flows: the same levels, steps per level and coupling width; Glow's
coupling network (conv3x3 -> ReLU -> conv1x1 -> ReLU -> zero conv3x3, TFP's
``GlowDefaultNetwork`` vs ours as a ``tf.Module``), split prior (TFP's exit
bijector with ``GlowDefaultExitNetwork``), data-dependent ActNorm, ``x - 0.5``
preprocessing, base ``N(0, I)``; ours also has the learned top prior (a few
thousand extra values, a negligible cost). Timed in one process, ours and
TFP's alternating in every repeat, each in ``tf.function``:

  * log_prob: ``log p(x)`` of a batch (images/s),
  * score: ``grad_x log p(x)`` of a batch (what BASIS calls; images/s),
  * training step: loss, gradients, Adam update (our fused Adam for both;
    steps/s),

plus the time to trace a training step. Medians of ``--repeats``. A third
column, "ours, log-det recomputed", is our Glow with its couplings made to
run their network again for the log-determinant, as ``tfb.RealNVP`` does: it
isolates what the single network pass is worth.

  python benchmarks/bench_flows.py                       # MNIST size, L=2, K=8, width 64
  python benchmarks/bench_flows.py --steps_per_level=16 --hidden_channels=128
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
import tensorflow_probability as tfp

from flow_models import couplings
from flow_models import model as model_lib
from flow_models import utils
from flow_models.glow import GlowConfig, build_glow
from training import optim

tfb = tfp.bijectors
tfd = tfp.distributions

FLAGS = flags.FLAGS
flags.DEFINE_integer('height', 28, 'Image height (MNIST: 28).')
flags.DEFINE_integer('width', 28, 'Image width.')
flags.DEFINE_integer('channels', 1, 'Image channels.')
flags.DEFINE_integer('levels', 2, 'Levels.')
flags.DEFINE_integer('steps_per_level', 8, 'Flow steps per level.')
flags.DEFINE_integer('hidden_channels', 64, 'Coupling network width.')
flags.DEFINE_integer('batch_size', 64, 'Batch size.')
flags.DEFINE_integer('repeats', 10, 'Timed repeats (medians are reported).')
flags.DEFINE_integer('seed', 0, 'Seed of weights and data.')


def build_tfp_glow(shape, levels, steps, hidden, seed):
  """``tfb.Glow`` as a distribution over images in [0, 1] (``x = glow(z) + 0.5``)."""
  glow = tfb.Glow(
      output_shape=shape, num_glow_blocks=levels, num_steps_per_block=steps,
      coupling_bijector_fn=lambda s: tfb.GlowDefaultNetwork(s, num_hidden=hidden),
      exit_bijector_fn=lambda s, output_chan: tfb.GlowDefaultExitNetwork(s, output_chan),
      use_actnorm=True, seed=seed)
  base = tfd.Sample(tfd.Normal(0.0, 1.0), [int(np.prod(shape))])
  return tfd.TransformedDistribution(base, tfb.Chain([tfb.Shift(0.5), glow]))


class _RecomputingCoupling(couplings.AffineCoupling):
  """Our coupling without handing its log-det to TFP's cache (tfb.RealNVP's cost)."""

  def _forward(self, x):
    a, b = self._split(x)
    log_scale, shift = self._params(a)
    y_b = b + shift if log_scale is None else b * tf.exp(log_scale) + shift
    return self._join(a, y_b)


def _recomputing(dist):
  for m in dist.submodules:
    if type(m) is couplings.AffineCoupling:  # pylint: disable=unidiomatic-typecheck
      m.__class__ = _RecomputingCoupling
  return dist


def _timed(fn):
  t0 = time.perf_counter()
  out = fn()
  return time.perf_counter() - t0, out


def _interleaved_medians(fns, repeats):
  """Median seconds of each callable, calls alternating (fair under varying load)."""
  times = [[] for _ in fns]
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      times[i].append(_timed(fn)[0])
  return [statistics.median(t) for t in times]


def _make_fns(dist, x):
  variables = dist.trainable_variables
  optimizer = optim.Adam(variables, optim.OptimizerConfig('adamax', 1e-4))
  d = float(np.prod(x.shape[1:]))

  @tf.function
  def log_prob(x):
    return dist.log_prob(x)

  @tf.function
  def score(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      lp = dist.log_prob(x)
    return tape.gradient(lp, x)

  @tf.function
  def train_step(x):
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(dist.log_prob(x)) / d
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(grads, variables))
    return loss

  return {'log_prob': lambda: log_prob(x).numpy(), 'score': lambda: score(x).numpy(),
          'train_step': lambda: train_step(x).numpy()}


def main(argv):
  del argv
  shape = (FLAGS.height, FLAGS.width, FLAGS.channels)
  b = FLAGS.batch_size
  rng = np.random.default_rng(FLAGS.seed)
  x = tf.constant(np.clip(rng.uniform(0, 1, (b,) + shape), 0.01, 0.99), tf.float32)

  config = GlowConfig(levels=FLAGS.levels, steps_per_level=FLAGS.steps_per_level,
                      hidden_channels=FLAGS.hidden_channels)
  t_build_ours, ours = _timed(lambda: build_glow(config, shape, seed=FLAGS.seed))
  t_init_ours, _ = _timed(lambda: model_lib.initialize(ours, x))
  recomputing = _recomputing(build_glow(config, shape, seed=FLAGS.seed))
  model_lib.initialize(recomputing, x)
  t_build_tfp, theirs = _timed(lambda: build_tfp_glow(
      shape, FLAGS.levels, FLAGS.steps_per_level, FLAGS.hidden_channels, FLAGS.seed))
  t_init_tfp, _ = _timed(lambda: theirs.log_prob(x))   # builds Keras nets, ActNorm init

  names = ('ours', 'ours, log-det recomputed', 'tfb.Glow')
  fns = {n: _make_fns(d, x) for n, d in zip(names, (ours, recomputing, theirs))}
  trace = {}
  for name in names:
    trace[name] = _timed(fns[name]['train_step'])[0]
    fns[name]['log_prob']()
    fns[name]['score']()
  results = {}
  for what in ('log_prob', 'score', 'train_step'):
    results[what] = _interleaved_medians([fns[n][what] for n in names], FLAGS.repeats)

  cpu = 'unknown CPU'
  if os.path.exists('/proc/cpuinfo'):
    for line in open('/proc/cpuinfo'):
      if line.startswith('model name'):
        cpu = line.split(':', 1)[1].strip()
        break
  load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
  print(f'\n{cpu}, {os.cpu_count()} cores, load average {load:.2f} at the end; '
        f'image {shape}, L={FLAGS.levels}, K={FLAGS.steps_per_level}, width '
        f'{FLAGS.hidden_channels}, batch {b}; medians of {FLAGS.repeats}')
  print(f'parameters: ours {utils.num_parameters(ours):,d}, tfb.Glow '
        f'{utils.num_parameters(theirs):,d}\n')
  print('| what | ours | ours, log-det recomputed | tfb.Glow | ours / tfb.Glow (speed) |')
  print('|---|---|---|---|---|')
  for what, unit, per in (('log_prob', 'images/s', b), ('score', 'images/s', b),
                          ('train_step', 'steps/s', 1)):
    t_ours, t_recomputed, t_tfp = results[what]
    print(f'| {what} ({unit}) | {per / t_ours:.1f} | {per / t_recomputed:.1f} | '
          f'{per / t_tfp:.1f} | {t_tfp / t_ours:.2f}x |')
  print(f'| trace + first training step (s) | {trace["ours"]:.1f} | '
        f'{trace["ours, log-det recomputed"]:.1f} | {trace["tfb.Glow"]:.1f} | '
        f'{trace["tfb.Glow"] / trace["ours"]:.2f}x |')
  print(f'| build + data-dependent init (s) | {t_build_ours + t_init_ours:.1f} | | '
        f'{t_build_tfp + t_init_tfp:.1f} | |')


if __name__ == '__main__':
  app.run(main)
