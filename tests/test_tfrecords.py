"""Tests of pipeline.tfrecords: sharded patch storage and its tf.data reader."""

import dataclasses
import json
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from pipeline import tfrecords
from pipeline.config import FeatureConfig
from common.errors import ParameterError

# 8 mel bands x 4 frames: patches small enough for fast tests.
_SMALL_FEATURES = FeatureConfig(n_mels=8, patch_frames=4, patch_samples=1536)


def _indexed_patches(n, shape=(4, 3, 1)):
  """Patch ``i`` is filled with the value ``i``: reads reveal which it was."""
  return np.broadcast_to(np.arange(n, dtype=np.float32).reshape(
      (n,) + (1,) * len(shape)), (n,) + shape).copy()


def _read_all(folder, **kwargs):
  """All patches of ``folder`` in stored order, as one numpy array."""
  ds = tfrecords.patch_dataset(folder, split='all', shuffle_buffer=0,
                               num_parallel_reads=1, **kwargs)
  return np.stack(list(ds.as_numpy_iterator()))


def _indices(ds):
  """Which ``_indexed_patches`` patches a dataset of single patches holds."""
  return [int(p.reshape(-1)[0]) for p in ds.as_numpy_iterator()]


def _record_bytes(patch):
  """Size of one patch as a TFRecord record (payload + 16 framing bytes)."""
  example = tf.train.Example(features=tf.train.Features(feature={
      'data': tf.train.Feature(float_list=tf.train.FloatList(
          value=patch.reshape(-1).tolist())),
      'shape': tf.train.Feature(int64_list=tf.train.Int64List(
          value=patch.shape)),
  }))
  return len(example.SerializeToString()) + 16


class WriteReadTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters([(2500,)], [(64, 64)], [(96, 64, 1)])
  def test_roundtrip_values_exactly_equal(self, shape):
    rng = np.random.default_rng(0)
    patches = rng.standard_normal((7,) + shape).astype(np.float32)
    folder = self.create_tempdir().full_path
    metadata = tfrecords.write_patches(patches, folder)
    self.assertEqual(metadata['patch_shape'], list(shape))
    self.assertEqual(metadata['count'], 7)
    # float32 -> float_list -> float32 is lossless: exact equality.
    self.assertAllEqual(_read_all(folder), patches)
    batches = list(tfrecords.patch_dataset(
        folder, split='all', shuffle_buffer=0, num_parallel_reads=1,
        batch_size=3).as_numpy_iterator())
    self.assertEqual([b.shape for b in batches],
                     [(3,) + shape, (3,) + shape, (1,) + shape])
    self.assertAllEqual(np.concatenate(batches), patches)

  def test_dataset_element_spec_is_float32_of_stored_shape(self):
    folder = self.create_tempdir().full_path
    tfrecords.write_patches(_indexed_patches(10), folder)
    single = tfrecords.patch_dataset(folder, split='all')
    self.assertEqual(single.element_spec,
                     tf.TensorSpec([4, 3, 1], tf.float32))
    batched = tfrecords.patch_dataset(folder, split='all', batch_size=4,
                                      drop_remainder=True)
    self.assertEqual(batched.element_spec,
                     tf.TensorSpec([4, 4, 3, 1], tf.float32))
    self.assertEqual(int(batched.cardinality()), 2)

  def test_metadata_records_features_provenance_and_value_range(self):
    features = _SMALL_FEATURES
    patches = np.linspace(-3.0, 5.0, 2 * 32, dtype=np.float32).reshape(
        (2,) + features.patch_shape)
    folder = self.create_tempdir().full_path
    provenance = {'sources': ['a.wav', 'b.wav'], 'command': 'wav_to_spec x'}
    tfrecords.write_patches(patches, folder, features=features,
                            provenance=provenance)
    metadata = tfrecords.read_metadata(folder)
    self.assertEqual(metadata['features'], features.to_dict())
    self.assertEqual(tfrecords.read_features(folder), features)
    self.assertEqual(metadata['provenance'], provenance)
    self.assertEqual(metadata['dtype'], 'float32')
    self.assertEqual(metadata['value_range'], {'min': -3.0, 'max': 5.0})

  def test_patch_writer_streams_single_patches_and_batches(self):
    patches = _indexed_patches(9)
    folder = self.create_tempdir().full_path
    with tfrecords.PatchWriter(folder, patch_shape=(4, 3, 1),
                               max_shard_bytes=4 * _record_bytes(
                                   patches[0])) as writer:
      self.assertEqual(writer.add(patches[0]), 1)
      self.assertEqual(writer.add(patches[1:6]), 5)
      self.assertEqual(writer.add(patches[6:]), 3)
      self.assertEqual(writer.count, 9)
      with self.assertRaisesRegex(ParameterError, r'shape \(4, 3\)'):
        writer.add(np.zeros((4, 3), np.float32))
      with self.assertRaisesRegex(ParameterError, 'non-finite'):
        writer.add(np.full((4, 3, 1), np.nan, np.float32))
    self.assertEqual(writer.metadata['count'], 9)
    self.assertAllEqual(_read_all(folder), patches)

  def test_reads_several_folders(self):
    first = self.create_tempdir().full_path
    second = self.create_tempdir().full_path
    tfrecords.write_patches(_indexed_patches(5), first)
    tfrecords.write_patches(_indexed_patches(3) + 100, second)
    ds = tfrecords.patch_dataset([first, second], split='all', seed=0)
    self.assertCountEqual(_indices(ds), [0, 1, 2, 3, 4, 100, 101, 102])

  def test_shuffle_with_seed_is_reproducible(self):
    folder = self.create_tempdir().full_path
    tfrecords.write_patches(_indexed_patches(40), folder, max_shard_bytes=500)
    order = lambda: _indices(tfrecords.patch_dataset(folder, split='all',
                                                     seed=3))
    self.assertEqual(order(), order())
    self.assertNotEqual(order(), sorted(order()))


class ShardingTest(tf.test.TestCase):

  def test_shards_split_at_size_bound_and_counts_match(self):
    patches = _indexed_patches(10, shape=(16, 16))
    record = _record_bytes(patches[0])
    bound = int(3.5 * record)  # Room for 3 records, not 4.
    folder = self.create_tempdir().full_path
    metadata = tfrecords.write_patches(patches, folder, max_shard_bytes=bound,
                                       prefix='img')
    names = [s['file'] for s in metadata['shards']]
    self.assertEqual(names, [f'img-{i:05d}-of-00004.tfrecord'
                             for i in range(4)])
    self.assertEqual([s['count'] for s in metadata['shards']], [3, 3, 3, 1])
    self.assertEqual(sorted(os.listdir(folder)),
                     sorted(names + ['metadata.json']))
    for shard in metadata['shards']:
      size = os.path.getsize(os.path.join(folder, shard['file']))
      self.assertEqual(size, shard['bytes'])
      self.assertEqual(size, shard['count'] * record)
      self.assertLessEqual(size, bound)
    # Every shard but the last was closed because one more record would have
    # crossed the bound.
    for shard in metadata['shards'][:-1]:
      self.assertGreater(shard['bytes'] + record, bound)
    self.assertAllEqual(_read_all(folder), patches)

  def test_raises_when_one_patch_exceeds_shard_bound(self):
    folder = self.create_tempdir().full_path
    with self.assertRaisesRegex(ParameterError, 'max_shard_bytes=100'):
      tfrecords.write_patches(np.zeros((2, 64), np.float32), folder,
                              max_shard_bytes=100)
    self.assertEqual(os.listdir(folder), [])  # Nothing left behind.


class SplitTest(tf.test.TestCase):

  def test_train_test_disjoint_complete_and_independent_of_sharding(self):
    n = 200
    patches = _indexed_patches(n)
    record = _record_bytes(patches[0])
    splits = []
    for records_per_shard, seed in ((n, 0), (7, 1), (1, 2)):
      folder = self.create_tempdir().full_path
      metadata = tfrecords.write_patches(
          patches, folder, max_shard_bytes=records_per_shard * record)
      self.assertLen(metadata['shards'], -(-n // records_per_shard))
      train = _indices(tfrecords.patch_dataset(folder, split='train',
                                               seed=seed))
      test = _indices(tfrecords.patch_dataset(folder, split='test', seed=seed))
      self.assertEmpty(set(train) & set(test))
      self.assertCountEqual(train + test, range(n))
      splits.append((sorted(train), sorted(test)))
    self.assertEqual(splits[0], splits[1])
    self.assertEqual(splits[0], splits[2])
    # The Weyl-sequence rule is within a couple of records of the fraction.
    self.assertBetween(len(splits[0][1]), 18, 22)
    self.assertEqual(
        splits[0][1], list(np.flatnonzero(tfrecords.split_mask(
            n, split='test', test_fraction=0.1))))

  def test_split_cardinality_is_known(self):
    folder = self.create_tempdir().full_path
    tfrecords.write_patches(_indexed_patches(50), folder, max_shard_bytes=500)
    test_count = int(tfrecords.split_mask(50, split='test',
                                          test_fraction=0.2).sum())
    ds = tfrecords.patch_dataset(folder, split='test', test_fraction=0.2)
    self.assertEqual(int(ds.cardinality()), test_count)
    self.assertLen(_indices(ds), test_count)

  def test_raises_on_unknown_split_and_empty_split(self):
    folder = self.create_tempdir().full_path
    tfrecords.write_patches(_indexed_patches(5), folder)
    with self.assertRaisesRegex(ParameterError, "'valid'"):
      tfrecords.patch_dataset(folder, split='valid')
    with self.assertRaisesRegex(ParameterError, "split 'test'.*no record"):
      tfrecords.patch_dataset(folder, split='test', test_fraction=0.0)


class ValidationTest(tf.test.TestCase):

  def _write(self, features=None, n=4):
    folder = self.create_tempdir().full_path
    shape = features.patch_shape if features else (4, 3, 1)
    tfrecords.write_patches(np.zeros((n,) + shape, np.float32), folder,
                            features=features)
    return folder

  def test_raises_on_feature_mismatch_naming_field_and_values(self):
    stored = _SMALL_FEATURES
    folder = self._write(stored)
    expected = dataclasses.replace(stored, fmax=7000.0, fmin=100.0)
    with self.assertRaisesRegex(
        ParameterError,
        r'fmax: stored 7600\.0, expected 7000\.0.*'
        r'fmin: stored 125\.0, expected 100\.0'):
      tfrecords.patch_dataset(folder, features=expected)
    # The matching config is accepted.
    tfrecords.patch_dataset(folder, features=stored, split='all')

  def test_raises_when_features_requested_from_non_audio_folder(self):
    folder = self._write(None)
    with self.assertRaisesRegex(ParameterError, 'non-audio'):
      tfrecords.patch_dataset(folder, features=FeatureConfig())

  def test_raises_when_folders_disagree_on_shape(self):
    a = self._write(None)
    b = self.create_tempdir().full_path
    tfrecords.write_patches(np.zeros((3, 5), np.float32), b)
    with self.assertRaisesRegex(ParameterError, r'shape \(5,\)'):
      tfrecords.patch_dataset([a, b])

  def test_raises_on_missing_metadata(self):
    folder = self.create_tempdir().full_path
    with self.assertRaisesRegex(ParameterError, 'no metadata.json'):
      tfrecords.read_metadata(folder)
    with self.assertRaisesRegex(ParameterError, 'no metadata.json'):
      tfrecords.patch_dataset(folder)

  def test_raises_on_corrupt_metadata(self):
    folder = self._write()
    path = os.path.join(folder, 'metadata.json')
    with open(path, 'w') as f:
      f.write('{"format_version": 1, "count": ')
    with self.assertRaisesRegex(ParameterError, 'corrupt.*JSON'):
      tfrecords.read_metadata(folder)
    with open(path, 'w') as f:
      json.dump({'format_version': 1, 'count': 4}, f)
    with self.assertRaisesRegex(ParameterError, "missing keys.*'shards'"):
      tfrecords.read_metadata(folder)

  def test_raises_on_missing_shard(self):
    folder = self._write()
    shard = tfrecords.read_metadata(folder)['shards'][0]['file']
    os.remove(os.path.join(folder, shard))
    with self.assertRaisesRegex(ParameterError, f'{shard}.*missing'):
      tfrecords.patch_dataset(folder)

  def _replace_shard(self, folder, examples):
    shard = tfrecords.read_metadata(folder)['shards'][0]['file']
    with tf.io.TFRecordWriter(os.path.join(folder, shard)) as writer:
      for example in examples:
        writer.write(example.SerializeToString())
    return shard

  def test_raises_on_record_without_data_key(self):
    folder = self._write()
    example = tf.train.Example(features=tf.train.Features(feature={
        'image': tf.train.Feature(float_list=tf.train.FloatList(
            value=[0.0] * 12)),
    }))
    shard = self._replace_shard(folder, [example] * 4)
    with self.assertRaisesRegex(ParameterError,
                                f'{shard}.*no float_list feature "data"'):
      tfrecords.patch_dataset(folder)

  def test_raises_on_record_length_not_matching_shape(self):
    folder = self._write()
    example = tf.train.Example(features=tf.train.Features(feature={
        'data': tf.train.Feature(float_list=tf.train.FloatList(
            value=[0.0] * 5)),
        'shape': tf.train.Feature(int64_list=tf.train.Int64List(
            value=[4, 3, 1])),
    }))
    shard = self._replace_shard(folder, [example] * 4)
    with self.assertRaisesRegex(ParameterError,
                                f'{shard}.*5 values.*needs 12'):
      tfrecords.patch_dataset(folder)

  def test_raises_on_file_that_is_not_a_tfrecord(self):
    folder = self._write()
    shard = tfrecords.read_metadata(folder)['shards'][0]['file']
    with open(os.path.join(folder, shard), 'wb') as f:
      f.write(b'this is not a tfrecord file at all')
    with self.assertRaisesRegex(ParameterError, f'{shard}.*not a readable'):
      tfrecords.patch_dataset(folder)


class OverwriteTest(tf.test.TestCase):

  def test_refuses_to_overwrite_and_keeps_existing_data(self):
    folder = self.create_tempdir().full_path
    old = _indexed_patches(6)
    tfrecords.write_patches(old, folder)
    with self.assertRaisesRegex(ParameterError,
                                'already holds.*overwrite=True'):
      tfrecords.write_patches(_indexed_patches(3), folder)
    self.assertAllEqual(_read_all(folder), old)

  def test_overwrite_replaces_set_and_removes_old_shards(self):
    folder = self.create_tempdir().full_path
    tfrecords.write_patches(_indexed_patches(30), folder, max_shard_bytes=400)
    new = _indexed_patches(4) + 50
    metadata = tfrecords.write_patches(new, folder, overwrite=True)
    self.assertAllEqual(_read_all(folder), new)
    self.assertEqual(sorted(os.listdir(folder)),
                     sorted([s['file'] for s in metadata['shards']] +
                            ['metadata.json']))

  def test_failed_streaming_write_leaves_old_set_intact(self):
    folder = self.create_tempdir().full_path
    old = _indexed_patches(6)
    tfrecords.write_patches(old, folder)
    before = sorted(os.listdir(folder))
    with self.assertRaisesRegex(RuntimeError, 'source failed'):
      with tfrecords.PatchWriter(folder, patch_shape=(4, 3, 1),
                                 overwrite=True) as writer:
        writer.add(_indexed_patches(3) + 10)
        raise RuntimeError('source failed')
    self.assertEqual(sorted(os.listdir(folder)), before)  # No staging left.
    self.assertAllEqual(_read_all(folder), old)

  def test_raises_when_no_patch_was_added(self):
    folder = self.create_tempdir().full_path
    with self.assertRaisesRegex(ParameterError, 'no patches'):
      with tfrecords.PatchWriter(folder, patch_shape=(2,)):
        pass
    self.assertEqual(os.listdir(folder), [])


class ArgumentTest(tf.test.TestCase):

  def test_raises_on_bad_writer_arguments(self):
    folder = self.create_tempdir().full_path
    with self.assertRaisesRegex(ParameterError, 'patch_shape'):
      tfrecords.PatchWriter(folder)
    with self.assertRaisesRegex(ParameterError, r'max_shard_bytes.*-1'):
      tfrecords.PatchWriter(folder, patch_shape=(2,), max_shard_bytes=-1)
    with self.assertRaisesRegex(ParameterError, r'prefix.*a/b'):
      tfrecords.PatchWriter(folder, patch_shape=(2,), prefix='a/b')
    with self.assertRaisesRegex(ParameterError, r'\(8, 5, 1\)'):
      tfrecords.PatchWriter(folder, patch_shape=(8, 5, 1),
                            features=_SMALL_FEATURES)
    with self.assertRaisesRegex(ParameterError, 'rank|batch'):
      tfrecords.write_patches(np.zeros(5, np.float32), folder)


if __name__ == '__main__':
  tf.test.main()
