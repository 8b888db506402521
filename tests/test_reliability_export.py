"""Exports never delete what they did not write (issue 29 item 1).

``training.prior_io.write_prior_folder`` serves ``train_ncsn.py --mode=export``,
``train_glow.py --mode=export`` and ``train_inversion_net.py --export_dir``: its
target must be new, empty or an earlier export of the same kind, and never the
training run itself.
"""

import json
import os

import tensorflow as tf

from common.errors import ParameterError
from inversion import net_training
from ncsn import export as ncsn_export
from training import prior_io


def _write(path, text='x'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)


def _module(value=1.0):
  module = tf.Module()
  module.w = tf.Variable([value, 2.0])
  return module


def _fake_run(root, model='ncsn'):
  """A workdir as the loop leaves it (no real checkpoint is needed to be refused)."""
  run = os.path.join(root, 'run')
  _write(os.path.join(run, 'config.json'), json.dumps({'model': model}))
  _write(os.path.join(run, 'metrics.json'), '{}')
  _write(os.path.join(run, 'checkpoints', 'ckpt-4.index'))
  _write(os.path.join(run, 'tb', 'train', 'events.out'))
  return run


def _tree(folder):
  return sorted(os.path.relpath(os.path.join(d, f), folder)
                for d, _, files in os.walk(folder) for f in files)


class ExportTargetTest(tf.test.TestCase):

  def test_export_into_its_own_workdir_is_refused_and_the_run_kept(self):
    run = _fake_run(self.create_tempdir().full_path)
    before = _tree(run)
    with self.assertRaisesRegex(ParameterError, r'--prior=.*run is the training run .*run'):
      ncsn_export.export_prior(run, run)
    with self.assertRaisesRegex(ParameterError, r'--prior=.* is the training run .* or holds'):
      ncsn_export.export_prior(run, os.path.dirname(run))
    with self.assertRaisesRegex(ParameterError, r'--out_dir=.*training run'):
      prior_io.write_prior_folder(run, _module(), {'model': 'ncsn'}, workdir=run)
    self.assertEqual(_tree(run), before)

  def test_folder_of_user_files_is_refused_naming_them(self):
    root = self.create_tempdir().full_path
    target = os.path.join(root, 'mine')
    _write(os.path.join(target, 'thesis.tex'))
    _write(os.path.join(target, 'data', 'a.wav'))
    with self.assertRaisesRegex(
        ParameterError, r"--prior=.*mine already holds data, thesis.tex and is not a prior "
                        r"folder, not a 'ncsn' one.*give a new or empty folder"):
      prior_io.write_prior_folder(target, _module(), {'model': 'ncsn'}, flag='prior')
    self.assertEqual(_tree(target), ['data/a.wav', 'thesis.tex'])

  def test_prior_of_another_kind_and_another_workdir_are_refused(self):
    root = self.create_tempdir().full_path
    glow = os.path.join(root, 'glow')
    prior_io.write_prior_folder(glow, _module(), {'model': 'glow'})
    with self.assertRaisesRegex(ParameterError, r"is a 'glow' folder, not a 'ncsn' one"):
      prior_io.write_prior_folder(glow, _module(), {'model': 'ncsn'})
    other_run = _fake_run(os.path.join(root, 'other'))   # config.json but no weights
    with self.assertRaisesRegex(ParameterError, r'is not a prior folder'):
      prior_io.write_prior_folder(other_run, _module(), {'model': 'ncsn'})
    with self.assertRaisesRegex(ParameterError, r'is a file, not a folder'):
      prior_io.write_prior_folder(os.path.join(other_run, 'metrics.json'), _module(),
                                  {'model': 'ncsn'})

  def test_re_export_replaces_only_the_prior_files(self):
    target = os.path.join(self.create_tempdir().full_path, 'prior')
    prior_io.write_prior_folder(target, _module(1.0), {'model': 'ncsn', 'step': 1})
    _write(os.path.join(target, 'README.md'), 'my notes')
    _write(os.path.join(target, 'weights.data-00001-of-00002'))   # an older export's shard
    prior_io.write_prior_folder(target, _module(5.0), {'model': 'ncsn', 'step': 2})
    self.assertEqual(prior_io.read_json(os.path.join(target, 'config.json'), 'c')['step'], 2)
    with open(os.path.join(target, 'README.md')) as f:
      self.assertEqual(f.read(), 'my notes')
    self.assertNotIn('weights.data-00001-of-00002', os.listdir(target))
    restored = _module(0.0)
    prior_io.read_checkpoint(os.path.join(target, 'weights'), model=restored)
    self.assertAllEqual(restored.w, [5.0, 2.0])
    self.assertEqual([n for n in os.listdir(os.path.dirname(target)) if n.startswith('.')],
                     [])

  def test_inversion_export_dir_is_checked_before_training(self):
    root = self.create_tempdir().full_path
    target = os.path.join(root, 'keep')
    _write(os.path.join(target, 'notes.txt'))
    config = net_training.NetTrainConfig(
        kind='refiner', workdir=os.path.join(root, 'work'), export_dir=target,
        train_data=(os.path.join(root, 'none', '*.wav'),), steps=1, batch_size=1,
        progress=False)
    with self.assertRaisesRegex(ParameterError, r'--export_dir=.*keep already holds notes.txt'):
      net_training.run(config)
    self.assertFalse(os.path.exists(os.path.join(root, 'work')))
    self.assertEqual(os.listdir(target), ['notes.txt'])


if __name__ == '__main__':
  tf.test.main()
