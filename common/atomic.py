"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash never leaves half a file under the final name, and an existing file
is replaced only once the new one is complete. The result gets the usual
permissions (``0666 & ~umask``), not ``mkstemp``'s private ``0600``.
"""

import contextlib
import json
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str, *, suffix: str = '.tmp'):
  """Yields a temporary path; on success it is renamed to ``path``.

  Example:
    >>> with atomic_path('out/a.wav', suffix='.wav') as tmp:
    ...   soundfile.write(tmp, y, 16000, format='WAV')

  Raises:
    common.errors.OutputError: an ``OSError`` while writing (a full disk:
      numpy's "3136 requested and 992 written", ENOSPC) names the file and
      the folder's free space; the temporary file is removed.
  """
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=suffix,
                             prefix='.' + os.path.basename(path) + '.', dir=folder)
  os.close(fd)
  try:
    try:
      yield tmp
      os.chmod(tmp, 0o666 & ~_UMASK)
      os.replace(tmp, path)
    except OSError as e:
      raise _output_error(path, folder, e) from e
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _output_error(path: str, folder: str, error: OSError):
  """A clear error for a failed write: the file, the cause, the free space."""
  import shutil  # pylint: disable=g-import-not-at-top
  from common.errors import OutputError  # pylint: disable=g-import-not-at-top
  try:
    free = f'{shutil.disk_usage(folder).free / 2**20:.0f} MB free in {folder}'
  except OSError:
    free = f'the free space of {folder} is unknown'
  return OutputError(f'could not write {path} ({error}); {free}: free some space (or pick '
                     'another output folder) and rerun; nothing half-written was kept '
                     'under that name')


def json_default(o):
  """json for numpy scalars and arrays and dataclasses; ``str`` of anything else."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  if isinstance(o, (np.floating, np.integer, np.bool_)):
    return o.item()
  if isinstance(o, np.ndarray):
    return o.tolist()
  if dataclasses.is_dataclass(o) and not isinstance(o, type):
    return dataclasses.asdict(o)
  return str(o)


def write_json_atomic(path: str, obj, *, default=json_default, sort_keys: bool = True):
  """Writes ``obj`` as indented json, atomically (the one json writer of the project).

  numpy values and dataclasses are written as their json equivalents
  (:func:`json_default`).
  """
  with atomic_path(path, suffix='.json.tmp') as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(obj, f, indent=2, sort_keys=sort_keys, default=default)
      f.write('\n')


def save_npy_atomic(path: str, arr):
  """Writes ``arr`` with ``np.save``, atomically."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  with atomic_path(path, suffix='.npy') as tmp:
    with open(tmp, 'wb') as f:
      np.save(f, np.asarray(arr))


def read_json_checked(path: str, *, missing: str):
  """Reads a json file the project wrote; a clear error when it is missing or damaged.

  Args:
    path: the file.
    missing: the message of the error for a missing file (what it should
      have been and how to make it).

  Raises:
    ParameterError: ``missing`` for no file; the parse error for invalid json.
  """
  import os  # pylint: disable=g-import-not-at-top
  from common.errors import ParameterError  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise ParameterError(missing)
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except ValueError as e:
    raise ParameterError(f'{path} is not valid JSON: {e}') from e
