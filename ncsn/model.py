"""The NCSN score network: RefineNet with dilations and instance norm++.

``ScoreNetwork(x, labels)`` maps images ``[batch, height, width, channels]``
in [0, 1] and noise-level indices ``labels`` int32 ``[batch]`` to scores of
the same shape as ``x`` (float32, data units per unit: d log p / dx).

Two variants share the body:

* NCSN (v1, ``conditional=True``): every normalisation layer is indexed by the
  noise level (conditional instance norm++); the output is the score.
* NCSNv2 (``conditional=False``): unconditional instance norm++, and the
  output is divided by the level's sigma, s(x, sigma) = s(x) / sigma.

Resolution: one 2x downsampling (res2); res3 and res4 widen the receptive
field with dilation 2 and 4 instead of pooling, as in the original. Height and
width must therefore be even.

:class:`ScoreNetConfig` and the shared base class live in :mod:`ncsn.base`
(``ncsn.model.ScoreNetConfig`` is the same class); :func:`build_score_network`
builds either architecture.
"""

from typing import Sequence

import numpy as np
import tensorflow as tf

from ncsn import layers
from ncsn import unet
from ncsn.base import ScoreNetBase, ScoreNetConfig  # pylint: disable=unused-import  (public here)
from common.errors import ParameterError


def build_score_network(config: ScoreNetConfig, sigmas: Sequence[float], image_shape, *,
                        compute_dtype='float32', seed: int = 0, fused_norm: bool = True):
  """The score network of ``config.arch`` (one builder for training, export, loading).

  Args:
    config: a :class:`ScoreNetConfig`.
    sigmas, image_shape, compute_dtype, seed, fused_norm: as for
      :class:`ScoreNetwork`.

  Returns:
    A :class:`ScoreNetwork` (``arch='refinenet'``) or an
    :class:`ncsn.unet.UNetScoreNetwork` (``arch='unet'``); both map
    ``(x [batch, height, width, channels], labels int32 [batch])`` to float32
    scores of the shape of ``x``.

  Raises:
    ParameterError: for arguments the network rejects (see each class).
  """
  if config.arch == 'unet':
    cls = unet.UNetScoreNetwork
  else:
    cls = ScoreNetwork
  return cls(config, sigmas, image_shape, compute_dtype=compute_dtype, seed=seed,
             fused_norm=fused_norm)


class ScoreNetwork(ScoreNetBase):
  """RefineNet-style NCSN / NCSNv2 score network.

  Args:
    config: a :class:`ScoreNetConfig`.
    sigmas: float ``[num_levels]`` noise levels (decreasing) the network is
      trained on; stored as a constant, used by NCSNv2's ``s(x) / sigma`` and
      by :meth:`level_index`.
    image_shape: ``(height, width, channels)``; height and width even.
    compute_dtype: ``'float32'`` or ``'bfloat16'`` (mixed precision: float32
      variables, bfloat16 convolutions, float32 statistics and output).
    seed: int, seeds the initial weights.
    fused_norm: XLA-fused normalisation + ELU kernels (see
      :meth:`set_fused_norm`).
  """

  def __init__(self, config: ScoreNetConfig, sigmas: Sequence[float],
               image_shape, *, compute_dtype='float32', seed: int = 0,
               fused_norm: bool = True, name=None):
    super().__init__(name=name)
    h, w, c = (int(v) for v in image_shape)
    if h % 2 or w % 2:
      raise ParameterError(f'image height and width must be even, got {image_shape}')
    self._init_common(config, sigmas, (h, w, c), compute_dtype)
    rng = np.random.default_rng(seed)
    n = self.num_levels if config.conditional else None
    f = config.ngf
    self.begin = layers.Conv2D(rng, c, f)
    self.res = [
        layers.ResidualBlock(rng, f, f, n),
        layers.ResidualBlock(rng, f, f, n),
        layers.ResidualBlock(rng, f, 2 * f, n, downsample=True),
        layers.ResidualBlock(rng, 2 * f, 2 * f, n),
        layers.ResidualBlock(rng, 2 * f, 2 * f, n, downsample=True, dilation=2),
        layers.ResidualBlock(rng, 2 * f, 2 * f, n, dilation=2),
        layers.ResidualBlock(rng, 2 * f, 2 * f, n, downsample=True, dilation=4),
        layers.ResidualBlock(rng, 2 * f, 2 * f, n, dilation=4),
    ]
    self.refine4 = layers.RefineBlock(rng, [2 * f], 2 * f, n)
    self.refine3 = layers.RefineBlock(rng, [2 * f, 2 * f], 2 * f, n)
    self.refine2 = layers.RefineBlock(rng, [2 * f, 2 * f], f, n)
    self.refine1 = layers.RefineBlock(rng, [f, f], f, n, end=True)
    self.norm_end = layers.InstanceNormPlusPlus(rng, f, n)
    self.end = layers.Conv2D(rng, f, c)
    self.set_fused_norm(fused_norm)


  # Plain Python structure only (no tensor-dependent control flow), so
  # AutoGraph has nothing to convert; skipping it shortens tracing.
  @tf.autograph.experimental.do_not_convert
  def __call__(self, x, labels, training=False):
    """Score of the noise-perturbed data at level ``labels``.

    Args:
      x: float ``[batch, height, width, channels]``.
      labels: int32 ``[batch]``, noise-level indices in ``[0, num_levels)``.
      training: unused (no dropout or batch norm); kept for a uniform API.

    Returns:
      float32 ``[batch, height, width, channels]``.
    """
    del training
    labels = tf.cast(labels, tf.int32)
    h = tf.cast(x, self.compute_dtype)
    if self.config.centered:
      h = 2.0 * h - 1.0
    h = self.begin(h)
    skips = []
    for i, block in enumerate(self.res):
      h = block(h, labels)
      if i % 2 == 1:
        skips.append(h)
    h1, h2, h3, h4 = skips
    r = self.refine4([h4], labels)
    r = self.refine3([h3, r], labels)
    r = self.refine2([h2, r], labels)
    r = self.refine1([h1, r], labels)
    out = self.end(tf.cast(self.norm_end(r, labels, elu=True), tf.float32))
    if not self.config.conditional:
      out = out / tf.reshape(tf.gather(self.sigmas, labels), [-1, 1, 1, 1])
    return out
