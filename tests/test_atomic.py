"""Atomic writes: a failed write (a full disk) is a clear error and leaves nothing behind."""

import os
from unittest import mock

import numpy as np
import tensorflow as tf

from common import atomic
from common.atomic import read_json_checked, save_npy_atomic, write_json_atomic
from common.errors import OutputError, ParameterError


class AtomicWriteTest(tf.test.TestCase):

  def test_a_full_disk_names_the_file_and_keeps_the_old_one(self):
    folder = self.create_tempdir().full_path
    path = os.path.join(folder, 'estimates.npy')
    save_npy_atomic(path, np.zeros(3))

    def full_disk(f, arr, **kwargs):
      del arr, kwargs
      f.write(b'x' * 10)
      raise OSError('3136 requested and 992 written')   # what numpy says on a full disk

    with mock.patch.object(np, 'save', full_disk):
      with self.assertRaisesRegex(OutputError, r'could not write .*estimates\.npy .*3136 '
                                  r'requested.*MB free in'):
        save_npy_atomic(path, np.ones(1000))
    self.assertAllEqual(np.load(path), np.zeros(3))       # the old file is intact
    self.assertEqual(os.listdir(folder), ['estimates.npy'])  # no temporary left
    self.assertIsInstance(OutputError('x'), ParameterError)  # one line from every command

  def test_soundfile_error_on_a_full_disk_is_an_output_error(self):
    # Issue 29 item 9: libsndfile's "System error." is no OSError; it escaped.
    import soundfile as sf  # pylint: disable=g-import-not-at-top
    from pipeline import audio  # pylint: disable=g-import-not-at-top
    folder = self.create_tempdir().full_path
    path = os.path.join(folder, 'piano.wav')

    def full_disk(tmp, *args, **kwargs):
      del args, kwargs
      with open(tmp, 'wb') as f:
        f.write(b'RIFF')
      raise sf.LibsndfileError(2)   # what sf.write raises on a 1 MiB tmpfs

    with mock.patch.object(sf, 'write', full_disk):
      with self.assertRaisesRegex(OutputError, r'could not write .*piano\.wav \(System '
                                  r'error\.\); .*MB free in'):
        audio.write_wav(path, np.zeros(100, np.float32), 16000)
    self.assertEqual(os.listdir(folder), [])

  def test_output_folder_under_a_file_names_the_file(self):
    folder = self.create_tempdir().full_path
    blocker = os.path.join(folder, 'results')
    with open(blocker, 'w') as f:
      f.write('a file')
    with self.assertRaisesRegex(OutputError, rf'could not write .*results/run/a\.json: '
                                rf'{blocker} is a file, not a folder; pick another output'):
      write_json_atomic(os.path.join(blocker, 'run', 'a.json'), {})

  def test_read_only_folder_says_no_permission(self):
    folder = self.create_tempdir().full_path
    denied = PermissionError(13, 'Permission denied')   # (root ignores chmod: mocked)
    with mock.patch('tempfile.mkstemp', side_effect=denied):
      with self.assertRaisesRegex(OutputError, r'could not write .*a\.json: no permission to '
                                  r'write in .*make it writable'):
        write_json_atomic(os.path.join(folder, 'a.json'), {})

  def test_other_errors_in_the_block_pass_unchanged(self):
    with self.assertRaises(ZeroDivisionError):
      with atomic.atomic_path(os.path.join(self.create_tempdir().full_path, 'x')):
        _ = 1 / 0


class WriterFaultTest(tf.test.TestCase):
  """Writers that cannot be atomic files: TFRecord shards, checkpoints (issue 29 item 9)."""

  def test_full_disk_in_the_tfrecord_writer_is_one_error_and_leaves_the_old_set(self):
    from pipeline import tfrecords  # pylint: disable=g-import-not-at-top
    out = self.create_tempdir().full_path
    tfrecords.write_patches(np.zeros((2, 4, 4, 1), np.float32), out)
    before = sorted(os.listdir(out))
    full = tf.errors.ResourceExhaustedError(None, None, 'x.tfrecord; No space left on device')
    with mock.patch.object(tf.io.TFRecordWriter, 'close', side_effect=full):
      with self.assertRaisesRegex(OutputError, r'could not write .*\.tfrecord .*No space '
                                  r'left on device.*MB free in'):
        tfrecords.write_patches(np.ones((3, 4, 4, 1), np.float32), out, overwrite=True)
    self.assertEqual(sorted(os.listdir(out)), before)      # old set intact, no staging left

  def test_full_disk_while_checkpointing_names_the_folder(self):
    from training import loop  # pylint: disable=g-import-not-at-top
    from tests.test_training_loop import _Run, _dataset  # pylint: disable=g-import-not-at-top
    workdir = self.create_tempdir().full_path
    full = tf.errors.ResourceExhaustedError(None, None, 'ckpt_temp; No space left on device')
    with mock.patch.object(tf.train.CheckpointManager, 'save', side_effect=full):
      with self.assertRaisesRegex(OutputError, r'could not write .*checkpoints \(ckpt_temp; '
                                  r'No space left on device\); .*MB free in'):
        loop.train(_Run(), _dataset(constant=True), loop.LoopConfig(
            workdir=workdir, total_steps=2, progress=False))

  def test_json_writer_handles_numpy_and_dataclasses_and_reader_names_problems(self):
    import dataclasses  # pylint: disable=g-import-not-at-top

    @dataclasses.dataclass
    class Settings:
      steps: int = 3

    folder = self.create_tempdir().full_path
    path = os.path.join(folder, 'a.json')
    write_json_atomic(path, {'x': np.float32(1.5), 'y': np.arange(2), 's': Settings(),
                             'b': np.bool_(True)})
    self.assertEqual(read_json_checked(path, missing='none'),
                     {'x': 1.5, 'y': [0, 1], 's': {'steps': 3}, 'b': True})
    with self.assertRaisesRegex(ParameterError, 'make it with X'):
      read_json_checked(os.path.join(folder, 'missing.json'), missing='make it with X')
    with open(path, 'w', encoding='utf-8') as f:
      f.write('{"truncated": ')
    with self.assertRaisesRegex(ParameterError, 'a.json is not valid JSON'):
      read_json_checked(path, missing='none')


if __name__ == '__main__':
  tf.test.main()
