"""Export folders of the discriminative separators (U-Net, Conv-TasNet).

A folder holds, written together (staged, then renamed into place)::

  separator.json   {"method": "unet", "task": "speech-noise", "sources": [...],
                    "sample_rate": 16000, "config": "config.json", "weights": "weights"}
  config.json      {"model": "unet", "network": {...the model's config...},
                    "sources": [...], "sample_rate": 16000, "training": {...}}
  weights.index, weights.data-00000-of-00001   the (EMA) weights, tf.train.Checkpoint

``separator.json`` is what the separator seam (``experiments.separators``)
reads to pick the method; ``config.json`` rebuilds the network. Reading
errors are one-line :class:`common.errors.ParameterError` naming the folder
and the file.
"""

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Sequence, Tuple

import tensorflow as tf

from common import atomic
from common.errors import ParameterError

SEPARATOR_FILE = 'separator.json'
CONFIG_FILE = 'config.json'
WEIGHTS = 'weights'
_OWN = (SEPARATOR_FILE, CONFIG_FILE, WEIGHTS + '.index')


def _owned(name: str) -> bool:
  return name in _OWN or name.startswith(WEIGHTS + '.data-') or name == 'checkpoint'


def check_target(out_dir: str, *, flag: str = 'export_dir'):
  """Refuses an export folder that holds files other than an earlier export's.

  Raises:
    ParameterError: ``out_dir`` is a file, or a folder with other files.
  """
  if os.path.isfile(out_dir):
    raise ParameterError(f'--{flag}={out_dir} is a file, not a folder')
  if os.path.isdir(out_dir):
    others = sorted(n for n in os.listdir(out_dir) if not _owned(n))
    if others:
      raise ParameterError(f'--{flag}={out_dir} holds other files ({others[:3]}); choose an '
                           'empty folder or an earlier export of a separator')


def write(out_dir: str, *, method: str, task: str, sources: Sequence[str], sample_rate: int,
          network: Dict[str, Any], model: tf.Module, training: Dict[str, Any]) -> str:
  """Writes an export folder (replacing an earlier export there).

  Args:
    out_dir: the folder.
    method: ``'unet'`` or ``'convtasnet'`` (the registry name).
    task: the task name (``'speech-noise'``, ``'piano-violin'``).
    sources: source names in the model's output order.
    sample_rate: int, Hz, the model's rate.
    network: the model's config as a json-able dict.
    model: the ``tf.Module`` whose variables are saved.
    training: json-able facts of the training run (command, steps, scores).

  Returns:
    ``out_dir``.

  Raises:
    ParameterError: as :func:`check_target`; OutputError: a failed write.
  """
  check_target(out_dir)
  parent = os.path.dirname(os.path.abspath(out_dir))
  with atomic.writing(out_dir):
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix='.' + os.path.basename(os.path.abspath(out_dir)) + '.',
                             dir=parent)
  try:
    with atomic.writing(out_dir):
      tf.train.Checkpoint(model=model).write(os.path.join(stage, WEIGHTS))
    config = {'model': method, 'network': network, 'sources': list(sources),
              'sample_rate': int(sample_rate), 'training': training}
    atomic.write_json_atomic(os.path.join(stage, CONFIG_FILE), config)
    atomic.write_json_atomic(os.path.join(stage, SEPARATOR_FILE), {
        'method': method, 'task': task, 'sources': list(sources),
        'sample_rate': int(sample_rate), 'config': CONFIG_FILE, 'weights': WEIGHTS})
    with atomic.writing(out_dir):
      if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
          os.remove(os.path.join(out_dir, name))
        os.rmdir(out_dir)
      os.replace(stage, out_dir)
      os.chmod(out_dir, 0o755)
  finally:
    shutil.rmtree(stage, ignore_errors=True)
  return out_dir


def read(model_dir: str, method: str) -> Tuple[Dict[str, Any], str]:
  """``(config.json, weights prefix)`` of an export folder of ``method``, checked.

  Raises:
    ParameterError: one line naming the folder and file: a missing folder or
      file, invalid json, a folder of another model, missing sources or rate,
      missing weights.
  """
  if not os.path.isdir(model_dir):
    raise ParameterError(f'{method} model folder {model_dir} does not exist')
  path = os.path.join(model_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise ParameterError(f'{model_dir} has no {CONFIG_FILE}: not a {method} export '
                         f'(train_separator.py --model={method} --export_dir=... writes one)')
  try:
    with open(path, encoding='utf-8') as f:
      config = json.load(f)
  except (OSError, ValueError) as e:
    raise ParameterError(f'{path} is not readable json ({str(e).splitlines()[0]})') from e
  if not isinstance(config, dict) or config.get('model') != method:
    kind = config.get('model') if isinstance(config, dict) else None
    raise ParameterError(f'{path} describes a {kind!r} model, not {method!r}')
  sources = config.get('sources')
  if (not isinstance(sources, list) or len(sources) < 2 or
      not all(isinstance(s, str) for s in sources)):
    raise ParameterError(f'{path}: "sources" must list at least two names, got {sources!r}')
  rate = config.get('sample_rate')
  if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
    raise ParameterError(f'{path}: "sample_rate" must be a positive int (Hz), got {rate!r}')
  if not isinstance(config.get('network'), dict):
    raise ParameterError(f'{path}: "network" (the model\'s config) is missing')
  prefix = os.path.join(model_dir, WEIGHTS)
  if not os.path.isfile(prefix + '.index'):
    raise ParameterError(f'{model_dir} has no weights ({WEIGHTS}.index is missing)')
  return config, prefix


def restore(prefix: str, model: tf.Module):
  """Reads the weights at ``prefix`` into ``model``.

  Raises:
    ParameterError: damaged weights or weights of another network (one line).
  """
  try:
    status = tf.train.Checkpoint(model=model).read(prefix)
    status.assert_existing_objects_matched()
  except (tf.errors.OpError, ValueError, AssertionError, IndexError) as e:
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ''
    raise ParameterError(f'cannot load the weights {prefix}: damaged or of another network '
                         f'({type(e).__name__}: {first})') from e


def parse_network(config_cls, values: Dict[str, Any], where: str):
  """``config_cls(**values)`` with unknown or bad fields as one-line errors naming ``where``."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  known = {f.name for f in dataclasses.fields(config_cls)}
  unknown = sorted(set(values) - known)
  if unknown:
    raise ParameterError(f'{where}: unknown network settings {unknown}')
  values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
  try:
    return config_cls(**values)
  except (TypeError, ValueError) as e:
    raise ParameterError(f'{where}: {str(e).splitlines()[0]}') from e
