"""Exported prior folders: ``config.json`` + a weights checkpoint.

Shared by every trainer (``ncsn``, ``flow_models``): reading the EMA weights of
a run's newest checkpoint, writing them as a small standalone folder
atomically, and reading them back with clear errors.
"""

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from common import atomic
from common.errors import ParameterError
from training.ema import EMA
from common.atomic import write_json_atomic

PRIOR_CONFIG = 'config.json'
PRIOR_WEIGHTS = 'weights'
# A truncated .data file surfaces as IndexError ("Read less bytes than
# requested") from the checkpoint reader, not as an OpError.
_CHECKPOINT_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError)


def read_json(path: str, what: str) -> Dict[str, Any]:
  """Reads a json file; ParameterError naming ``what`` if missing or invalid."""
  if not os.path.exists(path):
    raise ParameterError(f'{what} {path} does not exist')
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise ParameterError(f'{what} {path} is not valid json: {e}') from e


def read_checkpoint(path: str, *, partial: bool = False, what: str = 'checkpoint',
                    **trackables):
  """Restores ``trackables`` from ``path``; ParameterError if damaged or foreign.

  Args:
    path: checkpoint prefix.
    partial: allow the checkpoint to hold more than ``trackables``.
    what: name used in the error message.
    **trackables: objects to restore (``model=...``, ``ema=...``).
  """
  try:
    status = tf.train.Checkpoint(**trackables).read(path)
    if partial:
      status = status.expect_partial()
    status.assert_existing_objects_matched()
  except _CHECKPOINT_ERRORS as e:
    raise ParameterError(
        f'cannot load {what} {path}: damaged or from a different model '
        f'({type(e).__name__}: {str(e)[:300]})') from e


def load_ema_weights(workdir: str, model) -> Tuple[str, int, float]:
  """Puts the EMA weights of the newest checkpoint of a run into ``model``.

  Returns:
    ``(checkpoint_path, step, elapsed_s)``.

  Raises:
    ParameterError: no checkpoint, or a damaged / mismatched one.
  """
  latest = tf.train.latest_checkpoint(os.path.join(workdir, 'checkpoints'))
  if latest is None:
    raise ParameterError(f'no checkpoint in {workdir}/checkpoints')
  ema = EMA(model.trainable_variables, 0.0)
  step = tf.Variable(0, dtype=tf.int64)
  elapsed = tf.Variable(0.0, dtype=tf.float64)
  read_checkpoint(latest, partial=True, model=model, ema=ema, step=step, elapsed_s=elapsed)
  ema.copy_to_model()
  return latest, int(step.numpy()), float(elapsed.numpy())


def _own_file(name: str) -> bool:
  """Whether ``name`` is one a prior folder's writer makes (config, weights, TF's index)."""
  return (name in (PRIOR_CONFIG, 'checkpoint') or name == PRIOR_WEIGHTS + '.index'
          or name.startswith(PRIOR_WEIGHTS + '.data-'))


def folder_kind(meta: Dict[str, Any]) -> Optional[str]:
  """The kind a prior or network folder's ``config.json`` names (``'ncsn'``, ``'glow'``,
  ``'refiner'`` ...): its ``kind`` entry, else its ``model`` entry."""
  kind = meta.get('kind', meta.get('model')) if isinstance(meta, dict) else None
  return kind if isinstance(kind, str) else None


def check_prior_target(out_dir: str, kind: str, *, workdir: Optional[str] = None,
                       flag: str = 'out_dir'):
  """Refuses an export target whose files an export would destroy.

  An export may write into a folder that does not exist, an empty folder, or
  a prior folder of the same ``kind`` (its ``config.json`` names the kind and
  it holds ``weights.index``), where it replaces only the prior's own files.

  Args:
    out_dir: the export folder.
    kind: what is exported (``'ncsn'``, ``'glow'``, ``'realnvp'``,
      ``'refiner'``, ``'degli'``).
    workdir: the training run exported from; neither it nor a folder holding
      it may be the target.
    flag: the command-line name of ``out_dir``, for the message.

  Raises:
    ParameterError: the target is the workdir or holds it, is a file, or is a
      folder with other content (naming what it holds).
  """
  target = os.path.realpath(out_dir)
  if workdir:
    run = os.path.realpath(workdir)
    if run == target or run.startswith(target.rstrip(os.sep) + os.sep):
      raise ParameterError(
          f'--{flag}={out_dir} is the training run {workdir} or holds it: an export there '
          f'would overwrite the run; export to a folder of its own (e.g. {workdir}_prior)')
  if not os.path.exists(out_dir):
    return
  if not os.path.isdir(out_dir):
    raise ParameterError(f'--{flag}={out_dir} is a file, not a folder')
  names = sorted(os.listdir(out_dir))
  if not names:
    return
  config_path = os.path.join(out_dir, PRIOR_CONFIG)
  found = None
  if os.path.isfile(config_path):
    try:
      with open(config_path, encoding='utf-8') as f:
        found = folder_kind(json.load(f))
    except (OSError, ValueError):
      found = None
  is_prior = found is not None and os.path.isfile(
      os.path.join(out_dir, PRIOR_WEIGHTS + '.index'))
  if is_prior and found == kind:
    return
  shown = ', '.join(names[:5]) + (f' and {len(names) - 5} more' if len(names) > 5 else '')
  what = (f'a {found!r} folder' if is_prior else 'not a prior folder')
  raise ParameterError(
      f'--{flag}={out_dir} already holds {shown} and is {what}, not a {kind!r} one: an '
      f'export replaces only an earlier {kind!r} export; give a new or empty folder')


def write_prior_folder(out_dir: str, model, meta: Dict[str, Any], *,
                       workdir: Optional[str] = None, flag: str = 'out_dir') -> str:
  """Writes ``model``'s variables and ``meta`` to ``out_dir``.

  The target must be new, empty or an earlier export of the same kind
  (:func:`check_prior_target`; the kind is ``meta``'s ``kind`` or
  ``model``). In an earlier export only its own files (``config.json``,
  ``weights.*``) are replaced; anything else a user put there stays.
  ``config.json`` is removed first and written last, so a folder caught
  half-way holds no config and is refused by every reader.

  Args:
    out_dir: the export folder.
    model: the trackable to save (``tf.train.Checkpoint(model=model)``).
    meta: json-able, written as ``config.json``.
    workdir: the run exported from (refused as the target).
    flag: the command-line name of ``out_dir``, for messages.

  Returns:
    ``out_dir``.

  Raises:
    ParameterError: as :func:`check_prior_target`; an ``OutputError`` for a
      failed write.
  """
  kind = folder_kind(meta)
  if kind is None:
    raise ParameterError(f'prior metadata names no kind or model: {sorted(meta)[:8]}')
  check_prior_target(out_dir, kind, workdir=workdir, flag=flag)
  parent = os.path.dirname(os.path.abspath(out_dir))
  with atomic.writing(out_dir):
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
  try:
    with atomic.writing(os.path.join(out_dir, PRIOR_WEIGHTS)):
      tf.train.Checkpoint(model=model).write(os.path.join(tmp, PRIOR_WEIGHTS))
    write_json_atomic(os.path.join(tmp, PRIOR_CONFIG), meta)
    umask = os.umask(0)
    os.umask(umask)
    if not os.path.exists(out_dir):
      os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private (0700)
      os.replace(tmp, out_dir)
      return out_dir
    new = set(os.listdir(tmp))
    config_path = os.path.join(out_dir, PRIOR_CONFIG)
    if os.path.exists(config_path):
      os.remove(config_path)
    for name in sorted(new - {PRIOR_CONFIG}):
      os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    for name in os.listdir(out_dir):
      if _own_file(name) and name not in new:   # e.g. a shard of an older, bigger export
        os.remove(os.path.join(out_dir, name))
    os.replace(os.path.join(tmp, PRIOR_CONFIG), config_path)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
  return out_dir
