"""Multi-scale plumbing from TFP bijectors: 2x2 squeeze, factor-out, learned top.

All bijectors here run forward in the normalising direction (data -> latent)
and are compositions of ``tfb.Reshape``, ``tfb.Transpose``, ``tfb.Split``,
``tfb.JointMap``, ``tfb.Shift`` and ``tfb.Scale``; nothing is written by hand.
"""

from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flow_models import composition
from common.errors import ParameterError

tfb = tfp.bijectors


def _shape3(image_shape) -> tuple:
  shape = tuple(int(v) for v in image_shape)
  if len(shape) != 3 or min(shape) < 1:
    raise ParameterError(f'image_shape must be (height, width, channels) > 0, got '
                         f'{tuple(image_shape)}')
  return shape


def squeeze(image_shape) -> tfb.Bijector:
  """Space-to-depth: ``[..., h, w, c] -> [..., h/2, w/2, 4 c]``.

  Output channel ``c_index * 4 + dy * 2 + dx`` holds input pixel
  ``(2 i + dy, 2 j + dx)`` of channel ``c_index`` (the order of the original
  Glow code).

  Raises:
    ParameterError: odd height or width.
  """
  h, w, c = _shape3(image_shape)
  if h % 2 or w % 2:
    raise ParameterError(f'squeeze needs an even height and width, got {(h, w, c)}')
  return composition.Chain([
      tfb.Reshape([h // 2, w // 2, 4 * c], event_shape_in=[h // 2, w // 2, c, 2, 2]),
      tfb.Transpose(perm=[0, 2, 4, 1, 3]),
      tfb.Reshape([h // 2, 2, w // 2, 2, c], event_shape_in=[h, w, c]),
  ], name='squeeze')


def flatten(image_shape) -> tfb.Bijector:
  """``[..., h, w, c] -> [..., h * w * c]``."""
  h, w, c = _shape3(image_shape)
  return tfb.Reshape([h * w * c], event_shape_in=[h, w, c], name='flatten')


def factor_out(image_shape, keep_channels: int, keep_flow: tfb.Bijector,
               *, split_prior: tfb.Bijector = None) -> tfb.Bijector:
  """Splits the channels, sends the kept part on, flattens both parts.

  ``[..., h, w, c] -> [..., D_keep + h * w * (c - keep)]``: the first
  ``keep_channels`` channels go through ``keep_flow`` (which must end flat,
  ``D_keep`` values), the others are flattened as they are (they are latents
  now) and the two are concatenated.

  Args:
    image_shape: ``(h, w, c)``.
    keep_channels: int in (0, c).
    keep_flow: bijector ``[..., h, w, keep_channels] -> [..., D_keep]``.
    split_prior: optional bijector on ``[..., h, w, c]`` applied first, e.g. a
      coupling that standardises the factored channels given the kept ones
      (Glow's conditional Gaussian split prior, as a bijector).

  Raises:
    ParameterError: for a bad split.
  """
  h, w, c = _shape3(image_shape)
  if not 0 < keep_channels < c:
    raise ParameterError(f'keep_channels must be in (0, {c}), got {keep_channels!r}')
  out_channels = c - keep_channels
  kept_size = int(np.prod(keep_flow.forward_event_shape([h, w, keep_channels])))
  parts = [
      composition.Invert(tfb.Split([kept_size, h * w * out_channels], axis=-1)),
      composition.JointMap([keep_flow, flatten((h, w, out_channels))]),
      tfb.Split([keep_channels, out_channels], axis=-1),
  ]
  if split_prior is not None:
    parts.append(split_prior)
  return composition.Chain(parts, name='factor_out')


def learned_top(image_shape: Sequence[int], *, dtype=tf.float32,
                name: str = 'learned_top') -> tfb.Bijector:
  """Glow's learned top prior ``N(mu, diag(sigma^2))`` per position and channel.

  As a bijector: the top latent ``h`` is standardised by
  ``eps = (h + shift) * exp(log_scale)`` (so ``mu = -shift``,
  ``sigma = exp(-log_scale)``), both variables ``[h, w, c]`` and
  zero-initialised: the prior starts as ``N(0, I)``.

  Args:
    image_shape: ``(h, w, c)`` of the top latent.
    dtype: float dtype.
    name: name scope of the two variables.

  Returns:
    ``tfb.Scale(log_scale) o tfb.Shift(shift)`` on ``[..., h, w, c]``.
  """
  shape = _shape3(image_shape)
  with tf.name_scope(name):
    shift = tf.Variable(tf.zeros(shape, dtype), name='shift')
    log_scale = tf.Variable(tf.zeros(shape, dtype), name='log_scale')
  return composition.Chain([tfb.Scale(log_scale=log_scale), tfb.Shift(shift)], name=name)
