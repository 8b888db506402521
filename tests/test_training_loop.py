"""The shared training loop (resume, interruption, metrics, guards, seeds,
strategy), its EMA and its fused Adam, on a 4-parameter linear model."""

import json
import os
import signal
import socket
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

from common.errors import ParameterError
from training import loop
from training import optim
from training.ema import EMA
from training.strategy import get_strategy

W_TRUE = np.array([[1.0], [-2.0], [0.5]], np.float32)


class Linear(tf.Module):

  def __init__(self):
    super().__init__()
    self.w = tf.Variable(tf.zeros([3, 1]), name='w')
    self.b = tf.Variable(tf.zeros([1]), name='b')

  def __call__(self, x):
    return x @ self.w + self.b


def _batches(n_batches=8, batch=8, nan_at=None):
  """``[n_batches, batch, 3]`` inputs and targets ``x W + 0.3``."""
  x = np.random.default_rng(0).normal(size=(n_batches, batch, 3)).astype(np.float32)
  y = x @ W_TRUE + 0.3
  if nan_at is not None:
    x[nan_at] = np.nan
  return x, y


def _dataset(repeat=True, constant=False, **kwargs):
  x, y = _batches(**kwargs)
  if constant:           # every step sees the same batch
    ds = tf.data.Dataset.from_tensors((x[0], y[0]))
  else:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
  return ds.repeat() if repeat else ds


class _Run:
  """A task factory that remembers the task and the seeds loss_fn saw."""

  def __init__(self, description=None, sample_fn=None, learning_rate=0.05):
    self.description = {'model': 'linear', 'width': 3} if description is None else description
    self.sample_fn = sample_fn
    self.learning_rate = learning_rate
    self.seeds = []
    self.task = None

  def __call__(self):
    model = Linear()

    def loss_fn(batch, seed):
      # Record the seed (runs once per step, not per trace).
      tf.py_function(lambda s: self.seeds.append(tuple(s.numpy().tolist())), [seed], [])
      x, y = batch
      noise = 0.01 * tf.random.stateless_normal(tf.shape(y), seed)  # uses the seed
      mse = tf.reduce_mean(tf.square(model(x) - y - noise))
      return mse, {'mse': mse}

    def eval_fn(batch, seed):
      x, y = batch
      return tf.reduce_mean(tf.square(model(x) - y)), {}

    self.task = loop.Task(
        model=model,
        optimizer=optim.Adam(model.trainable_variables,
                             optim.OptimizerConfig(learning_rate=self.learning_rate)),
        loss_fn=loss_fn, eval_fn=eval_fn, sample_fn=self.sample_fn,
        description=self.description)
    return self.task


def _weights(module):
  return [v.numpy() for v in module.trainable_variables]


class TrainingLoopTest(tf.test.TestCase, parameterized.TestCase):

  def _config(self, workdir=None, **kwargs):
    kwargs.setdefault('total_steps', 4)
    kwargs.setdefault('progress', False)
    kwargs.setdefault('ema_decay', 0.5)
    return loop.LoopConfig(workdir=workdir or self.create_tempdir().full_path, **kwargs)

  def _latest(self, workdir):
    return tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))

  def test_resume_continues_the_step_count_and_the_optimizer(self):
    workdir = self.create_tempdir().full_path
    first = _Run()
    metrics = loop.train(first, _dataset(constant=True), self._config(workdir, total_steps=4))
    self.assertEqual(metrics['step'], 4)
    self.assertLen(first.seeds, 4)

    second = _Run()
    metrics = loop.train(second, _dataset(constant=True), self._config(workdir, total_steps=7))
    self.assertEqual(metrics['step'], 7)
    self.assertLen(second.seeds, 3)                          # steps 5, 6, 7 only
    self.assertEqual(int(second.task.optimizer.iterations.numpy()), 7)
    self.assertEndsWith(self._latest(workdir), 'ckpt-7')

    # Same result as one uninterrupted run: weights, optimiser state and the
    # per-step seeds are restored or re-derived exactly (same batches here,
    # since the input pipeline itself is not checkpointed).
    straight = _Run()
    loop.train(straight, _dataset(constant=True), self._config(total_steps=7))
    self.assertEqual(straight.seeds, first.seeds + second.seeds)
    for a, b in zip(_weights(second.task.model), _weights(straight.task.model)):
      self.assertAllClose(a, b, rtol=1e-6, atol=1e-7)   # same CPU ops: ~exact

  def test_rerun_at_total_steps_trains_nothing(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(), self._config(workdir, total_steps=2))
    again = _Run()
    metrics = loop.train(again, _dataset(), self._config(workdir, total_steps=2))
    self.assertEmpty(again.seeds)
    self.assertEqual(metrics['step'], 2)
    self.assertEqual(int(again.task.optimizer.iterations.numpy()), 2)

  def test_keyboard_interrupt_saves_a_checkpoint_that_the_rerun_resumes(self):
    workdir = self.create_tempdir().full_path

    def interrupt(seed):
      raise KeyboardInterrupt('Ctrl-C during the preview grid')

    first = _Run(sample_fn=interrupt)
    config = self._config(workdir, total_steps=6, eval_every=3, checkpoint_every=100,
                          checkpoint_every_secs=1e9)
    with self.assertRaises(KeyboardInterrupt):
      loop.train(first, _dataset(), config)
    self.assertLen(first.seeds, 3)
    # No periodic checkpoint was due: this one is the interruption's.
    self.assertEndsWith(self._latest(workdir), 'ckpt-3')

    second = _Run()
    metrics = loop.train(second, _dataset(), config)
    self.assertLen(second.seeds, 3)
    self.assertEqual(metrics['step'], 6)
    self.assertEqual(int(second.task.optimizer.iterations.numpy()), 6)

  def test_sigterm_is_turned_into_a_checkpointed_interrupt(self):
    workdir = self.create_tempdir().full_path

    class Unhandled(Exception):
      pass

    def fallback(signum, frame):      # only reached if the loop's handler is missing
      raise Unhandled()

    def terminate(seed):
      os.kill(os.getpid(), signal.SIGTERM)
      return np.zeros([1, 2, 2, 1])

    old = signal.signal(signal.SIGTERM, fallback)
    try:
      config = self._config(workdir, total_steps=6, eval_every=2, checkpoint_every=100,
                            checkpoint_every_secs=1e9)
      with self.assertRaisesRegex(KeyboardInterrupt, 'SIGTERM'):
        loop.train(_Run(sample_fn=terminate), _dataset(), config)
      # The loop put the previous handler back.
      self.assertIs(signal.getsignal(signal.SIGTERM), fallback)
    finally:
      signal.signal(signal.SIGTERM, old)
    self.assertEndsWith(self._latest(workdir), 'ckpt-2')

  def test_metrics_json_config_json_and_sample_grid_are_written(self):
    workdir = self.create_tempdir().full_path
    grid = lambda seed: np.full([4, 5, 5, 1], 0.5, np.float32)
    run = _Run(sample_fn=grid)
    returned = loop.train(run, _dataset(), self._config(workdir, total_steps=4, log_every=2),
                          eval_data=_dataset(repeat=False))
    with open(os.path.join(workdir, 'metrics.json')) as f:
      metrics = json.load(f)
    self.assertEqual(metrics, json.loads(json.dumps(returned)))
    self.assertEqual(metrics['step'], 4)
    self.assertEqual(metrics['num_parameters'], 4)
    self.assertEqual(metrics['replicas'], 1)
    for key in ('train_loss', 'eval_loss', 'elapsed_s', 'steps_per_sec'):
      self.assertTrue(np.isfinite(metrics[key]) and metrics[key] >= 0, key)
    # Targets have variance ~5 and the model starts at zero: losses of order 1-10.
    self.assertBetween(metrics['train_loss'], 0.1, 50.0)
    self.assertTrue(os.path.isfile(os.path.join(workdir, metrics['samples_png'])))
    self.assertTrue(os.path.isdir(os.path.join(workdir, 'tb', 'train')))
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f), run.description)

  def test_different_description_in_the_same_workdir_raises_naming_the_field(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run({'model': 'linear', 'width': 3}), _dataset(),
               self._config(workdir, total_steps=1))
    with self.assertRaisesRegex(ParameterError, r'different configuration.*'
                                r'width: saved 3, now 4'):
      loop.train(_Run({'model': 'linear', 'width': 4}), _dataset(),
                 self._config(workdir, total_steps=2))

  def test_damaged_checkpoint_raises_parameter_error(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(), self._config(workdir, total_steps=2))
    data = self._latest(workdir) + '.data-00000-of-00001'
    size = os.path.getsize(data)
    with open(data, 'r+b') as f:
      f.truncate(size // 2)
    with self.assertRaisesRegex(ParameterError, r'cannot restore checkpoint .*ckpt-2.* '
                                r'damaged'):
      loop.train(_Run(), _dataset(), self._config(workdir, total_steps=3))

  def test_checkpoint_of_a_different_model_raises_parameter_error(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(), self._config(workdir, total_steps=1))
    run = _Run()
    build = run.__call__

    def with_extra_variable():
      task = build()
      task.model.c = tf.Variable(tf.zeros([2]), name='c')   # not in the checkpoint
      return task
    with self.assertRaisesRegex(ParameterError, 'damaged or belongs to a different model'):
      loop.train(with_extra_variable, _dataset(), self._config(workdir, total_steps=2))

  def test_nan_loss_raises_floating_point_error_naming_the_step(self):
    workdir = self.create_tempdir().full_path
    with self.assertRaisesRegex(FloatingPointError,
                                r'loss is nan at step 3; last good checkpoint: .*ckpt-2'):
      loop.train(_Run(), _dataset(nan_at=2), self._config(workdir, total_steps=5,
                                                          checkpoint_every=1))

  def test_exhausted_dataset_raises_parameter_error(self):
    with self.assertRaisesRegex(ParameterError, 'ran out'):
      loop.train(_Run(), _dataset(repeat=False, n_batches=2), self._config(total_steps=5))

  def test_ema_with_decay_zero_equals_the_weights(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(), self._config(workdir, total_steps=3, ema_decay=0.0))
    reader = tf.train.load_checkpoint(self._latest(workdir))
    for i, name in enumerate(('b', 'w')):     # trainable_variables sort by name
      self.assertAllEqual(reader.get_tensor(f'ema/shadows/{i}/.ATTRIBUTES/VARIABLE_VALUE'),
                          reader.get_tensor(f'model/{name}/.ATTRIBUTES/VARIABLE_VALUE'))

  def test_evaluation_swaps_the_ema_in_and_the_raw_weights_back(self):
    workdir = self.create_tempdir().full_path
    run = _Run()
    metrics = loop.train(run, _dataset(), self._config(workdir, total_steps=3,
                                                       ema_decay=0.9),
                         eval_data=_dataset(repeat=False))
    reader = tf.train.load_checkpoint(self._latest(workdir))
    raw = [reader.get_tensor(f'model/{n}/.ATTRIBUTES/VARIABLE_VALUE') for n in 'bw']
    shadow = [reader.get_tensor(f'ema/shadows/{i}/.ATTRIBUTES/VARIABLE_VALUE')
              for i in range(2)]
    # After training (and the final evaluation) the model holds its raw weights.
    for a, b in zip(_weights(run.task.model), raw):
      self.assertAllEqual(a, b)
    self.assertNotAllClose(raw[1], shadow[1])
    # The eval loss is that of the EMA weights, not the raw ones.
    x, y = _batches()
    ema_loss = np.mean([np.mean((x[i] @ shadow[1] + shadow[0] - y[i]) ** 2)
                        for i in range(8)])
    self.assertAllClose(metrics['eval_loss'], ema_loss, rtol=1e-5)

  def test_seeds_differ_between_steps_and_repeat_across_runs(self):
    runs = [_Run() for _ in range(3)]
    for run, seed in zip(runs, (0, 0, 1)):
      loop.train(run, _dataset(), self._config(total_steps=5, seed=seed))
    self.assertLen(set(runs[0].seeds), 5)            # a fresh seed every step
    self.assertEqual(runs[0].seeds, runs[1].seeds)   # same run seed: same draws
    self.assertEmpty(set(runs[0].seeds) & set(runs[2].seeds))

  def test_mirrored_strategy_runs_the_loop_on_cpu(self):
    strategy = get_strategy('mirrored')
    self.assertIsInstance(strategy, tf.distribute.MirroredStrategy)
    self.assertEqual(strategy.num_replicas_in_sync, 1)
    run = _Run()
    metrics = loop.train(run, _dataset(), self._config(total_steps=3),
                         eval_data=_dataset(repeat=False), strategy=strategy)
    self.assertEqual(metrics['replicas'], 1)
    self.assertEqual(metrics['step'], 3)
    self.assertLen(run.seeds, 3)
    self.assertTrue(np.isfinite(metrics['eval_loss']))
    self.assertEqual(int(run.task.optimizer.iterations.numpy()), 3)

  def test_training_reduces_the_loss(self):
    run = _Run(learning_rate=0.1)
    first = loop.train(run, _dataset(), self._config(total_steps=1),
                       eval_data=_dataset(repeat=False))
    run2 = _Run(learning_rate=0.1)
    last = loop.train(run2, _dataset(), self._config(total_steps=60, ema_decay=0.0),
                      eval_data=_dataset(repeat=False))
    # 60 Adam steps at 0.1 on a 4-parameter least-squares problem.
    self.assertLess(last['eval_loss'], 0.2 * first['eval_loss'])

  @parameterized.named_parameters(
      ('zero_steps', dict(total_steps=0), 'total_steps must be > 0, got 0'),
      ('decay_one', dict(ema_decay=1.0), r'ema_decay must be in \[0, 1\), got 1.0'),
      ('zero_log_every', dict(log_every=0), 'log_every must be > 0, got 0'),
      ('negative_eval_every', dict(eval_every=-1), 'eval_every must be > 0, got -1'),
  )
  def test_loop_config_raises_on_bad_values(self, kwargs, regex):
    with self.assertRaisesRegex(ParameterError, regex):
      loop.LoopConfig(workdir='unused', **kwargs)


class StrategyTest(tf.test.TestCase):

  def test_known_names(self):
    self.assertIs(get_strategy('default'), tf.distribute.get_strategy())
    self.assertIsInstance(get_strategy('one_device'), tf.distribute.OneDeviceStrategy)

  def test_unknown_name_raises(self):
    with self.assertRaisesRegex(ParameterError, "unknown strategy 'tpu'; choose one of"):
      get_strategy('tpu')

  def test_multi_worker_needs_a_valid_tf_config(self):
    with mock.patch.dict(os.environ, {}, clear=False):
      os.environ.pop('TF_CONFIG', None)
      with self.assertRaisesRegex(ParameterError, 'TF_CONFIG .* not set'):
        get_strategy('multi_worker')
    with mock.patch.dict(os.environ, {'TF_CONFIG': '{cluster'}):
      with self.assertRaisesRegex(ParameterError, "not valid json: '\\{cluster'"):
        get_strategy('multi_worker')


class EmaTest(tf.test.TestCase):

  def test_update_is_the_exponential_average(self):
    w = tf.Variable([1.0, 2.0])
    ema = EMA([w], decay=0.75)
    self.assertAllEqual(ema.shadows[0], [1.0, 2.0])      # starts at the weights
    w.assign([5.0, -2.0])
    ema.update()
    self.assertAllClose(ema.shadows[0], [2.0, 1.0])       # 0.75 * old + 0.25 * new
    w.assign([6.0, 1.0])
    ema.update()
    self.assertAllClose(ema.shadows[0], [3.0, 1.0])

  def test_decay_zero_follows_the_weights(self):
    w = tf.Variable([1.0, 2.0])
    ema = EMA([w], decay=0.0)
    w.assign([-3.0, 7.5])
    ema.update()
    self.assertAllEqual(ema.shadows[0], w)

  def test_swapped_in_restores_the_raw_weights_even_after_an_error(self):
    w = tf.Variable([1.0, 2.0])
    ema = EMA([w], decay=0.5)
    w.assign([3.0, 4.0])
    ema.update()                                          # shadow [2, 3]
    with ema.swapped_in():
      self.assertAllEqual(w, [2.0, 3.0])
    self.assertAllEqual(w, [3.0, 4.0])
    with self.assertRaisesRegex(RuntimeError, 'boom'):
      with ema.swapped_in():
        raise RuntimeError('boom')
    self.assertAllEqual(w, [3.0, 4.0])
    self.assertAllEqual(ema.shadows[0], [2.0, 3.0])


def _adam_reference(w, grads, lr, beta_1=0.9, beta_2=0.999, eps=1e-8, warmup=0,
                    adamax=False):
  """Adam (Kingma & Ba, Algorithm 1 with the 'epsilon hat' form TF uses)."""
  w = np.array(w, np.float64)
  m = np.zeros_like(w)
  v = np.zeros_like(w)
  for t, g in enumerate(grads, start=1):
    lr_t = lr * min(1.0, t / warmup) if warmup else lr
    m = beta_1 * m + (1 - beta_1) * g
    if adamax:
      v = np.maximum(beta_2 * v, np.abs(g))
      w = w - lr_t / (1 - beta_1 ** t) * m / (v + eps)
    else:
      v = beta_2 * v + (1 - beta_2) * np.square(g)
      w = w - lr_t * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (np.sqrt(v) + eps)
  return w


class AdamTest(tf.test.TestCase, parameterized.TestCase):

  GRADS = [np.array([0.5, -1.0, 2e-3]), np.array([0.1, 0.3, -4e-3])]

  @parameterized.named_parameters(
      ('adam', 'adam', 0), ('adam_warmup', 'adam', 4), ('adamax', 'adamax', 0),
      ('adamax_warmup', 'adamax', 3))
  def test_two_steps_match_the_hand_computed_update(self, name, warmup):
    w = tf.Variable([1.0, -2.0, 0.5])
    opt = optim.Adam([w], optim.OptimizerConfig(name, learning_rate=0.1, beta_1=0.8,
                                                warmup_steps=warmup))
    for i, g in enumerate(self.GRADS):
      opt.apply_gradients([(tf.constant(g, tf.float32), w)])
      expected = _adam_reference([1.0, -2.0, 0.5], self.GRADS[:i + 1], 0.1, beta_1=0.8,
                                 warmup=warmup, adamax=name == 'adamax')
      # float32 kernel vs float64 reference: ~1e-7 of |w|.
      self.assertAllClose(w, expected, rtol=1e-6, atol=1e-6)
    self.assertEqual(int(opt.iterations.numpy()), 2)

  def test_first_adam_step_moves_each_weight_by_the_learning_rate(self):
    # After one step m / sqrt(v) = sign(g) (bias-corrected): |dw| = lr.
    w = tf.Variable([1.0, -2.0, 0.5])
    optim.Adam([w], optim.OptimizerConfig(learning_rate=0.01)).apply_gradients(
        [(tf.constant(self.GRADS[0], tf.float32), w)])
    # eps 1e-8 against |g| >= 2e-3 changes the step by < 1e-5 relative.
    self.assertAllClose(w, [0.99, -1.99, 0.49], rtol=1e-5)

  def test_warmup_learning_rate_is_linear_then_flat(self):
    opt = optim.Adam([tf.Variable(0.0)], optim.OptimizerConfig(learning_rate=0.1,
                                                               warmup_steps=4))
    self.assertAllClose([opt.learning_rate(s) for s in range(6)],
                        [0.025, 0.05, 0.075, 0.1, 0.1, 0.1])
    self.assertAllClose(opt.learning_rate(), 0.025)            # iteration 0
    flat = optim.Adam([tf.Variable(0.0)], optim.OptimizerConfig(learning_rate=0.1))
    self.assertAllClose(flat.learning_rate(0), 0.1)

  def test_none_gradient_leaves_its_variable_alone(self):
    a, b = tf.Variable([1.0]), tf.Variable([2.0])
    opt = optim.Adam([a, b])
    opt.apply_gradients([(None, a), (tf.constant([1.0]), b)])
    self.assertAllEqual(a, [1.0])
    self.assertNotAllClose(b, [2.0])
    self.assertEqual(int(opt.iterations.numpy()), 1)

  def test_inside_tf_function(self):
    w = tf.Variable([1.0, -2.0, 0.5])
    opt = optim.Adam([w], optim.OptimizerConfig(learning_rate=0.1, warmup_steps=4))
    step = tf.function(lambda g: opt.apply_gradients([(g, w)]))
    for g in self.GRADS:
      step(tf.constant(g, tf.float32))
    self.assertAllClose(w, _adam_reference([1.0, -2.0, 0.5], self.GRADS, 0.1, warmup=4),
                        rtol=1e-6, atol=1e-6)

  def test_raises_on_wrong_number_of_gradients(self):
    opt = optim.Adam([tf.Variable(0.0), tf.Variable(1.0)])
    with self.assertRaisesRegex(ParameterError, 'got 1 gradients for 2 variables'):
      opt.apply_gradients([(tf.constant(1.0), tf.Variable(0.0))])

  @parameterized.named_parameters(
      ('name', dict(name='sgd'), "'adam' or 'adamax', got 'sgd'"),
      ('zero_lr', dict(learning_rate=0.0), 'learning_rate must be > 0, got 0.0'),
      ('negative_warmup', dict(warmup_steps=-1), 'warmup_steps must be >= 0, got -1'),
  )
  def test_config_raises_on_bad_values(self, kwargs, regex):
    with self.assertRaisesRegex(ParameterError, regex):
      optim.OptimizerConfig(**kwargs)


def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


@pytest.mark.slow
class MultiWorkerTest(tf.test.TestCase):
  """Two worker processes on this machine, as two hosts would run it."""

  def test_two_workers_train_in_step_and_the_checkpoint_resumes_on_one(self):
    root = self.create_tempdir().full_path
    workdir = os.path.join(root, 'run')
    child = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'multi_worker_child.py')
    cluster = {'worker': [f'127.0.0.1:{p}' for p in _free_ports(2)]}
    procs = []
    for i in range(2):
      env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2',
                 TF_CONFIG=json.dumps({'cluster': cluster, 'task': {'type': 'worker',
                                                                    'index': i}}))
      procs.append(subprocess.Popen(
          [sys.executable, child, workdir, os.path.join(root, f'w{i}.npz'), '7',
           'multi_worker'], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
          text=True))
    outs = []
    try:
      for p in procs:
        outs.append(p.communicate(timeout=240)[0])
    finally:
      for p in procs:
        p.kill()
    for i, (p, out) in enumerate(zip(procs, outs)):
      self.assertEqual(p.returncode, 0, msg=f'worker {i}:\n{out[-4000:]}')
    w0, w1 = (np.load(os.path.join(root, f'w{i}.npz')) for i in range(2))
    self.assertEqual(int(w0['replicas']), 2)            # one replica per worker
    self.assertEqual(int(w0['step']), 7)
    # All-reduced gradients: both workers apply the same update every step.
    self.assertAllClose(w0['w'], w1['w'], rtol=1e-6, atol=1e-7)
    self.assertAllClose(w0['b'], w1['b'], rtol=1e-6, atol=1e-7)
    self.assertGreater(float(np.abs(w0['w']).max()), 0.1)   # it did train
    # Only the chief's checkpoints and metrics stay in the workdir.
    self.assertEqual(os.path.basename(self._latest(workdir)), 'ckpt-7')
    self.assertFalse(os.path.exists(os.path.join(workdir, 'workers')))
    # The checkpoint resumes in a single process (one host, no TF_CONFIG).
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_CPP_MIN_LOG_LEVEL='2')
    env.pop('TF_CONFIG', None)
    proc = subprocess.run([sys.executable, child, workdir, os.path.join(root, 'one.npz'),
                           '9', 'default'], env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    self.assertEqual(proc.returncode, 0, msg=proc.stdout[-3000:] + proc.stderr[-3000:])
    self.assertIn('resumed from', proc.stdout)
    self.assertIn('at step 7', proc.stdout)
    one = np.load(os.path.join(root, 'one.npz'))
    self.assertEqual(int(one['step']), 9)
    self.assertEqual(int(one['replicas']), 1)

  def _latest(self, workdir):
    return tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
