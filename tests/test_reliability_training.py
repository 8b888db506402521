"""Training-loop faults: damaged checkpoints, invalid json, a run that died at step 0."""

import glob
import json
import os
from unittest import mock

import tensorflow as tf

from pipeline.errors import ParameterError
from training import loop
from tests.test_training_loop import _Run, _dataset


def _config(workdir, **kwargs):
  kwargs.setdefault('total_steps', 4)
  kwargs.setdefault('progress', False)
  kwargs.setdefault('ema_decay', 0.5)
  return loop.LoopConfig(workdir=workdir, **kwargs)


class CheckpointFallbackTest(tf.test.TestCase):

  def test_damaged_latest_checkpoint_falls_back_to_the_older_one(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir, checkpoint_every=2))
    ckpts = os.path.join(workdir, 'checkpoints')
    for data in glob.glob(os.path.join(ckpts, 'ckpt-4.data-*')):
      with open(data, 'r+b') as f:
        f.truncate(3)
    lines = []
    with mock.patch('builtins.print', side_effect=lambda *a, **k: lines.append(' '.join(
        str(v) for v in a))):
      metrics = loop.train(_Run(), _dataset(constant=True),
                           _config(workdir, checkpoint_every=2, total_steps=6))
    self.assertEqual(metrics['step'], 6)
    text = '\n'.join(lines)
    self.assertRegex(text, r'checkpoint .*ckpt-4 .* is damaged .*older intact .*ckpt-2')
    self.assertIn('resumed from', text)

  def test_every_checkpoint_damaged_is_a_clear_error(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir, checkpoint_every=2))
    for data in glob.glob(os.path.join(workdir, 'checkpoints', 'ckpt-*.data-*')):
      with open(data, 'r+b') as f:
        f.truncate(3)
    with self.assertRaisesRegex(ParameterError, r'cannot restore checkpoint .*ckpt-4.*'
                                'older one\(s\) failed too'):
      loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=6))

  def test_final_step_is_checkpointed_once(self):
    workdir = self.create_tempdir().full_path
    saved = []
    real_save = tf.train.CheckpointManager.save

    def spy(manager, *args, **kwargs):
      saved.append(kwargs.get('checkpoint_number'))
      return real_save(manager, *args, **kwargs)

    with mock.patch.object(tf.train.CheckpointManager, 'save', spy):
      loop.train(_Run(), _dataset(constant=True), _config(workdir, checkpoint_every=2))
    self.assertEqual(saved, [2, 4])


class StepsBelowReachedTest(tf.test.TestCase):

  def test_steps_below_the_step_reached_says_so(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=4))
    lines = []
    with mock.patch('builtins.print', side_effect=lambda *a, **k: lines.append(' '.join(
        str(v) for v in a))):
      metrics = loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=2))
    self.assertEqual(metrics['step'], 4)
    self.assertTrue(any('already at step 4 >= total_steps 2: nothing to train' in l
                        for l in lines), lines)


class WorkdirJsonTest(tf.test.TestCase):

  def test_invalid_config_json_names_the_file(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir))
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write('{"model": ')
    with self.assertRaisesRegex(ParameterError, r'config\.json is not valid json'):
      loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=5))

  def test_invalid_metrics_json_names_the_file(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir))
    with open(os.path.join(workdir, 'metrics.json'), 'w') as f:
      f.write('not json')
    with self.assertRaisesRegex(ParameterError, r'metrics\.json is not valid json'):
      loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=5))

  def test_run_that_failed_at_step_0_does_not_lock_its_config(self):
    workdir = self.create_tempdir().full_path

    loop.check_description(workdir, {'model': 'linear', 'width': 99})   # what it left
    self.assertTrue(os.path.exists(os.path.join(workdir, 'config.json')))
    metrics = loop.train(_Run(), _dataset(constant=True), _config(workdir))
    self.assertEqual(metrics['step'], 4)
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['width'], 3)
    # Once a checkpoint exists, a different configuration is refused.
    with self.assertRaisesRegex(ParameterError, 'different configuration'):
      loop.train(_Run(description={'model': 'linear', 'width': 5}), _dataset(constant=True),
                 _config(workdir, total_steps=5))


if __name__ == '__main__':
  tf.test.main()
