"""Choosing a ``tf.distribute`` strategy by name."""

import json
import os

import tensorflow as tf

from common.errors import ParameterError

STRATEGIES = ('default', 'one_device', 'mirrored', 'multi_worker')


def get_strategy(name: str = 'default', *, device: str = None) -> tf.distribute.Strategy:
  """Returns the distribution strategy called ``name``.

  Args:
    name: ``'default'`` (no distribution), ``'one_device'`` (``device`` or the
      first GPU, else the CPU), ``'mirrored'`` (all local GPUs, or the CPU),
      ``'multi_worker'`` (MultiWorkerMirroredStrategy configured by the
      ``TF_CONFIG`` environment variable).
    device: device string for ``one_device``.

  Raises:
    ParameterError: for an unknown name, or ``multi_worker`` without a valid
      ``TF_CONFIG``.
  """
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'one_device':
    if device is None:
      device = '/gpu:0' if tf.config.list_logical_devices('GPU') else '/cpu:0'
    return tf.distribute.OneDeviceStrategy(device)
  if name == 'mirrored':
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker':
    raw = os.environ.get('TF_CONFIG')
    if not raw:
      raise ParameterError('strategy multi_worker needs the TF_CONFIG environment '
                           'variable (cluster and task), which is not set')
    try:
      json.loads(raw)
    except ValueError as e:
      raise ParameterError(f'TF_CONFIG is not valid json: {raw!r}') from e
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ParameterError(f'unknown strategy {name!r}; choose one of {STRATEGIES}')
