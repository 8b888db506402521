"""Speed of the NCSN score architectures on 96 x 64 x 1 mel patches.

Times, in one process and interleaved round by round (medians of
``--repeats`` rounds), for every network of ``--nets`` and compute dtype of
``--dtypes``:
  * a forward call at each batch of ``--batch_sizes`` (``--calls`` calls in
    one compiled ``tf.while_loop`` per round), and
  * one DSM training step at ``--train_batch_size`` (loss, gradients of every
    variable and the Adam update, as the training loop runs it),
and prints a markdown table of milliseconds per patch.

With ``--priors``, it instead compares exported priors by their denoising
error per level (:func:`basis.diagnostics.denoising_error`, Tweedie
``MSE / sigma^2``) on held-out patches of ``--data_dir`` (all of its records,
the first ``--n_patches``), e.g. runs trained for the same CPU time.

oneDNN is chosen when TensorFlow is imported, so run the script once per
setting:

  TF_ENABLE_ONEDNN_OPTS=0 python benchmarks/bench_score_arch.py
  TF_ENABLE_ONEDNN_OPTS=1 python benchmarks/bench_score_arch.py
  python benchmarks/bench_score_arch.py --data_dir=out/data/tfr/piano/test \
      --priors=refinenet16=/tmp/prior_refinenet16,unet32=/tmp/prior_unet32
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

from basis.diagnostics import denoising_error
from basis.priors import NCSNPrior
from ncsn import train_lib
from ncsn.losses import dsm_loss
from ncsn.model import ScoreNetConfig, build_score_network
from pipeline import datasets
from training import optim

FLAGS = flags.FLAGS
NETS = {
    'refinenet_ngf16': ScoreNetConfig(ngf=16),
    'refinenet_ngf32': ScoreNetConfig(ngf=32),
    'unet_16': ScoreNetConfig(arch='unet', ngf=16, channel_mult=(1, 2, 4, 4),
                              num_res_blocks=1),
    'unet_32': ScoreNetConfig(arch='unet', ngf=32, channel_mult=(1, 2, 2, 4),
                              num_res_blocks=1),
    'unet_32x2': ScoreNetConfig(arch='unet', ngf=32, channel_mult=(1, 2, 2, 4),
                                num_res_blocks=2),
}
flags.DEFINE_list('nets', list(NETS), f'Networks to time, of {sorted(NETS)}.')
flags.DEFINE_list('dtypes', ['float32', 'bfloat16'], 'Compute dtypes.')
flags.DEFINE_list('batch_sizes', ['16', '64'], 'Batch sizes of the forward calls.')
flags.DEFINE_integer('train_batch_size', 32, 'Batch of the training step (0: skip).')
flags.DEFINE_integer('calls', 2, 'Forward calls per timed round (one compiled loop).')
flags.DEFINE_integer('repeats', 5, 'Timed rounds; medians are reported.')
flags.DEFINE_integer('height', 96, 'Patch height (mel bands).')
flags.DEFINE_integer('width', 64, 'Patch width (frames).')
flags.DEFINE_integer('num_levels', 10, 'Noise levels (geometric, 1 to 0.01).')
flags.DEFINE_list('priors', [], 'label=folder of exported priors: compare their denoising '
                  'error on --data_dir instead of timing.')
flags.DEFINE_string('data_dir', None, 'Held-out mel patch folder (with --priors).')
flags.DEFINE_integer('n_patches', 300, 'Held-out patches (with --priors).')
flags.DEFINE_integer('chunk', 64, 'Patches per score call (with --priors).')


def onednn_state() -> str:
  """'on' / 'off' as TensorFlow reports it, else what the environment asked for."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return 'on' if _pywrap_util_port.IsMklEnabled() else 'off'
  except (ImportError, AttributeError):
    return f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}"


def cpu_name() -> str:
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  return 'unknown CPU'


def busy_cpu_s() -> float:
  """CPU seconds all processes spent busy since boot (0 where /proc/stat is absent)."""
  if not os.path.exists('/proc/stat'):
    return 0.0
  with open('/proc/stat') as f:
    fields = [int(v) for v in f.readline().split()[1:]]
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0)        # idle + iowait
  return (sum(fields[:8]) - idle) / os.sysconf('SC_CLK_TCK')


def own_cpu_s() -> float:
  t = os.times()
  return t.user + t.system


def make_forward(model, x, labels, calls):
  def loop(x):
    def body(t, x):
      return t + 1, x + 1e-6 * model(x, labels)
    return tf.while_loop(lambda t, x: t < calls, body, (tf.constant(0), x))[1]
  fn = tf.function(loop)
  fn.get_concrete_function(x)
  return fn


def make_train_step(model, x):
  variables = model.trainable_variables
  opt = optim.Adam(variables, optim.OptimizerConfig('adam', 1e-4))
  sigmas = model.sigmas

  def step(x, seed):
    with tf.GradientTape() as tape:
      loss, _ = dsm_loss(lambda x, l: model(x, l, training=True), x, sigmas, seed)
    grads = tape.gradient(loss, variables)
    opt.apply_gradients(zip(grads, variables))   # every gradient is used
    return loss
  fn = tf.function(step)
  fn.get_concrete_function(x, tf.constant([0, 0]))
  return fn


class _ChunkedPrior:
  """``prior.score`` compiled once and applied ``chunk`` patches at a time."""

  def __init__(self, prior, chunk):
    self._score, self.chunk = tf.function(prior.score), chunk

  def score(self, x, sigma):
    return tf.concat([self._score(x[i:i + self.chunk], sigma)
                      for i in range(0, int(x.shape[0]), self.chunk)], axis=0)


def compare_denoising(specs, data_dir, n_patches, chunk):
  """Prints ``MSE / sigma^2`` and PSNR per level for each ``label=folder`` prior."""
  ds, _ = datasets.get_dataset('melspec', 'all', batch_size=n_patches, shuffle=False,
                               data_dir=[data_dir])
  data = next(iter(ds)).numpy()
  rows, meta = {}, {}
  for spec in specs:
    label, folder = spec.split('=', 1)
    model = train_lib.load_score_model(folder)
    meta[label] = (f"{model.config.to_dict()}, step {model.prior_metadata['step']}, "
                   f"{model.num_parameters():,} params")
    rows[label] = denoising_error(_ChunkedPrior(NCSNPrior(model), chunk), data,
                                  model.sigmas.numpy(), seed=0)
  labels = list(rows)
  print(f'\n{data.shape[0]} held-out patches of {data_dir}; noise seed 0')
  for label in labels:
    print(f'- {label}: {meta[label]}')
  print('\n| sigma | noisy PSNR (dB) | ' +
        ' | '.join(f'{l} MSE/sigma^2 | {l} PSNR (dB)' for l in labels) + ' |')
  print('|---:|---:|' + '---:|---:|' * len(labels))
  for i, r0 in enumerate(rows[labels[0]]):
    print(f"| {r0['sigma']:.4g} | {r0['psnr_noisy_db']:.1f} | " + ' | '.join(
        f"{rows[l][i]['mse_ratio']:.4f} | {rows[l][i]['psnr_denoised_db']:.2f}"
        for l in labels) + ' |')
  print('| mean | | ' + ' | '.join(
      f"{np.mean([r['mse_ratio'] for r in rows[l]]):.4f} | "
      f"{np.mean([r['psnr_denoised_db'] for r in rows[l]]):.2f}" for l in labels) + ' |')


def build_jobs(names, dtypes, batches, train_batch, shape, num_levels, calls):
  """Traced forward loops and training steps: ``{(net, dtype, kind): (fn, args, patches)}``
  and ``{net: parameters}``."""
  sigmas = np.geomspace(1.0, 0.01, num_levels)
  data = {b: tf.random.stateless_uniform((b,) + shape, [0, b])
          for b in batches + [train_batch]}
  labels = {b: tf.random.stateless_uniform([b], [1, b], 0, num_levels, tf.int32)
            for b in batches}
  jobs, params = {}, {}
  for name in names:
    for dtype in dtypes:
      model = build_score_network(NETS[name], sigmas, shape, compute_dtype=dtype)
      params[name] = model.num_parameters()
      for b in batches:
        jobs[(name, dtype, f'fwd{b}')] = (
            make_forward(model, data[b], labels[b], calls), (data[b],), calls * b)
      if train_batch:
        jobs[(name, dtype, 'train')] = (make_train_step(model, data[train_batch]),
                                        (data[train_batch], tf.constant([0, 1])),
                                        train_batch)
      print(f'traced {name} {dtype}', file=sys.stderr, flush=True)
  return jobs, params


def time_jobs(jobs, repeats):
  """Seconds per patch of each job over interleaved rounds, and the cores other
  processes used meanwhile."""
  for fn, args, _ in jobs.values():      # warm-up: allocation, XLA compilation
    np.asarray(fn(*args))
  times = {k: [] for k in jobs}
  busy0, own0, wall0 = busy_cpu_s(), own_cpu_s(), time.perf_counter()
  for r in range(repeats):
    for key, (fn, args, n) in jobs.items():
      t0 = time.perf_counter()
      np.asarray(fn(*args))
      times[key].append((time.perf_counter() - t0) / n)
    print(f'round {r + 1}/{repeats}', file=sys.stderr, flush=True)
  others = max(busy_cpu_s() - busy0 - (own_cpu_s() - own0), 0.0) / (
      time.perf_counter() - wall0)
  return times, others


def main(argv):
  del argv
  if FLAGS.priors:
    if not FLAGS.data_dir:
      raise app.UsageError('--priors needs --data_dir (held-out patches)')
    return compare_denoising(FLAGS.priors, FLAGS.data_dir, FLAGS.n_patches, FLAGS.chunk)
  unknown = sorted(set(FLAGS.nets) - set(NETS))
  if unknown:
    raise app.UsageError(f'unknown --nets {unknown}; known: {sorted(NETS)}')
  shape = (FLAGS.height, FLAGS.width, 1)
  batches = [int(b) for b in FLAGS.batch_sizes]
  tb = FLAGS.train_batch_size
  jobs, params = build_jobs(FLAGS.nets, FLAGS.dtypes, batches, tb, shape,
                            FLAGS.num_levels, FLAGS.calls)
  times, others = time_jobs(jobs, FLAGS.repeats)
  print(f'\n{cpu_name()}, {os.cpu_count()} cores, oneDNN {onednn_state()}; '
        f'{shape[0]} x {shape[1]} x 1 patches; ms per patch, medians of '
        f'{FLAGS.repeats} interleaved rounds ({FLAGS.calls} forward calls per round; '
        f'training step: DSM loss, all gradients, Adam, batch {tb}); other processes '
        f'used {others:.2f} cores while it ran\n')
  kinds = [f'fwd{b}' for b in batches] + (['train'] if tb else [])
  heads = [f'forward, batch {b}' for b in batches] + (
      [f'train step, batch {tb}'] if tb else [])
  print('| network | params | dtype | ' + ' | '.join(heads) + ' |')
  print('|---|---:|---|' + '---:|' * len(heads))
  for name in FLAGS.nets:
    for dtype in FLAGS.dtypes:
      cells = [f'{1e3 * statistics.median(times[(name, dtype, k)]):.2f}' for k in kinds]
      print(f'| {name} | {params[name]:,} | {dtype} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
  app.run(main)
