"""Atomic writes: a failed write (a full disk) is a clear error and leaves nothing behind."""

import os
from unittest import mock

import numpy as np
import tensorflow as tf

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
