"""One keyed result cache: finished pieces of long work, found again by what they came from.

A result is stored under a key derived from everything it was computed from
(:func:`key_of` hashes a json-able identity: settings, model fingerprints, a
digest of the input), so a rerun of the same work finds it and different work
can never be served a stale result: no identity file to compare, no "this
folder holds another run" state. Each result is one ``.npz`` written
atomically (temporary name, then rename), so an interrupted write leaves no
half result under its key.

  cache = KeyedCache('out/sep/.cache')
  key = key_of({'model': fingerprint, 'chunk': digest(audio)})
  arrays = cache.get(key)
  if arrays is None:
    arrays = {'estimates': compute()}
    cache.put(key, arrays)
"""

import hashlib
import json
import os
import shutil
from typing import Any, Dict, Optional

import numpy as np

from common.atomic import atomic_path
from common.errors import ParameterError


def digest(array) -> str:
  """sha256 (16 hex digits) of an array's float32 bytes and shape."""
  arr = np.ascontiguousarray(array, np.float32)
  return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]


def key_of(identity: Any) -> str:
  """sha256 (24 hex digits) of ``identity`` as canonical json (sorted keys)."""
  text = json.dumps(identity, sort_keys=True, default=str, separators=(',', ':'))
  return hashlib.sha256(text.encode()).hexdigest()[:24]


class KeyedCache:
  """Results by key in one folder (``<folder>/<key>.npz``).

  Args:
    folder: the cache folder; created on the first :meth:`put`. The cache
      writes and removes only its own ``*.npz`` files there.
  """

  SUFFIX = '.npz'

  def __init__(self, folder: str):
    self.folder = folder

  def path(self, key: str) -> str:
    """The file of ``key``."""
    return self._path(key)

  def _path(self, key: str) -> str:
    if not key or not all(c.isalnum() or c in '-_' for c in key):
      raise ParameterError(f'cache keys are alphanumeric, got {key!r}')
    return os.path.join(self.folder, key + self.SUFFIX)

  def get(self, key: str) -> Optional[Dict[str, np.ndarray]]:
    """The arrays stored under ``key``, or None.

    Raises:
      ParameterError: a damaged entry, naming the file to delete.
    """
    path = self._path(key)
    if not os.path.exists(path):
      return None
    try:
      with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
    except (ValueError, OSError, EOFError) as e:
      raise ParameterError(f'damaged cache entry {path} ({e}); delete it to compute that '
                           'part again') from e

  def put(self, key: str, arrays: Dict[str, np.ndarray]):
    """Stores ``arrays`` under ``key`` (atomically)."""
    path = self._path(key)
    os.makedirs(self.folder, exist_ok=True)
    with atomic_path(path) as tmp:
      with open(tmp, 'wb') as f:
        np.savez(f, **{name: np.asarray(v) for name, v in arrays.items()})

  def __contains__(self, key: str) -> bool:
    return os.path.exists(self._path(key))

  def clear(self):
    """Removes the cache's own entries, and the folder when nothing else is in it."""
    if not os.path.isdir(self.folder):
      return
    for name in os.listdir(self.folder):
      if name.endswith(self.SUFFIX):
        os.remove(os.path.join(self.folder, name))
    if not os.listdir(self.folder):
      shutil.rmtree(self.folder, ignore_errors=True)
