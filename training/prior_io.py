"""Exported prior folders: ``config.json`` + a weights checkpoint.

Shared by every trainer (``ncsn``, ``flow_models``): reading the EMA weights of
a run's newest checkpoint, writing them as a small standalone folder
atomically, and reading them back with clear errors.
"""

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Tuple

import tensorflow as tf

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


def write_prior_folder(out_dir: str, model, meta: Dict[str, Any]) -> str:
  """Writes ``model``'s variables and ``meta`` to ``out_dir``, replacing it atomically."""
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.export-', dir=parent)
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private (0700)
  try:
    tf.train.Checkpoint(model=model).write(os.path.join(tmp, PRIOR_WEIGHTS))
    write_json_atomic(os.path.join(tmp, PRIOR_CONFIG), meta)
    if os.path.exists(out_dir):
      old = tempfile.mkdtemp(prefix='.old-', dir=parent)
      os.replace(out_dir, os.path.join(old, 'x'))
      os.replace(tmp, out_dir)
      shutil.rmtree(old)
    else:
      os.replace(tmp, out_dir)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp)
  return out_dir
