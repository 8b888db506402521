"""Preprocessing bijectors and bits per dimension, with every Jacobian counted.

A flow here models a density over images ``x`` in the data's own units
(``[batch, height, width, channels]`` in [0, 1] for images and for mel
patches): the preprocessing is the first bijector of the flow, so its
Jacobian is inside ``log_prob`` and ``grad_x log p(x)`` is the score in data
units (what BASIS needs).

* 'shift': ``x - 0.5`` (Glow; Jacobian 1).
* 'logit': ``logit(alpha + (1 - 2 alpha) x)`` (RealNVP, Dinh et al. 2017;
  Jacobian ``(1 - 2 alpha) / (u (1 - u))`` per value, ``u`` the squashed
  input). Only for data inside [0, 1]; not for noise-perturbed data.

Dequantisation: 8-bit images are turned into continuous values in the data
pipeline, ``x = (pixel + u) / 256`` with ``u ~ U[0, 1)``
(``pipeline.datasets.get_dataset(dequantize=True)``); that noise is not a
bijector. The rescaling from pixel units ``v = 256 x`` in ``[0, 256)`` to
``x`` is: :func:`dequantization_rescale` is that bijector and
:func:`bits_per_dim` applies its Jacobian, ``-D log 256``.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flow_models import composition
from common.errors import ParameterError

tfb = tfp.bijectors
tfd = tfp.distributions

PREPROCESSINGS = ('shift', 'logit')


def preprocessing_bijector(name: str, *, logit_alpha: float = 0.05,
                           dtype=tf.float32) -> tfb.Bijector:
  """The normalising-direction preprocessing bijector called ``name``.

  Args:
    name: 'shift' or 'logit'.
    logit_alpha: float in (0, 0.5), 'logit' only: squashes [0, 1] into
      ``[alpha, 1 - alpha]`` before the logit so that 0 and 1 stay finite.
    dtype: float dtype.

  Raises:
    ParameterError: unknown name or alpha out of range.
  """
  if name == 'shift':
    return tfb.Shift(tf.constant(-0.5, dtype), name='center')
  if name == 'logit':
    if not 0.0 < logit_alpha < 0.5:
      raise ParameterError(f'logit_alpha must be in (0, 0.5), got {logit_alpha!r}')
    a = tf.constant(logit_alpha, dtype)
    # Chain applies last-to-first: scale, shift, then logit (= inverse sigmoid).
    return composition.Chain(
        [composition.Invert(tfb.Sigmoid()), tfb.Shift(a), tfb.Scale(1.0 - 2.0 * a)],
        name='logit')
  raise ParameterError(f'preprocessing must be one of {PREPROCESSINGS}, got {name!r}')


def dequantization_rescale(num_bins: int = 256, *, dtype=tf.float32) -> tfb.Bijector:
  """``x -> num_bins * x``: from the model's [0, 1] units to pixel units [0, num_bins).

  ``tfd.TransformedDistribution(flow, dequantization_rescale(256))`` is the
  density of ``pixel + u``; its ``log_prob`` at ``256 x`` is
  ``flow.log_prob(x) - D log 256``.
  """
  if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 2:
    raise ParameterError(f'num_bins must be an int >= 2, got {num_bins!r}')
  return tfb.Scale(tf.constant(float(num_bins), dtype), name='dequantization_rescale')


def bits_per_dim(log_prob, num_dims: int, *, num_bins: int = None) -> tf.Tensor:
  """Negative log2-likelihood per dimension.

  With ``num_bins`` (8-bit data: 256) this is the discrete-data bound of the
  dequantised model,

    bpd = -(log p(x) - D log(num_bins)) / (D log 2),

  where ``-D log(num_bins)`` is the log-Jacobian of
  :func:`dequantization_rescale` (so a model uniform on [0, 1]^D gives
  exactly ``log2(num_bins)`` bits). Without it, the continuous density's
  bits per dimension in the data's units.

  Args:
    log_prob: float ``[...]``, ``log p(x)`` in nats, ``x`` in [0, 1] units.
    num_dims: int > 0, ``D``, values per example.
    num_bins: int >= 2 or None.

  Returns:
    float ``[...]`` bits per dimension, the dtype of ``log_prob``.

  Raises:
    ParameterError: for a bad ``num_dims`` or ``num_bins``.
  """
  if isinstance(num_dims, bool) or int(num_dims) != num_dims or num_dims < 1:
    raise ParameterError(f'num_dims must be a positive int, got {num_dims!r}')
  log_prob = tf.convert_to_tensor(log_prob)
  nll = -log_prob
  if num_bins is not None:
    if isinstance(num_bins, bool) or int(num_bins) != num_bins or num_bins < 2:
      raise ParameterError(f'num_bins must be an int >= 2, got {num_bins!r}')
    nll = nll + tf.constant(num_dims * np.log(num_bins), log_prob.dtype)
  return nll / tf.constant(num_dims * np.log(2.0), log_prob.dtype)
