"""Sharded TFRecord storage of patches, with their metadata beside them.

A patch folder holds

* shards ``{prefix}-00000-of-00003.tfrecord`` ... of bounded size, one
  ``tf.train.Example`` per patch with two features: ``data`` (``float_list``,
  the patch flattened in C order, float32) and ``shape`` (``int64_list``);
* ``metadata.json``: format version, the feature parameters the patches were
  made with (``FeatureConfig.to_dict()``, or null for non-audio data), patch
  shape, dtype, total count, per-shard file and count, value range and the
  caller's provenance (source files, command, date, ...).

Spectrogram patches are ``[height, width, channels]`` = ``[n_mels,
patch_frames, 1]`` (see ``pipeline.config``); any fixed shape can be stored.

Writes are atomic: shards and metadata are first written into a hidden
staging folder inside the destination and only moved into place once the
whole set is complete, ``metadata.json`` last. A folder with a
``metadata.json`` therefore always describes a complete set; an interrupted
write leaves the previous set untouched (or, if it died while moving files
in, no ``metadata.json`` at all, which readers report clearly).

All file operations go through ``tf.io.gfile``, so folders may live on any
filesystem TensorFlow reads (local paths, ``gs://`` ...).

Damage: :func:`patch_dataset` checks every record header when it builds the
dataset (a truncated shard, a bad header, a record of another size are named
there), but not the payloads: their CRCs are checked by ``tf.data`` while
reading, which raises a ``DataLossError`` ("corrupted record at 208") naming
neither file nor record. Reading every payload up front would cost a pass
over the whole set (~1 GB) at each build, so instead the consumer wraps its
iteration in :func:`naming_damaged_records` (the training loop does): on a
``DataLossError`` the shards of the datasets built in this process are read
again, CRC-checked by ``tf.data``, to name the damaged file and record.
"""

import contextlib
import datetime
import json
import os
import re
import socket
import struct
import sys
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from common import atomic
from pipeline.config import FeatureConfig
from common.errors import ParameterError

FORMAT_NAME = 'patch-tfrecords'
FORMAT_VERSION = 1
METADATA_FILE = 'metadata.json'
DEFAULT_MAX_SHARD_BYTES = 64 * 1024 * 1024
# Per-record framing of the TFRecord format: uint64 length, uint32 masked CRC
# of the length, the payload, uint32 masked CRC of the payload.
_RECORD_OVERHEAD_BYTES = 16
# The split rule: record ``i`` of a folder (0-based, in write order) is a test
# record iff ``frac(i * _SPLIT_STEP) < test_fraction``. The step is the golden
# ratio conjugate, so the test records are spread evenly through the folder
# (a low-discrepancy Weyl sequence) and every prefix of the folder holds
# about ``test_fraction`` of test records.
_SPLIT_STEP = 0.6180339887498949
_SPLITS = ('train', 'test', 'all')
_STAGING_PREFIX = '.staging-'
_REQUIRED_KEYS = ('format_version', 'features', 'patch_shape', 'dtype', 'count',
                  'shards')
# Shard path -> record count, for every shard a patch_dataset of this process
# reads (what naming_damaged_records searches).
_SHARDS_READ: Dict[str, int] = {}
_SCAN_BATCH = 256


def _join(folder: str, name: str) -> str:
  return os.path.join(folder, name)


def _holds_patch_set(folder: str) -> bool:
  """True if ``folder`` has a metadata.json or any ``*.tfrecord`` file."""
  if not tf.io.gfile.isdir(folder):
    return False
  return (tf.io.gfile.exists(_join(folder, METADATA_FILE)) or
          bool(tf.io.gfile.glob(_join(folder, '*.tfrecord'))))


_OWNER_FILE = 'owner'


def _owner_alive(staging: str) -> bool:
  """Whether the process that made a staging folder may still be writing it."""
  try:
    with tf.io.gfile.GFile(_join(staging, _OWNER_FILE)) as f:
      host, pid = f.read().split()
  except (tf.errors.NotFoundError, ValueError):
    return False      # no owner: left by a writer killed before it wrote one
  if host != socket.gethostname():
    return True       # another machine's: not ours to judge
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return False
  except (PermissionError, ValueError):
    return True
  return True


def remove_orphaned_staging(out_dir: str, *, log=None) -> List[str]:
  """Removes ``.staging-*`` folders of killed writers from ``out_dir``.

  A writer killed before :meth:`PatchWriter.close` leaves its staging folder
  (as large as the data). A folder whose owner (host and pid, recorded when
  it was made) no longer runs on this host is removed; another live
  writer's is kept.

  Returns:
    The removed folders.
  """
  removed = []
  if not tf.io.gfile.isdir(out_dir):
    return removed
  for name in sorted(tf.io.gfile.listdir(out_dir)):
    name = name.rstrip('/')
    path = _join(out_dir, name)
    if name.startswith(_STAGING_PREFIX) and tf.io.gfile.isdir(path) and not _owner_alive(path):
      tf.io.gfile.rmtree(path)
      removed.append(path)
      (log or (lambda m: print(m, file=sys.stderr)))(
          f'removed {path}: the staging folder of an earlier, killed run')
  return removed


def _serialize(flat: np.ndarray, shape: Tuple[int, ...]) -> bytes:
  """A ``tf.train.Example`` of a flattened float32 patch and its shape."""
  return tf.train.Example(features=tf.train.Features(feature={
      'data': tf.train.Feature(float_list=tf.train.FloatList(
          value=flat.tolist())),
      'shape': tf.train.Feature(int64_list=tf.train.Int64List(value=shape)),
  })).SerializeToString()


def _shard_name(prefix: str, index: int, total: int) -> str:
  return f'{prefix}-{index:05d}-of-{total:05d}.tfrecord'


class PatchWriter:
  """Streams patches into a sharded TFRecord folder (a context manager).

  Use it to write more patches than fit in memory::

    with PatchWriter(out_dir, features=config, provenance=info) as writer:
      for path in wav_files:
        writer.add(patches_of(path))   # [n, 96, 64, 1] or one [96, 64, 1]
    metadata = writer.metadata

  Leaving the ``with`` block normally commits the set (see ``close``);
  leaving it with an exception discards everything written (``abort``) and
  leaves the folder as it was.

  Args:
    out_dir: destination folder; created if missing.
    patch_shape: shape of one patch, e.g. ``(96, 64, 1)``. Defaults to
      ``features.patch_shape``; required when ``features`` is None.
    features: the ``FeatureConfig`` the patches were made with, or None for
      non-audio data (images, synthetic arrays).
    max_shard_bytes: int > 0, upper bound on the size of one shard file in
      bytes; a new shard starts before a record would cross it.
    prefix: shard file name prefix (no path separators).
    provenance: JSON-serialisable mapping stored verbatim in the metadata
      (e.g. source files, command line, date); values JSON cannot encode
      (datetimes, paths) are stored as their ``str``.
    overwrite: if False, refuse a folder that already holds shards or a
      ``metadata.json``; if True, replace that set, but only after the new
      set is completely written.

  Raises:
    ParameterError: for a bad shape, size bound, prefix or provenance, a
      ``patch_shape`` whose size disagrees with ``features``, or an occupied
      folder without ``overwrite``.
  """

  def __init__(self, out_dir: str, *,
               patch_shape: Optional[Sequence[int]] = None,
               features: Optional[FeatureConfig] = None,
               max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
               prefix: str = 'patches',
               provenance: Optional[Mapping[str, Any]] = None,
               overwrite: bool = False):
    if features is not None and not isinstance(features, FeatureConfig):
      raise ParameterError(
          f'features must be a FeatureConfig or None, got {type(features)}')
    if patch_shape is None:
      if features is None:
        raise ParameterError('give patch_shape (or features) to PatchWriter')
      patch_shape = features.patch_shape
    patch_shape = tuple(patch_shape)
    if (not patch_shape or
        not all(isinstance(d, (int, np.integer)) and d > 0
                for d in patch_shape)):
      raise ParameterError(
          f'patch_shape must be a non-empty tuple of positive ints, got '
          f'{patch_shape!r}')
    self._shape = tuple(int(d) for d in patch_shape)
    self._size = int(np.prod(self._shape))
    if (features is not None and
        self._size != int(np.prod(features.patch_shape))):
      raise ParameterError(
          f'patch_shape={self._shape} does not hold the '
          f'{features.patch_shape} patches that features describe')
    if (not isinstance(max_shard_bytes, (int, np.integer)) or
        isinstance(max_shard_bytes, bool) or max_shard_bytes <= 0):
      raise ParameterError(
          f'max_shard_bytes must be a positive int, got {max_shard_bytes!r}')
    if (not prefix or '/' in prefix or os.sep in prefix or
        prefix.startswith('.')):
      raise ParameterError(
          f'prefix must be a plain file name prefix, got {prefix!r}')
    if provenance is None:
      provenance = {}
    if not isinstance(provenance, Mapping):
      raise ParameterError(
          f'provenance must be a mapping (dict), got {type(provenance)}')
    try:
      self._provenance = json.loads(json.dumps(dict(provenance), default=str))
    except (TypeError, ValueError) as e:
      raise ParameterError(f'provenance cannot be stored as JSON: {e}') from e
    if _holds_patch_set(out_dir) and not overwrite:
      raise ParameterError(
          f'{out_dir!r} already holds TFRecord shards or a {METADATA_FILE}; '
          'pass overwrite=True to replace them (the old set is kept until the '
          'new one is complete)')

    self._out_dir = out_dir
    self._features = features
    self._max_shard_bytes = int(max_shard_bytes)
    self._prefix = prefix
    self._overwrite = overwrite
    tf.io.gfile.makedirs(out_dir)
    remove_orphaned_staging(out_dir)
    self._staging = _join(out_dir, f'{_STAGING_PREFIX}{uuid.uuid4().hex}')
    tf.io.gfile.makedirs(self._staging)
    with tf.io.gfile.GFile(_join(self._staging, _OWNER_FILE), 'w') as f:
      f.write(f'{socket.gethostname()} {os.getpid()}')
    self._shards: List[Dict[str, int]] = []  # staged shards: count, bytes
    self._writer = None
    self._count = 0
    self._min = np.inf
    self._max = -np.inf
    self._metadata = None
    self._closed = False

  @property
  def patch_shape(self) -> Tuple[int, ...]:
    return self._shape

  @property
  def count(self) -> int:
    """Number of patches added so far."""
    return self._count

  @property
  def metadata(self) -> Optional[Dict[str, Any]]:
    """The metadata dict once ``close`` has committed the set, else None."""
    return self._metadata

  def _check_open(self):
    if self._closed:
      raise ParameterError(f'PatchWriter for {self._out_dir!r} is closed')

  def _staged_path(self, index: int) -> str:
    return _join(self._staging, f'shard-{index:05d}.tfrecord')

  def update_provenance(self, **entries):
    """Adds entries to the provenance before the set is committed.

    Raises:
      ParameterError: if a value cannot be stored as JSON.
    """
    try:
      self._provenance.update(json.loads(json.dumps(entries, default=str)))
    except (TypeError, ValueError) as e:
      raise ParameterError(f'provenance cannot be stored as JSON: {e}') from e

  def add(self, patches) -> int:
    """Appends one patch or a batch of patches.

    Args:
      patches: array-like of real numbers, one patch of shape ``patch_shape``
        or a batch ``[n, *patch_shape]``; stored as float32.

    Returns:
      The number of patches added.

    Raises:
      ParameterError: if the writer is closed, the shape fits neither a patch
        nor a batch, the values are not real numbers or not finite, or one
        patch alone is larger than ``max_shard_bytes``.
    """
    self._check_open()
    try:
      arr = np.asarray(patches)
    except Exception as e:  # e.g. ragged nested lists
      raise ParameterError(f'patches are not an array: {e}') from e
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or
                                 np.issubdtype(arr.dtype, np.integer)):
      raise ParameterError(
          f'patches must hold real numbers, got dtype {arr.dtype}')
    if arr.shape == self._shape:
      arr = arr[np.newaxis]
    elif arr.shape[1:] != self._shape:
      raise ParameterError(
          f'patches of shape {arr.shape} are neither one patch of shape '
          f'{self._shape} nor a batch [n, *{self._shape}]')
    arr = arr.astype(np.float32, copy=False).reshape(arr.shape[0], self._size)
    if arr.shape[0] == 0:
      return 0
    finite = np.isfinite(arr)
    if not finite.all():
      row = int(np.flatnonzero(~finite.all(axis=1))[0])
      raise ParameterError(
          f'patch {self._count + row} holds non-finite values (NaN or inf)')
    for row in arr:
      record = _serialize(row, self._shape)
      n_bytes = len(record) + _RECORD_OVERHEAD_BYTES
      if n_bytes > self._max_shard_bytes:
        raise ParameterError(
            f'one patch takes {n_bytes} bytes as a record, more than '
            f'max_shard_bytes={self._max_shard_bytes}')
      if (self._writer is None or
          self._shards[-1]['bytes'] + n_bytes > self._max_shard_bytes):
        self._start_shard()
      with atomic.writing(self._staged_path(len(self._shards) - 1)):
        self._writer.write(record)
      self._shards[-1]['count'] += 1
      self._shards[-1]['bytes'] += n_bytes
    self._count += arr.shape[0]
    self._min = min(self._min, float(arr.min()))
    self._max = max(self._max, float(arr.max()))
    return arr.shape[0]

  def _start_shard(self):
    if self._writer is not None:
      self._close_shard()
    with atomic.writing(self._staged_path(len(self._shards))):
      self._writer = tf.io.TFRecordWriter(self._staged_path(len(self._shards)))
    self._shards.append({'count': 0, 'bytes': 0})

  def _close_shard(self):
    """Closes the open shard; a full disk (TF flushes here) is an OutputError."""
    writer, self._writer = self._writer, None
    with atomic.writing(self._staged_path(len(self._shards) - 1)):
      writer.close()

  def close(self) -> Dict[str, Any]:
    """Commits the set: moves the shards into place, then ``metadata.json``.

    With ``overwrite`` the previous set (its ``metadata.json`` and every
    ``*.tfrecord`` file of the folder) is removed only now, after the new set
    is complete in the staging folder.

    Returns:
      The metadata dict that was written (see ``read_metadata``).

    Raises:
      ParameterError: if no patch was added (nothing is written then) or the
        writer is already closed; an ``OutputError`` for a failed write (a
        full disk), after which the staging folder is removed.
    """
    self._check_open()
    if self._count == 0:
      self.abort()
      raise ParameterError(f'no patches were added for {self._out_dir!r}')
    try:
      if self._writer is not None:
        self._close_shard()
      return self._commit()
    except ParameterError:
      self.abort()   # a full disk: the staging folder goes, the old set stays
      raise

  def _commit(self) -> Dict[str, Any]:
    """Writes metadata.json into the staging folder and moves the set into place."""
    total = len(self._shards)
    names = [_shard_name(self._prefix, i, total) for i in range(total)]
    metadata = {
        'format': FORMAT_NAME,
        'format_version': FORMAT_VERSION,
        'features': (None if self._features is None else
                     self._features.to_dict()),
        'patch_shape': list(self._shape),
        'dtype': 'float32',
        'count': self._count,
        'shards': [{'file': name, 'count': s['count'], 'bytes': s['bytes']}
                   for name, s in zip(names, self._shards)],
        'max_shard_bytes': self._max_shard_bytes,
        'value_range': {'min': self._min, 'max': self._max},
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'provenance': self._provenance,
    }
    staged_meta = _join(self._staging, METADATA_FILE)
    with atomic.writing(staged_meta):
      with tf.io.gfile.GFile(staged_meta, 'w') as f:
        f.write(json.dumps(metadata, indent=2, sort_keys=True))
    # The new set is complete: only now touch the old one. metadata.json goes
    # first (the folder stops claiming a set) and comes back last.
    final_meta = _join(self._out_dir, METADATA_FILE)
    if tf.io.gfile.exists(final_meta):
      tf.io.gfile.remove(final_meta)
    keep = set(names)
    for old in tf.io.gfile.glob(_join(self._out_dir, '*.tfrecord')):
      if os.path.basename(old) not in keep:
        tf.io.gfile.remove(old)
    for i, name in enumerate(names):
      tf.io.gfile.rename(self._staged_path(i), _join(self._out_dir, name),
                         overwrite=True)
    tf.io.gfile.rename(staged_meta, final_meta, overwrite=True)
    tf.io.gfile.rmtree(self._staging)
    self._closed = True
    self._metadata = metadata
    return metadata

  def abort(self):
    """Discards everything written; the folder keeps its previous content."""
    if self._closed:
      return
    if self._writer is not None:
      writer, self._writer = self._writer, None
      try:
        writer.close()
      except tf.errors.OpError:   # e.g. a full disk: the shard is discarded anyway
        pass
    if tf.io.gfile.exists(self._staging):
      tf.io.gfile.rmtree(self._staging)
    self._closed = True

  def __enter__(self) -> 'PatchWriter':
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:
      self.abort()
    return False


def write_patches(patches, out_dir: str, *,
                  features: Optional[FeatureConfig] = None,
                  max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
                  prefix: str = 'patches',
                  provenance: Optional[Mapping[str, Any]] = None,
                  overwrite: bool = False) -> Dict[str, Any]:
  """Writes a batch of patches as sharded TFRecords plus ``metadata.json``.

  Args:
    patches: array-like of real numbers ``[n, *patch_shape]`` with n >= 1,
      e.g. ``[n, n_mels, patch_frames, 1]`` spectrogram patches or
      ``[n, 28, 28, 1]`` images; stored as float32.
    out_dir: destination folder; created if missing.
    features: the ``FeatureConfig`` the patches were made with, or None for
      non-audio data.
    max_shard_bytes: int > 0, upper bound on one shard's size in bytes.
    prefix: shard file name prefix.
    provenance: JSON-serialisable mapping stored in the metadata.
    overwrite: replace an existing set (after the new one is complete).

  Returns:
    The metadata dict written to ``metadata.json`` (see ``read_metadata``).

  Raises:
    ParameterError: see ``PatchWriter``; also if ``patches`` has rank < 2 or
      holds no patch.
  """
  arr = np.asarray(patches)
  if arr.ndim < 2:
    raise ParameterError(
        f'patches must be a batch [n, *patch_shape], got shape {arr.shape}')
  with PatchWriter(out_dir, patch_shape=arr.shape[1:], features=features,
                   max_shard_bytes=max_shard_bytes, prefix=prefix,
                   provenance=provenance, overwrite=overwrite) as writer:
    writer.add(arr)
  return writer.metadata


def read_metadata(folder: str) -> Dict[str, Any]:
  """Reads and checks the ``metadata.json`` of a patch folder.

  Args:
    folder: a folder written by ``write_patches`` / ``PatchWriter``.

  Returns:
    The metadata dict: ``format_version``, ``features`` (a
    ``FeatureConfig.to_dict()`` or None), ``patch_shape`` (list of ints),
    ``dtype``, ``count``, ``shards`` (list of ``{'file', 'count', 'bytes'}``,
    file names relative to ``folder``), ``value_range`` (``{'min', 'max'}``),
    ``provenance`` and ``created_utc``.

  Raises:
    ParameterError: if the file is missing, not valid JSON, lacks a required
      key, has a newer format version, or its counts disagree.
  """
  path = _join(folder, METADATA_FILE)
  if not tf.io.gfile.exists(path):
    raise ParameterError(
        f'no {METADATA_FILE} in {folder!r}: not a patch folder written by '
        'write_patches/PatchWriter, or its write was interrupted')
  try:
    with tf.io.gfile.GFile(path, 'r') as f:
      metadata = json.loads(f.read())
  except (ValueError, UnicodeDecodeError) as e:
    raise ParameterError(f'{path!r} is corrupt (not valid JSON): {e}') from e
  if not isinstance(metadata, dict):
    raise ParameterError(
        f'{path!r} is corrupt: expected a JSON object, got '
        f'{type(metadata).__name__}')
  missing = [k for k in _REQUIRED_KEYS if k not in metadata]
  if missing:
    raise ParameterError(f'{path!r} is corrupt: missing keys {missing}')
  if metadata['format_version'] != FORMAT_VERSION:
    raise ParameterError(
        f'{path!r} has format_version={metadata["format_version"]!r}; this '
        f'code reads version {FORMAT_VERSION}')
  try:
    counts = [int(s['count']) for s in metadata['shards']]
    files_ok = all(isinstance(s['file'], str) for s in metadata['shards'])
    shape = [int(d) for d in metadata['patch_shape']]
  except (TypeError, KeyError, ValueError) as e:
    raise ParameterError(
        f'{path!r} is corrupt: bad shards or patch_shape entry ({e!r})') from e
  if not files_ok:
    raise ParameterError(
        f'{path!r} is corrupt: a shard file name is not a string')
  if sum(counts) != metadata['count']:
    raise ParameterError(
        f'{path!r} is corrupt: shard counts sum to {sum(counts)}, count says '
        f'{metadata["count"]}')
  if not shape or min(shape) <= 0:
    raise ParameterError(f'{path!r} has a bad patch_shape {shape}')
  return metadata


def read_features(folder: str) -> Optional[FeatureConfig]:
  """The ``FeatureConfig`` a patch folder was written with (None if non-audio).

  Raises:
    ParameterError: see ``read_metadata``; also for unknown feature keys.
  """
  features = read_metadata(folder)['features']
  return None if features is None else FeatureConfig.from_dict(features)


def split_mask(count: int, *, split: str, test_fraction: float) -> np.ndarray:
  """Which records of a folder belong to ``split``.

  Record ``i`` (0-based position in write order, across all shards of the
  folder) is a test record iff ``frac(i * 0.618...) < test_fraction``. The
  rule depends only on ``i``: not on how the folder is sharded, on read
  order or on shuffling. Train and test are disjoint and together cover the
  folder.

  Args:
    count: int >= 0, number of records in the folder.
    split: 'train', 'test' or 'all'.
    test_fraction: float in [0, 1].

  Returns:
    bool ``np.ndarray`` ``[count]``.

  Raises:
    ParameterError: for an unknown split or a fraction outside [0, 1].
  """
  _check_split(split, test_fraction)
  if split == 'all':
    return np.ones([count], dtype=bool)
  is_test = np.mod(np.arange(count, dtype=np.float64) * _SPLIT_STEP,
                   1.0) < test_fraction
  return is_test if split == 'test' else ~is_test


def _check_split(split: str, test_fraction: float):
  if split not in _SPLITS:
    raise ParameterError(f'split must be one of {_SPLITS}, got {split!r}')
  if not 0.0 <= test_fraction <= 1.0:
    raise ParameterError(
        f'test_fraction must be in [0, 1], got {test_fraction!r}')


def _crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), bitwise; used on 8-byte record headers only."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
  return crc ^ 0xFFFFFFFF


def _masked_crc32c(data: bytes) -> int:
  crc = _crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _read_first_record(path: str) -> Optional[bytes]:
  """The payload of a TFRecord file's first record, or None if it is empty.

  Reads only the first record's bytes (much faster than opening a
  ``tf.data`` pipeline per shard) and checks the header's CRC, which tells a
  TFRecord file from anything else; payload CRCs are checked by ``tf.data``
  while reading.

  Raises:
    ParameterError: if the file does not start with a valid record.
  """
  with tf.io.gfile.GFile(path, 'rb') as f:
    header = f.read(12)
    if not header:
      return None
    length = struct.unpack('<Q', header[:8])[0] if len(header) == 12 else -1
    if (length < 0 or
        struct.unpack('<I', header[8:])[0] != _masked_crc32c(header[:8])):
      raise ParameterError(
          f'shard {path!r} is not a readable TFRecord file (bad first '
          'record header)')
    payload = f.read(length)
  if len(payload) != length:
    raise ParameterError(
        f'shard {path!r} is not a readable TFRecord file (first record '
        f'truncated: {len(payload)} of {length} bytes)')
  return payload


def _check_record_layout(path: str, shard_count: int, first_length: int):
  """Walks a shard's record headers: every record whole and of the first's size.

  All records of a patch set serialize to the same number of bytes, so a
  shard of ``n`` records is ``n * (first_length + 16)`` bytes and record
  ``i`` starts at ``i * (first_length + 16)``. Every header is read (12 bytes
  each, the payloads skipped: about 20 us per record) to name the first
  damaged record. Payload CRCs are still checked by ``tf.data``.

  Raises:
    ParameterError: naming the shard and the record (0-based) that is
      truncated, has a bad header, or differs in size from the first.
  """
  record_bytes = first_length + 16
  size = tf.io.gfile.stat(path).length
  with tf.io.gfile.GFile(path, 'rb') as f:
    for index in range(shard_count):
      truncated = ParameterError(
          f'shard {path!r} is truncated at record {index} of {shard_count} '
          f'({size} bytes; {METADATA_FILE} needs {shard_count * record_bytes})')
      if index * record_bytes + 12 > size:
        raise truncated
      f.seek(index * record_bytes)
      header = f.read(12)
      length = struct.unpack('<Q', header[:8])[0]
      if struct.unpack('<I', header[8:])[0] != _masked_crc32c(header[:8]):
        raise ParameterError(
            f'shard {path!r}: record {index} has a damaged header (bad CRC)')
      if length != first_length:
        raise ParameterError(
            f'shard {path!r}: record {index} holds {length} bytes, the first '
            f'record {first_length}: the shard is damaged or not a patch set')
      if (index + 1) * record_bytes > size:
        raise truncated
  if size == shard_count * record_bytes:
    return
  raise ParameterError(
      f'shard {path!r} is {size} bytes, {METADATA_FILE} says {shard_count} '
      f'records of {record_bytes} bytes ({shard_count * record_bytes}): it '
      'holds extra data')


def _check_first_record(path: str, shard_count: int,
                        shape: Tuple[int, ...]):
  """Parses a shard's first record eagerly so schema errors surface early,
  and checks that every record is whole (:func:`_check_record_layout`)."""
  if not tf.io.gfile.exists(path):
    raise ParameterError(f'shard {path!r} listed in {METADATA_FILE} is missing')
  first = _read_first_record(path)
  if first is None:
    raise ParameterError(
        f'shard {path!r} is empty, but {METADATA_FILE} says it holds '
        f'{shard_count} records')
  try:
    example = tf.train.Example.FromString(first)
  except Exception as e:  # protobuf DecodeError
    raise ParameterError(
        f'shard {path!r}: first record is not a tf.train.Example ({e})') from e
  _check_record_layout(path, shard_count, len(first))
  feature = example.features.feature
  size = int(np.prod(shape))
  if ('data' not in feature or
      feature['data'].WhichOneof('kind') != 'float_list'):
    raise ParameterError(
        f'shard {path!r}: first record has no float_list feature "data" '
        f'(keys: {sorted(feature.keys())})')
  n_values = len(feature['data'].float_list.value)
  if n_values != size:
    raise ParameterError(
        f'shard {path!r}: first record holds {n_values} values in "data", '
        f'but the patch shape {shape} needs {size}')
  if 'shape' in feature:
    stored = tuple(feature['shape'].int64_list.value)
    if stored != shape:
      raise ParameterError(
          f'shard {path!r}: first record has shape {stored}, '
          f'{METADATA_FILE} says {shape}')


def _check_features(folder: str, stored: Optional[Dict[str, Any]],
                    expected: Optional[FeatureConfig]):
  if expected is None:
    return
  if stored is None:
    raise ParameterError(
        f'{folder!r} holds non-audio patches (no feature parameters in '
        f'{METADATA_FILE}), but features were requested')
  # Compared as dicts, so a folder written by an older or newer FeatureConfig
  # (a field more or less) is reported field by field, not as a crash.
  ours = expected.to_dict()
  missing = '<not recorded>'
  differences = {k: (ours.get(k, missing), stored.get(k, missing))
                 for k in sorted(set(ours) | set(stored))
                 if ours.get(k, missing) != stored.get(k, missing)}
  if differences:
    detail = ', '.join(f'{name}: stored {theirs!r}, expected {mine!r}'
                       for name, (mine, theirs) in differences.items())
    raise ParameterError(
        f'feature parameters of {folder!r} differ from the expected ones: '
        f'{detail}')


def find_damaged_record(paths: Optional[Sequence[str]] = None
                        ) -> Optional[Tuple[str, int, str]]:
  """The first record that ``tf.data`` cannot read, by reading the shards again.

  Reads each shard with ``tf.data.TFRecordDataset`` (which checks every
  record's CRCs) in batches of 256 records, then, in the batch that fails,
  record by record. About the cost of one pass over the data (a second or
  so per GB), so it is meant for after a ``DataLossError``, not for every
  build.

  Args:
    paths: shard files; default: the shards of every :func:`patch_dataset`
      built in this process, the newest first (missing files are skipped).

  Returns:
    ``(path, record_index, error_message)`` (0-based index), or None if every
    shard reads.
  """
  if paths is None:
    paths = list(reversed(_SHARDS_READ))
  for path in paths:
    if not tf.io.gfile.exists(path):
      continue
    batches = 0
    try:
      for _ in tf.data.TFRecordDataset(path).batch(_SCAN_BATCH):
        batches += 1
      continue
    except tf.errors.OpError:
      pass
    index = batches * _SCAN_BATCH
    try:
      for _ in tf.data.TFRecordDataset(path).skip(index):
        index += 1
    except tf.errors.OpError as e:
      # "{{function_node ...}} corrupted record at 50678 [Op:IteratorGetNext] name:"
      detail = re.sub(r'\{\{.*?\}\}|\[Op:.*$', '', e.message.strip().splitlines()[0])
      return path, index, detail.strip()
  return None


def damaged_record_error(error: tf.errors.OpError,
                         paths: Optional[Sequence[str]] = None) -> Exception:
  """A ParameterError naming the shard and record behind ``error``.

  Args:
    error: the ``DataLossError`` (or other read error) ``tf.data`` raised.
    paths: shards to search (see :func:`find_damaged_record`).

  Returns:
    A ``ParameterError`` naming the file, the record and the original
    message; ``error`` itself when no shard is damaged (the error came from
    elsewhere).
  """
  found = find_damaged_record(paths)
  if found is None:
    return error
  path, index, detail = found
  count = _SHARDS_READ.get(path)
  of = f' of {count}' if count else ''
  return ParameterError(
      f'shard {path!r}: record {index}{of} is damaged (tf.data: {detail}; the '
      'record fails its CRC check): restore the file or re-create the data set')


@contextlib.contextmanager
def naming_damaged_records(paths: Optional[Sequence[str]] = None):
  """Turns a ``tf.data`` ``DataLossError`` raised inside into a ParameterError
  naming the damaged shard and record (:func:`damaged_record_error`).

  Example:
    >>> with naming_damaged_records():
    ...   for batch in patch_dataset(folder):
    ...     ...
  """
  try:
    yield
  except tf.errors.DataLossError as e:
    named = damaged_record_error(e, paths)
    if named is e:
      raise
    raise named from e


def patch_dataset(folders: Union[str, Sequence[str]], *,
                  features: Optional[FeatureConfig] = None,
                  split: str = 'train',
                  test_fraction: float = 0.1,
                  batch_size: Optional[int] = None,
                  shuffle_buffer: Optional[int] = 2048,
                  seed: Optional[int] = None,
                  repeat: bool = False,
                  num_parallel_reads: int = tf.data.AUTOTUNE,
                  drop_remainder: bool = False) -> tf.data.Dataset:
  """A ``tf.data.Dataset`` of the patches stored in one or more folders.

  The shards of all folders are read in parallel (interleaved), filtered to
  the split (see ``split_mask``; each folder is split on its own), shuffled,
  parsed (batched when ``batch_size`` is given) and prefetched. Metadata and
  the first record of every shard are checked when the dataset is built, so
  a wrong folder fails here and not deep inside a training loop.

  Args:
    folders: a folder or a sequence of folders written by ``write_patches``
      / ``PatchWriter``; all must hold patches of the same shape and feature
      parameters.
    features: the ``FeatureConfig`` the caller expects (e.g. the one its
      prior was trained on), or None to accept what the folders hold.
    split: 'train', 'test' or 'all'.
    test_fraction: float in [0, 1], share of each folder's records in 'test'.
    batch_size: int > 0 to batch, or None for single patches.
    shuffle_buffer: int, records in the shuffle buffer; 0 or None to keep
      the (interleaved) read order. Shard order is shuffled too.
    seed: int seed of the shuffles, or None for a different order every run.
    repeat: repeat indefinitely (reshuffled every epoch).
    num_parallel_reads: shards read at once, or ``tf.data.AUTOTUNE``.
    drop_remainder: drop a last, smaller batch.

  Returns:
    A dataset of float32 patches ``[*patch_shape]``, or
    ``[batch, *patch_shape]`` when batched (e.g. ``[batch, n_mels,
    patch_frames, 1]``). Unless repeated, its cardinality is known. A
    payload damaged inside a record is only seen while reading, as a
    ``DataLossError``: iterate inside :func:`naming_damaged_records` to have
    it named.

  Raises:
    ParameterError: for bad arguments, missing or corrupt metadata, folders
      that disagree, feature parameters that differ from ``features`` (the
      message names every differing field and both values), missing shards,
      a shard whose first record does not match the schema, a truncated
      shard or a damaged record header (naming the record), or an empty
      split.
  """
  if isinstance(folders, (str, bytes, os.PathLike)):
    folders = [folders]
  folders = [os.fspath(f) for f in folders]
  if not folders:
    raise ParameterError('folders is empty')
  _check_split(split, test_fraction)
  if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                 or batch_size <= 0):
    raise ParameterError(
        f'batch_size must be a positive int or None, got {batch_size!r}')
  if shuffle_buffer is not None and shuffle_buffer < 0:
    raise ParameterError(
        f'shuffle_buffer must be >= 0 or None, got {shuffle_buffer!r}')
  if features is not None and not isinstance(features, FeatureConfig):
    raise ParameterError(
        f'features must be a FeatureConfig or None, got {type(features)}')

  shape = None
  stored_features = None
  paths, offsets = [], []
  n_selected = 0
  for folder in folders:
    metadata = read_metadata(folder)
    _check_features(folder, metadata['features'], features)
    folder_shape = tuple(metadata['patch_shape'])
    if shape is None:
      shape, stored_features, first = (folder_shape, metadata['features'],
                                       folder)
    elif folder_shape != shape:
      raise ParameterError(
          f'{folder!r} holds patches of shape {folder_shape}, {first!r} of '
          f'shape {shape}')
    elif metadata['features'] != stored_features:
      raise ParameterError(
          f'{folder!r} and {first!r} were written with different feature '
          f'parameters: {metadata["features"]} vs {stored_features}')
    offset = 0
    for shard in metadata['shards']:
      path = _join(folder, shard['file'])
      _check_first_record(path, shard['count'], shape)
      _SHARDS_READ.pop(path, None)   # re-inserted as the newest
      _SHARDS_READ[path] = int(shard['count'])
      paths.append(path)
      offsets.append(offset)
      offset += shard['count']
    n_selected += int(split_mask(metadata['count'], split=split,
                                 test_fraction=test_fraction).sum())
  if n_selected == 0:
    raise ParameterError(
        f'split {split!r} with test_fraction={test_fraction} holds no record '
        f'of {folders}')

  size = int(np.prod(shape))

  def read_shard(path, offset):
    records = tf.data.TFRecordDataset(path).enumerate(start=offset)
    if split == 'all':
      return records.map(lambda i, record: record)
    def keep(i, record):
      del record
      u = tf.math.floormod(tf.cast(i, tf.float64) * _SPLIT_STEP, 1.0)
      is_test = u < test_fraction
      return is_test if split == 'test' else tf.logical_not(is_test)
    return records.filter(keep).map(lambda i, record: record)

  shuffle = bool(shuffle_buffer)
  files = tf.data.Dataset.from_tensor_slices(
      (tf.constant(paths), tf.constant(offsets, dtype=tf.int64)))
  if shuffle:
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
  cycle_length = (num_parallel_reads if num_parallel_reads == tf.data.AUTOTUNE
                  else max(1, min(int(num_parallel_reads), len(paths))))
  ds = files.interleave(read_shard, cycle_length=cycle_length, block_length=1,
                        num_parallel_calls=cycle_length, deterministic=True)
  ds = ds.apply(tf.data.experimental.assert_cardinality(n_selected))
  if shuffle:
    ds = ds.shuffle(int(shuffle_buffer), seed=seed,
                    reshuffle_each_iteration=True)
  if repeat:
    ds = ds.repeat()
  spec = {'data': tf.io.FixedLenFeature([size], tf.float32)}
  if batch_size is None:
    ds = ds.map(
        lambda r: tf.reshape(tf.io.parse_single_example(r, spec)['data'],
                             shape),
        num_parallel_calls=tf.data.AUTOTUNE)
  else:
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    ds = ds.map(
        lambda r: tf.reshape(tf.io.parse_example(r, spec)['data'],
                             (-1,) + shape),
        num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)
