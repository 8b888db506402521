"""ActNorm: a per-channel affine bijector with an explicit data-dependent init.

Written here rather than taken from ``tfp.bijectors.glow.ActivationNormalization``
because TFP's version initialises lazily inside a ``tf.cond`` evaluated on
every call, in whichever direction runs first: sampling before training
initialises it on Gaussian latents, every compiled step carries the
condition and its assignments, and the assignments run in replica context
under ``tf.distribute``. Here initialisation is one explicit eager pass over
a data batch (:func:`flow_models.model.initialize`), after which the bijector
is a plain shift-and-scale.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from common.errors import ParameterError

tfb = tfp.bijectors


class ActNorm(tfb.Bijector):
  """``y = (x + loc) * exp(log_scale)`` per channel (the last axis).

  The forward direction is the normalising one (data -> latent). After
  :meth:`data_init` on a batch, the outputs on that batch have zero mean and
  unit variance per channel. The Jacobian is constant:
  ``log|det J| = sum(log_scale)`` per ``[channels]`` event (TFP multiplies it
  by ``height * width`` for image events).

  Args:
    num_channels: int > 0.
    dtype: float dtype of the parameters.
    validate_args: TFP's flag (unused: there is nothing to check at runtime).
    name: name scope of the variables.

  Raises:
    ParameterError: for a bad ``num_channels``.
  """

  def __init__(self, num_channels: int, *, dtype=tf.float32, validate_args: bool = False,
               name: str = 'actnorm'):
    parameters = dict(locals())
    if isinstance(num_channels, bool) or int(num_channels) != num_channels or num_channels < 1:
      raise ParameterError(f'num_channels must be a positive int, got {num_channels!r}')
    with tf.name_scope(name):
      self.loc = tf.Variable(tf.zeros([num_channels], dtype), name='loc')
      self.log_scale = tf.Variable(tf.zeros([num_channels], dtype), name='log_scale')
      self.initialized = tf.Variable(False, trainable=False, name='initialized')
    self.num_channels = int(num_channels)
    self._init_pending = False
    super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True,
                     validate_args=validate_args, dtype=dtype, parameters=parameters,
                     name=name)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  def data_init(self, x, *, epsilon: float = 1e-6):
    """Sets ``loc, log_scale`` so that ``forward(x)`` is standardised per channel.

    Args:
      x: float ``[..., num_channels]``, at least two values per channel.
      epsilon: float > 0 added to the standard deviation (a constant channel
        gets scale ``1 / epsilon``, not infinity).

    Raises:
      ParameterError: if ``x`` has the wrong channel count or is not finite.
    """
    x = tf.convert_to_tensor(x, self.dtype)
    if x.shape.rank is None or x.shape.rank < 1 or x.shape[-1] != self.num_channels:
      raise ParameterError(
          f'ActNorm {self.name} has {self.num_channels} channels; got input of shape {x.shape}')
    axes = list(range(x.shape.rank - 1))
    mean, variance = tf.nn.moments(tf.cast(x, tf.float64), axes=axes)
    if not np.all(np.isfinite(mean.numpy())) or not np.all(np.isfinite(variance.numpy())):
      raise ParameterError(f'ActNorm {self.name}: data-dependent init on non-finite input')
    self.loc.assign(tf.cast(-mean, self.dtype))
    self.log_scale.assign(tf.cast(-tf.math.log(tf.sqrt(variance) + epsilon), self.dtype))
    self.initialized.assign(True)

  def _forward(self, x):
    if self._init_pending:  # set only during flow_models.model.initialize (eager)
      self._init_pending = False
      self.data_init(x)
    return (x + self.loc) * tf.exp(self.log_scale)

  def _inverse(self, y):
    return y * tf.exp(-self.log_scale) - self.loc

  def _forward_log_det_jacobian(self, x):
    del x
    return tf.reduce_sum(self.log_scale)

  def _inverse_log_det_jacobian(self, y):
    del y
    return -tf.reduce_sum(self.log_scale)
