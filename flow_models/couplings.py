"""Coupling bijectors on images ``[..., height, width, channels]``.

:class:`AffineCoupling` splits the channels into a conditioning half ``x_a``
and a transformed half ``x_b`` and maps (forward = normalising direction)

  affine:    y_b = x_b * scale(h) + shift(h),    h = network(x_a)
  additive:  y_b = x_b + shift(h),

leaving ``y_a = x_a``. Written here rather than taken from
``tfp.bijectors.RealNVP``: ``RealNVP`` runs its network once for
``forward`` and again for ``forward_log_det_jacobian`` (measured: a chain of
RealNVP couplings takes 2x the time of its forward pass to give
``log_prob``), while this coupling computes the log-determinant with the
forward pass and hands it to TFP's bijector cache, so ``log_prob`` runs each
network once. Everything around it (chains, permutations, splits, reshapes)
is TFP's.

:func:`checkerboard_coupling` composes RealNVP's checkerboard-masked
coupling from TFP bijectors: squeeze 2x2, permute the channels so that the
"black" squares come first, a channel-wise :class:`AffineCoupling`, and back.
The conditioner sees exactly the pixels of one colour (at half resolution,
four sub-pixels per channel group) instead of a masked full-resolution image.
"""

from typing import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flow_models import composition
from flow_models import multiscale
from common.errors import ParameterError

tfb = tfp.bijectors

COUPLING_KINDS = ('affine', 'additive')
SCALE_FUNCTIONS = ('sigmoid', 'exp')
_SIGMOID_OFFSET = 2.0
_EXP_BOUND = 3.0


def _log_scale(h, scale: str):
  """Log of a bounded scale that is exactly 1 at ``h = 0`` (zero-initialised nets).

  'sigmoid': ``sigmoid(h + 2) / sigmoid(2)`` in (0, 1.135): Glow's stable
  ``sigmoid(h + 2)``, renormalised so that a zero-initialised coupling is the
  identity. Computed as a difference of log-sigmoids, finite for any ``h``.
  'exp': ``exp(3 tanh(h / 3))`` in (e^-3, e^3), for the split prior's
  inverse standard deviation, which must be free to exceed 1.
  """
  if scale == 'sigmoid':
    offset = tf.constant(_SIGMOID_OFFSET, h.dtype)
    return tf.math.log_sigmoid(h + offset) - tf.math.log_sigmoid(offset)
  return _EXP_BOUND * tf.tanh(h / _EXP_BOUND)


class AffineCoupling(tfb.Bijector):
  """Channel-wise affine (or additive) coupling; see the module docstring.

  Args:
    network: callable ``[n, height, width, c_a] -> [n, height, width, c_out]``
      with ``c_out = 2 c_b`` (affine: log-scale pre-activations, then shifts)
      or ``c_b`` (additive).
    num_channels: int >= 2, channels of the event.
    num_conditioning: channels in ``x_a`` (default ``num_channels // 2``).
    kind: 'affine' or 'additive'.
    scale: 'sigmoid' or 'exp' (see ``_log_scale``); affine only.
    reverse: condition on the last ``num_conditioning`` channels and
      transform the first ones instead.
    dtype: float dtype.
    validate_args: TFP's flag (unused).
    name: bijector name.

  Raises:
    ParameterError: for a bad kind, scale or channel split.
  """

  def __init__(self, network: Callable, num_channels: int, *, num_conditioning: int = None,
               kind: str = 'affine', scale: str = 'sigmoid', reverse: bool = False,
               dtype=tf.float32, validate_args: bool = False, name: str = 'coupling'):
    parameters = dict(locals())
    if kind not in COUPLING_KINDS:
      raise ParameterError(f'kind must be one of {COUPLING_KINDS}, got {kind!r}')
    if scale not in SCALE_FUNCTIONS:
      raise ParameterError(f'scale must be one of {SCALE_FUNCTIONS}, got {scale!r}')
    if isinstance(num_channels, bool) or int(num_channels) != num_channels or num_channels < 2:
      raise ParameterError(f'num_channels must be an int >= 2, got {num_channels!r}')
    num_conditioning = num_channels // 2 if num_conditioning is None else num_conditioning
    if not 0 < num_conditioning < num_channels:
      raise ParameterError(f'num_conditioning must be in (0, {num_channels}), got '
                           f'{num_conditioning!r}')
    self.network = network
    self.num_channels = int(num_channels)
    self.num_conditioning = int(num_conditioning)
    self.num_transformed = self.num_channels - self.num_conditioning
    self.kind = kind
    self.scale = scale
    self.reverse = bool(reverse)
    super().__init__(forward_min_event_ndims=3, validate_args=validate_args, dtype=dtype,
                     parameters=parameters, name=name)

  @classmethod
  def _parameter_properties(cls, dtype):
    return dict()

  def _split(self, x):
    if self.reverse:
      b, a = tf.split(x, [self.num_transformed, self.num_conditioning], axis=-1)
    else:
      a, b = tf.split(x, [self.num_conditioning, self.num_transformed], axis=-1)
    return a, b

  def _join(self, a, b):
    return tf.concat([b, a] if self.reverse else [a, b], axis=-1)

  def _params(self, a):
    """``(log_scale or None, shift)``, each ``[..., height, width, c_b]``."""
    shape = tf.shape(a)
    flat = tf.reshape(a, tf.concat([[-1], shape[-3:]], 0))   # conv2d needs rank 4
    h = self.network(flat)
    want = 2 * self.num_transformed if self.kind == 'affine' else self.num_transformed
    if h.shape[-1] is not None and h.shape[-1] != want:
      raise ParameterError(
          f'coupling {self.name}: network returned {h.shape[-1]} channels, a {self.kind} '
          f'coupling of {self.num_transformed} channels needs {want}')
    h = tf.reshape(h, tf.concat([shape[:-1], [want]], 0))
    if self.kind == 'additive':
      return None, h
    raw_scale, shift = tf.split(h, 2, axis=-1)
    return _log_scale(raw_scale, self.scale), shift

  def _fldj(self, log_scale, like):
    if log_scale is None:
      return tf.zeros(tf.shape(like)[:-3], like.dtype)
    return tf.reduce_sum(log_scale, axis=[-3, -2, -1])

  def _forward(self, x):
    a, b = self._split(x)
    log_scale, shift = self._params(a)
    y_b = b + shift if log_scale is None else b * tf.exp(log_scale) + shift
    # The log-det comes with the forward pass: TFP's cache serves it to
    # forward_log_det_jacobian(x) without running the network again.
    self._cache.forward_attributes(x)['ildj'] = -self._fldj(log_scale, x)
    return self._join(a, y_b)

  def _inverse(self, y):
    a, y_b = self._split(y)
    log_scale, shift = self._params(a)
    b = y_b - shift if log_scale is None else (y_b - shift) * tf.exp(-log_scale)
    self._cache.inverse_attributes(y)['ildj'] = -self._fldj(log_scale, y)
    return self._join(a, b)

  def _forward_log_det_jacobian(self, x):
    log_scale, _ = self._params(self._split(x)[0])
    return self._fldj(log_scale, x)

  def _inverse_log_det_jacobian(self, y):
    log_scale, _ = self._params(self._split(y)[0])
    return -self._fldj(log_scale, y)


def checkerboard_permutation(channels: int, parity: int) -> np.ndarray:
  """Channel order of a squeezed ``[h/2, w/2, 4 c]`` tensor putting one colour first.

  ``flow_models.multiscale`` orders the squeezed channels as
  ``c_index * 4 + dy * 2 + dx``; squares with ``dy + dx`` even are "black".

  Args:
    channels: int > 0, channels ``c`` before the squeeze.
    parity: 0 (black squares first) or 1 (white first).

  Returns:
    int32 ``[4 c]`` permutation.
  """
  black = [ci * 4 + k for ci in range(channels) for k in (0, 3)]
  white = [ci * 4 + k for ci in range(channels) for k in (1, 2)]
  return np.asarray(black + white if parity == 0 else white + black, np.int32)


def checkerboard_coupling(network: Callable, image_shape, *, parity: int = 0,
                          kind: str = 'affine', dtype=tf.float32,
                          name: str = 'checkerboard') -> tfb.Bijector:
  """RealNVP's checkerboard-masked coupling, composed from TFP bijectors.

  Args:
    network: callable ``[n, h/2, w/2, 2 c] -> [n, h/2, w/2, c_out]`` with
      ``c_out = 4 c`` (affine) or ``2 c`` (additive).
    image_shape: ``(h, w, c)`` of the event, ``h`` and ``w`` even.
    parity: 0: squares with ``(row + col)`` even condition the others; 1:
      the reverse.
    kind: 'affine' or 'additive'.
    dtype: float dtype.
    name: name of the chain.

  Returns:
    A bijector on ``[..., h, w, c]`` (forward = normalising direction).

  Raises:
    ParameterError: odd height or width, or a bad parity.
  """
  c = int(image_shape[-1])
  if parity not in (0, 1):
    raise ParameterError(f'parity must be 0 or 1, got {parity!r}')
  sq = multiscale.squeeze(image_shape)
  perm = checkerboard_permutation(c, parity)
  coupling = AffineCoupling(network, 4 * c, num_conditioning=2 * c, kind=kind, dtype=dtype,
                            name=f'{name}_coupling')
  # tfb.Chain applies its list last-to-first.
  return composition.Chain([composition.Invert(sq),
                           tfb.Permute(np.argsort(perm).astype(np.int32)),
                           coupling, tfb.Permute(perm), sq], name=name)
