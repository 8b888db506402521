"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash never leaves half a file under the final name, and an existing file
is replaced only once the new one is complete. The result gets the usual
permissions (``0666 & ~umask``), not ``mkstemp``'s private ``0600``.
"""

import contextlib
import errno
import json
import os
import sys
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
    common.errors.OutputError: a failed write (:func:`is_write_error`: a full
      disk -- numpy's "3136 requested and 992 written", ENOSPC, soundfile's
      ``LibsndfileError`` -- a read-only folder, a folder path through a
      file) names the file and the cause (:func:`output_error`); the
      temporary file is removed.
  """
  folder = os.path.dirname(os.path.abspath(path))
  tmp = None
  try:
    try:
      os.makedirs(folder, exist_ok=True)
      fd, tmp = tempfile.mkstemp(suffix=suffix,
                                 prefix='.' + os.path.basename(path) + '.', dir=folder)
      os.close(fd)
      yield tmp
      os.chmod(tmp, 0o666 & ~_UMASK)
      os.replace(tmp, path)
    except Exception as e:  # pylint: disable=broad-except
      if not is_write_error(e):
        raise
      raise output_error(path, e) from e
  finally:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)


@contextlib.contextmanager
def writing(path: str):
  """Turns a failed write inside the block into an ``OutputError`` naming ``path``.

  For writers that cannot go through :func:`atomic_path` (TF checkpoints,
  TFRecord shards: they write their own files).

  Raises:
    common.errors.OutputError: as :func:`output_error`, for
      :func:`is_write_error` errors; anything else passes.
  """
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if not is_write_error(e):
      raise
    raise output_error(path, e, kept=False) from e


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)
_NOT_A_FOLDER = (errno.ENOTDIR, errno.EEXIST)


def is_write_error(error: BaseException) -> bool:
  """Whether ``error`` says a file could not be written (not a bug).

  ``OSError``; soundfile's ``SoundFileRuntimeError`` (its ``LibsndfileError``
  "System error." on a full disk is not an ``OSError``); TensorFlow's
  ``ResourceExhaustedError`` / ``PermissionDeniedError`` and any ``OpError``
  whose message says no space, a read-only file system or not a directory.
  Modules are looked up only if already imported.
  """
  if isinstance(error, OSError):
    return True
  sf = sys.modules.get('soundfile')
  if sf is not None and isinstance(error, getattr(sf, 'SoundFileRuntimeError', ())):
    return True
  tf_errors = getattr(sys.modules.get('tensorflow'), 'errors', None)
  if tf_errors is not None and isinstance(error, tf_errors.OpError):
    if isinstance(error, (tf_errors.ResourceExhaustedError, tf_errors.PermissionDeniedError)):
      return True
    text = str(error)
    return any(t in text for t in ('No space left', 'Read-only file system', 'Not a directory',
                                   'Permission denied'))
  return False


def _kind(error: BaseException) -> str:
  """'full', 'denied', 'not_a_folder' or 'other'."""
  code = getattr(error, 'errno', None)
  text = str(error)
  if code in _FULL or 'No space left' in text or 'Disk quota' in text:
    return 'full'
  if (code in _DENIED or 'Permission denied' in text or 'Read-only' in text
      or type(error).__name__ == 'PermissionDeniedError'):
    return 'denied'
  if code in _NOT_A_FOLDER or 'Not a directory' in text or 'File exists' in text:
    return 'not_a_folder'
  if type(error).__name__ in ('ResourceExhaustedError', 'LibsndfileError'):
    return 'full'   # TF's and libsndfile's words for a full disk
  return 'other'


def _file_in_path(folder: str):
  """The first path component of ``folder`` that is a file, or None."""
  path = os.path.abspath(folder)
  parts = []
  while path and path != os.path.dirname(path):
    parts.append(path)
    path = os.path.dirname(path)
  for part in reversed(parts):
    if os.path.exists(part) and not os.path.isdir(part):
      return part
  return None


def output_error(path: str, error: BaseException, *, kept: bool = True):
  """A clear, one-line error for a failed write of ``path``.

  Says why: a full disk (with the folder's free space), no permission (a
  read-only folder), a path component that is a file; ``kept`` adds that
  nothing half-written stays under the name (true of :func:`atomic_path`).

  Returns:
    a :class:`common.errors.OutputError` (a ``ParameterError``).
  """
  import shutil  # pylint: disable=g-import-not-at-top
  from common.errors import OutputError  # pylint: disable=g-import-not-at-top
  folder = os.path.dirname(os.path.abspath(path))
  cause = ' '.join(str(error).split())[:300] or type(error).__name__
  tail = '; nothing half-written was kept under that name' if kept else ''
  kind = _kind(error)
  if kind == 'not_a_folder' or (kind == 'other' and _file_in_path(folder)):
    blocker = _file_in_path(folder)
    if blocker:
      return OutputError(f'could not write {path}: {blocker} is a file, not a folder; pick '
                         f'another output folder{tail}')
  if kind == 'denied':
    return OutputError(f'could not write {path}: no permission to write in {folder} '
                       f'({cause}); pick another output folder or make it writable{tail}')
  existing = folder
  while existing and not os.path.isdir(existing) and existing != os.path.dirname(existing):
    existing = os.path.dirname(existing)
  try:
    free = f'{shutil.disk_usage(existing).free / 2**20:.0f} MB free in {existing}'
  except OSError:
    free = f'the free space of {existing} is unknown'
  return OutputError(f'could not write {path} ({cause}); {free}: free some space (or pick '
                     f'another output folder) and rerun{tail}')


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
