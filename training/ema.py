"""Exponential moving average of model weights, checkpointable, swappable."""

import contextlib

import tensorflow as tf


class EMA(tf.Module):
  """Shadow copies ``w_ema <- decay * w_ema + (1 - decay) * w``.

  Create it inside the strategy scope (its variables are mirrored like the
  model's). ``decay = 0`` makes the shadows follow the weights exactly.

  Args:
    variables: the model's trainable variables.
    decay: float in [0, 1).
  """

  def __init__(self, variables, decay: float = 0.999, name='ema'):
    super().__init__(name=name)
    self.decay = float(decay)
    self._variables = list(variables)
    self.shadows = [
        tf.Variable(v, trainable=False, name=v.name.split(':')[0].replace('/', '_') + '_ema',
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    synchronization=tf.VariableSynchronization.ON_WRITE)
        for v in self._variables]

  def update(self):
    """One EMA step; call after each optimiser step (in replica context)."""
    for s, v in zip(self.shadows, self._variables):
      s.assign(self.decay * s + (1.0 - self.decay) * tf.cast(v, s.dtype))

  def copy_to_model(self):
    """Writes the averages into the model's variables."""
    for s, v in zip(self.shadows, self._variables):
      v.assign(s)

  @contextlib.contextmanager
  def swapped_in(self):
    """Temporarily puts the averaged weights into the model."""
    backup = [tf.identity(v) for v in self._variables]
    self.copy_to_model()
    try:
      yield
    finally:
      for b, v in zip(backup, self._variables):
        v.assign(b)
