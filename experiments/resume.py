"""The resume cache: finished batches of a long separation, and what they were computed from.

A run that is interrupted and started again with the same settings reuses its
finished batches (``BatchCache``, on the keyed result cache of
``common.result_cache``); the settings they are keyed by name the mixtures by a
digest (``mixtures_digest``) and the priors by a fingerprint of their json
files (``fingerprint_prior_dirs``).
"""

import hashlib
import os
from typing import Dict, Optional, Sequence

import numpy as np

from common.errors import ParameterError
from common.result_cache import KeyedCache, digest, key_of


def fingerprint_prior_dirs(prior_dirs: Sequence[str]) -> Dict[str, str]:
  """sha256 of the json files of each prior folder (config, family, step)."""
  out = {}
  for d in dict.fromkeys(prior_dirs):
    h = hashlib.sha256()
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
      if name.endswith('.json'):
        with open(os.path.join(d, name), 'rb') as f:
          h.update(name.encode() + b'\0' + f.read())
    out[d] = h.hexdigest()[:16]
  return out


def mixtures_digest(mixtures: np.ndarray) -> str:
  """sha256 (16 hex digits) of the mixtures' float32 bytes and shape."""
  return digest(mixtures)


class BatchCache:
  """Finished batches of a long separation, so that a rerun resumes.

  The batches live in the one keyed result cache (``common.result_cache``):
  batch ``start`` of a separation is stored under the key of the separation's
  identity (the settings, a hash of the mixtures, the priors' fingerprints)
  and ``start``. A rerun with the same settings finds its batches; a rerun
  with other settings has other keys, so it computes afresh and can never be
  served another separation's batches.
  """

  def __init__(self, folder: str, identity: Dict):
    self.folder = folder
    self.identity = identity
    self._cache = KeyedCache(folder)

  def _key(self, start: int) -> str:
    return key_of({'batch_start': int(start), 'separation': self.identity})

  def load(self, start: int, expected_shape) -> Optional[np.ndarray]:
    """The finished batch at ``start``, or None.

    Raises:
      ParameterError: a damaged entry or one of another shape, naming the file.
    """
    hit = self._cache.get(self._key(start))
    if hit is None:
      return None
    arr = hit['batch']
    if arr.shape != tuple(expected_shape):
      raise ParameterError(f'{self._cache.path(self._key(start))} has shape {arr.shape}, '
                           f'expected {tuple(expected_shape)}; delete it to recompute that '
                           'batch')
    return arr

  def save(self, start: int, arr: np.ndarray):
    self._cache.put(self._key(start), {'batch': np.asarray(arr)})

  def remove(self):
    """Removes the cache's entries (and its folder when nothing else is in it)."""
    self._cache.clear()
