"""The resume cache: finished batches of a long separation, and what they were computed from.

A run that is interrupted and started again with the same settings reuses its
finished batches (``BatchCache``); the settings it must match name the
mixtures by a digest (``mixtures_digest``) and the priors by a fingerprint of
their json files (``fingerprint_prior_dirs``).
"""

import hashlib
import json
import os
import shutil
from typing import Dict, Optional, Sequence

import numpy as np

from common.atomic import save_npy_atomic, write_json_atomic
from common.errors import ParameterError


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
  arr = np.ascontiguousarray(mixtures, np.float32)
  return hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest()[:16]


class BatchCache:
  """Finished batches of a long separation, so that a rerun resumes.

  ``<folder>/run.json`` records what the batches were computed from (the
  settings, a hash of the mixtures, the priors' fingerprints); each finished
  batch is ``batch_<start>.npy``, written atomically. Rerunning with the same
  settings reuses them; different settings raise a ``ParameterError`` naming
  the differences instead of mixing two runs.
  """

  def __init__(self, folder: str, identity: Dict):
    self.folder = folder
    path = os.path.join(folder, 'run.json')
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        try:
          old = json.load(f)
        except ValueError as e:
          raise ParameterError(f'{path} is not valid json ({e}); delete {folder} '
                               'to start the separation afresh') from e
      if old != identity:
        diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        details = '; '.join(f'{k}: {old.get(k)!r} -> {identity.get(k)!r}' for k in diff)
        raise ParameterError(
            f'{folder} holds finished batches of a different separation ({details}); '
            'use another --out_dir, or delete that folder to start afresh')
    else:
      write_json_atomic(path, identity)

  def _path(self, start: int) -> str:
    return os.path.join(self.folder, f'batch_{start:07d}.npy')

  def load(self, start: int, expected_shape) -> Optional[np.ndarray]:
    path = self._path(start)
    if not os.path.exists(path):
      return None
    try:
      arr = np.load(path)
    except (ValueError, OSError, EOFError) as e:
      raise ParameterError(f'damaged batch file {path} ({e}); delete it to recompute '
                           'that batch') from e
    if arr.shape != tuple(expected_shape):
      raise ParameterError(f'{path} has shape {arr.shape}, expected '
                           f'{tuple(expected_shape)}; delete it to recompute that batch')
    return arr

  def save(self, start: int, arr: np.ndarray):
    save_npy_atomic(self._path(start), arr)

  def remove(self):
    shutil.rmtree(self.folder, ignore_errors=True)
