"""Damaged TFRecord shards name the file and the record."""

import glob
import os

import numpy as np
import tensorflow as tf

from pipeline import tfrecords
from pipeline.errors import ParameterError

_SHAPE = (4, 3, 1)


class DamagedShardTest(tf.test.TestCase):

  def _write(self, n=5):
    out = os.path.join(self.create_tempdir().full_path, 'set')
    patches = np.random.default_rng(0).uniform(size=(n,) + _SHAPE).astype(np.float32)
    tfrecords.write_patches(patches, out)
    shard, = glob.glob(os.path.join(out, '*.tfrecord*'))
    return out, shard

  def test_intact_set_reads(self):
    out, _ = self._write()
    self.assertLen(list(tfrecords.patch_dataset(out, split='all', shuffle_buffer=0)), 5)

  def test_truncated_shard_names_file_and_record(self):
    out, shard = self._write()
    size = os.path.getsize(shard)
    with open(shard, 'r+b') as f:
      f.truncate(size - size // 5 - 3)     # cut inside record 3 of 5
    with self.assertRaisesRegex(ParameterError, rf'{os.path.basename(shard)}.* truncated at '
                                'record 3 of 5'):
      tfrecords.patch_dataset(out, split='all')

  def test_flipped_header_byte_names_the_record(self):
    out, shard = self._write()
    record = os.path.getsize(shard) // 5
    with open(shard, 'r+b') as f:
      f.seek(2 * record)                   # the length field of record 2
      f.write(b'\xff')
    with self.assertRaisesRegex(ParameterError, r'record 2 has a damaged header'):
      tfrecords.patch_dataset(out, split='all')

  def test_record_of_another_size_after_the_first_is_named(self):
    out, shard = self._write(n=2)
    good = open(shard, 'rb').read()
    record = len(good) // 2
    example = tf.train.Example(features=tf.train.Features(feature={
        'data': tf.train.Feature(float_list=tf.train.FloatList(value=[0.0] * 10))}))
    path = shard + '.tmp'
    with tf.io.TFRecordWriter(path) as w:
      w.write(example.SerializeToString())
    bad = open(path, 'rb').read()
    os.remove(path)
    with open(shard, 'wb') as f:
      f.write(good[:record] + bad + b'\0' * (record - len(bad)))
    with self.assertRaisesRegex(ParameterError, r'record 1 holds \d+ bytes, the first'):
      tfrecords.patch_dataset(out, split='all')


if __name__ == '__main__':
  tf.test.main()
