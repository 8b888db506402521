"""Training-loop faults: damaged checkpoints, invalid json, a run that died at step 0,
settings changed on resume, a damaged TFRecord record."""

import glob
import json
import os
from unittest import mock

import numpy as np
import tensorflow as tf

from pipeline import tfrecords
from common.errors import ParameterError
from training import loop
from tests.test_training_loop import _Run, _dataset


def _printed(fn):
  """``(fn(), lines printed)``."""
  lines = []
  with mock.patch('builtins.print', side_effect=lambda *a, **k: lines.append(' '.join(
      str(v) for v in a))):
    out = fn()
  return out, lines


def _read(workdir, name):
  with open(os.path.join(workdir, name)) as f:
    return json.load(f)


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

    with open(os.path.join(workdir, 'config.json'), 'w') as f:   # what it left
      json.dump({'model': 'linear', 'width': 99}, f)
    metrics = loop.train(_Run(), _dataset(constant=True), _config(workdir))
    self.assertEqual(metrics['step'], 4)
    with open(os.path.join(workdir, 'config.json')) as f:
      self.assertEqual(json.load(f)['width'], 3)
    # Once a checkpoint exists, a different configuration is refused.
    with self.assertRaisesRegex(ParameterError, 'different configuration'):
      loop.train(_Run(description={'model': 'linear', 'width': 5}), _dataset(constant=True),
                 _config(workdir, total_steps=5))


  def test_run_that_fails_to_restore_does_not_lock_the_workdir_to_its_settings(self):
    # Issue 29 item 4: config.json deleted (as the invalid-json error allows), a
    # run with the wrong model fails on the checkpoint; it must not record its
    # settings, or the right ones are refused next.
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir))
    os.remove(os.path.join(workdir, 'config.json'))

    class Wider(tf.Module):   # another width: the checkpoint does not fit

      def __init__(self):
        super().__init__()
        self.w = tf.Variable(tf.zeros([5, 1]), name='w')
        self.b = tf.Variable(tf.zeros([1]), name='b')

      def __call__(self, x):
        return x @ self.w[:3] + self.b

    with mock.patch('tests.test_training_loop.Linear', Wider):
      with self.assertRaisesRegex(ParameterError, 'cannot restore checkpoint'):
        loop.train(_Run(description={'model': 'linear', 'width': 5}),
                   _dataset(constant=True), _config(workdir, total_steps=6))
    self.assertFalse(os.path.exists(os.path.join(workdir, 'config.json')))
    metrics = loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=6))
    self.assertEqual(metrics['step'], 6)
    self.assertEqual(_read(workdir, 'config.json')['width'], 3)

  def test_config_is_written_with_the_first_checkpoint(self):
    workdir = self.create_tempdir().full_path
    seen = []
    real_save = tf.train.CheckpointManager.save

    def save(manager, *args, **kwargs):
      seen.append(os.path.exists(os.path.join(workdir, 'config.json')))
      return real_save(manager, *args, **kwargs)

    with mock.patch.object(tf.train.CheckpointManager, 'save', save):
      loop.train(_Run(), _dataset(constant=True), _config(workdir, checkpoint_every=2))
    self.assertEqual(seen, [True, True])


class ResumeSettingsTest(tf.test.TestCase):
  """A resume with another learning rate (or clip, EMA decay) warns and is recorded."""

  def test_changed_learning_rate_warns_naming_both_values_and_is_recorded(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(learning_rate=0.05), _dataset(constant=True), _config(workdir))
    self.assertEqual(_read(workdir, 'optimizer.json')['optimizer']['learning_rate'], 0.05)
    run = _Run(learning_rate=0.01)
    metrics, lines = _printed(lambda: loop.train(run, _dataset(constant=True),
                                                 _config(workdir, total_steps=6)))
    self.assertEqual(metrics['step'], 6)
    warning, = [l for l in lines if 'other settings' in l]
    self.assertRegex(warning, rf'^warning: {workdir} resumes at step 4 with other settings '
                     r'.*optimizer\.learning_rate 0\.05 -> 0\.01; continuing with the new')
    self.assertEqual(metrics['settings_changes'], [
        {'step': 4, 'changes': {'optimizer.learning_rate': {'saved': 0.05, 'now': 0.01}}}])
    self.assertEqual(_read(workdir, 'metrics.json')['settings_changes'],
                     metrics['settings_changes'])
    self.assertEqual(_read(workdir, 'optimizer.json')['optimizer']['learning_rate'], 0.01)
    self.assertAllClose(run.task.optimizer.learning_rate(), 0.01)   # the new one is used

  def test_same_settings_resume_silently(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir))
    metrics, lines = _printed(lambda: loop.train(_Run(), _dataset(constant=True),
                                                 _config(workdir, total_steps=6)))
    self.assertFalse([l for l in lines if 'other settings' in l], lines)
    self.assertNotIn('settings_changes', metrics)

  def test_loop_settings_and_earlier_changes_are_kept(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir))
    loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=5,
                                                        grad_clip_norm=1.0))
    metrics, lines = _printed(lambda: loop.train(
        _Run(), _dataset(constant=True), _config(workdir, total_steps=6, grad_clip_norm=1.0,
                                                 ema_decay=0.9)))
    self.assertTrue(any('ema_decay 0.5 -> 0.9' in l for l in lines), lines)
    self.assertEqual([c['step'] for c in metrics['settings_changes']], [4, 5])
    self.assertEqual(metrics['settings_changes'][0]['changes'],
                     {'grad_clip_norm': {'saved': None, 'now': 1.0}})

  def test_run_folder_without_the_record_resumes_and_gets_one(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(learning_rate=0.05), _dataset(constant=True), _config(workdir))
    os.remove(os.path.join(workdir, 'optimizer.json'))   # a run made before the record
    metrics, lines = _printed(lambda: loop.train(_Run(learning_rate=0.01),
                                                 _dataset(constant=True),
                                                 _config(workdir, total_steps=6)))
    self.assertEqual(metrics['step'], 6)
    self.assertFalse([l for l in lines if 'other settings' in l], lines)
    self.assertEqual(_read(workdir, 'optimizer.json')['optimizer']['learning_rate'], 0.01)

  def test_invalid_record_names_the_file(self):
    workdir = self.create_tempdir().full_path
    loop.train(_Run(), _dataset(constant=True), _config(workdir))
    with open(os.path.join(workdir, 'optimizer.json'), 'w') as f:
      f.write('{')
    with self.assertRaisesRegex(ParameterError, r'optimizer\.json is not valid json'):
      loop.train(_Run(), _dataset(constant=True), _config(workdir, total_steps=5))


class DamagedRecordTest(tf.test.TestCase):
  """A record damaged inside a shard is named when the loop reads it."""

  def _damaged_set(self, n=8, index=5):
    out = os.path.join(self.create_tempdir().full_path, 'set')
    patches = np.random.default_rng(0).uniform(size=(n, 2, 3, 1)).astype(np.float32)
    tfrecords.write_patches(patches, out)
    shard, = glob.glob(os.path.join(out, '*.tfrecord*'))
    record = os.path.getsize(shard) // n
    with open(shard, 'r+b') as f:
      f.seek(index * record + 12 + (record - 16) // 2)
      f.write(b'\xff\xff')
    return out, shard

  @staticmethod
  def _as_linear_batches(out, repeat):
    # Patches [2, 3, 1] -> inputs [batch, 3] and targets [batch, 1] of the linear task.
    ds = tfrecords.patch_dataset(out, split='all', shuffle_buffer=0, batch_size=2,
                                 repeat=repeat)
    return ds.map(lambda p: (p[:, 0, :, 0], p[:, 1, :1, 0]))

  def test_damaged_training_record_names_shard_and_record(self):
    out, shard = self._damaged_set()
    with self.assertRaisesRegex(ParameterError, rf"shard '{shard}': record 5 of 8 is damaged"):
      loop.train(_Run(), self._as_linear_batches(out, repeat=True),
                 _config(self.create_tempdir().full_path, total_steps=6))

  def test_damaged_eval_record_names_shard_and_record(self):
    out, shard = self._damaged_set()
    with self.assertRaisesRegex(ParameterError, rf"shard '{shard}': record 5 of 8 is damaged"):
      loop.train(_Run(), _dataset(constant=True),
                 _config(self.create_tempdir().full_path, total_steps=2),
                 eval_data=self._as_linear_batches(out, repeat=False))

  def test_damaged_record_in_glows_init_batch_is_named(self):
    # Issue 29 item 9: Glow reads its data-dependent init batch before the loop;
    # a damaged record there was tf.data's DataLossError (NCSN named the shard).
    from flow_models import cli as glow_cli  # pylint: disable=g-import-not-at-top
    out, shard = self._damaged_set(index=1)
    ds = tfrecords.patch_dataset(out, split='all', shuffle_buffer=0, batch_size=4, repeat=True)
    info = {'image_shape': (4, 4, 1), 'num_examples': 8}   # (the model is never built)
    config = glow_cli.GlowRunConfig(workdir=self.create_tempdir().full_path, steps=1,
                                    batch_size=4)
    with mock.patch.object(glow_cli, '_datasets', return_value=(ds, ds, info)):
      with self.assertRaisesRegex(ParameterError, rf"shard '{shard}': record 1 of 8 is damaged"):
        glow_cli.train(config)


if __name__ == '__main__':
  tf.test.main()
