"""A CPU-sized NCSN score network: a U-Net that downsamples first.

``UNetScoreNetwork(x, labels)`` has the interface of
:class:`ncsn.model.ScoreNetwork`: images ``[batch, height, width, channels]``
in [0, 1] and noise-level indices ``labels`` int32 ``[batch]`` to float32
scores of the shape of ``x``.

Why: the RefineNet keeps ``ngf`` channels at full resolution and ``2 ngf`` at
1/2 for its whole depth (dilations instead of pooling), so nearly all of its
cost is at the two finest resolutions. As in DDPM / NCSN++ this network spends
little at full resolution and more channels at coarse ones:

* stem: 2x2 space-to-depth (lossless, ``[h, w, c] -> [h/2, w/2, 4c]``), then a
  3x3 conv to ``ngf * channel_mult[0]`` channels; no layer runs at full
  resolution;
* down path: per resolution ``num_res_blocks`` pre-activation residual blocks
  (:class:`ncsn.layers.ResidualBlock`: norm -> ELU -> 3x3 conv, twice), then
  a learned 2x2 stride-2 downsampling (space-to-depth + 1x1 conv) to the next
  width; the coarsest resolution is the bottleneck (no attention);
* up path: a learned 2x2 stride-2 upsampling (1x1 conv + depth-to-space),
  concatenation with the down path's output at that resolution, and
  ``num_res_blocks`` residual blocks;
* head: norm -> ELU -> 3x3 conv to ``4c`` channels -> depth-to-space, the
  output conv zero-initialised (score 0 at initialisation).

Noise conditioning: ``conditional=True`` makes every instance norm++ a
level-conditional one (NCSN v1, per-level gamma, alpha, beta) *and* divides the
output by sigma (as NCSNv2 and NCSN++ do), so the network predicts
``sigma * s``, which has unit scale at every level (the DSM target is ``-z``).
``conditional=False`` is the NCSNv2 form (unconditional norms, output divided
by sigma). Measured on piano mel patches (docs/ncsn.md, 600 equal steps): the
division is what matters -- without it the denoising error
``MSE / sigma^2`` at sigma = 0.01 was 0.86 instead of 0.57 (0.30 instead of
0.19 averaged over the levels); conditioning the norms as well gained another
1-7% per level over the unconditional form (most at the large sigmas), at no
measurable cost in time.

Total downsampling ``2 ** len(channel_mult)``: height and width must be
divisible by it (16 for the default four resolutions; 96 x 64 mel patches
give a 6 x 4 bottleneck).
"""

from typing import Sequence

import numpy as np
import tensorflow as tf

from ncsn import layers
from ncsn.base import ScoreNetBase, ScoreNetConfig
from common.errors import ParameterError


class _Down(tf.Module):
  """2x2 stride-2 conv as space-to-depth + 1x1 conv: ``[h, w, cin] -> [h/2, w/2, cout]``."""

  def __init__(self, rng, cin, cout, name=None):
    super().__init__(name=name)
    self.conv = layers.Conv2D(rng, 4 * cin, cout, kernel=1)

  def __call__(self, x):
    return self.conv(tf.nn.space_to_depth(x, 2))


class _Up(tf.Module):
  """2x2 stride-2 transposed conv as 1x1 conv + depth-to-space:
  ``[h, w, cin] -> [2h, 2w, cout]``."""

  def __init__(self, rng, cin, cout, name=None):
    super().__init__(name=name)
    self.conv = layers.Conv2D(rng, cin, 4 * cout, kernel=1)

  def __call__(self, x):
    return tf.nn.depth_to_space(self.conv(x), 2)


class UNetScoreNetwork(ScoreNetBase):
  """U-Net NCSN score network (see the module docstring for the layout).

  Args:
    config: a :class:`ncsn.model.ScoreNetConfig` with ``arch='unet'``; uses
      ``ngf``, ``channel_mult``, ``num_res_blocks``, ``conditional``,
      ``centered``.
    sigmas: float ``[num_levels]`` noise levels (decreasing) the network is
      trained on; used for the ``1 / sigma`` output scaling and by
      :meth:`level_index`.
    image_shape: ``(height, width, channels)``; height and width divisible by
      ``2 ** len(config.channel_mult)``.
    compute_dtype: ``'float32'`` or ``'bfloat16'`` (float32 variables,
      normalisation statistics and output).
    seed: int, seeds the initial weights.
    fused_norm: XLA-fused normalisation + ELU kernels (see
      :meth:`set_fused_norm`).

  Raises:
    ParameterError: for a config of another arch, an image shape not
      divisible by the downsampling, bad sigmas or an unknown compute dtype.
  """

  def __init__(self, config: ScoreNetConfig, sigmas: Sequence[float], image_shape, *,
               compute_dtype='float32', seed: int = 0, fused_norm: bool = True,
               name=None):
    super().__init__(name=name)
    if config.arch != 'unet':
      raise ParameterError(f"UNetScoreNetwork needs arch='unet', got {config.arch!r}")
    h, w, c = (int(v) for v in image_shape)
    factor = 2 ** len(config.channel_mult)
    if h % factor or w % factor:
      raise ParameterError(
          f'image height and width must be divisible by {factor} (the U-Net '
          f'downsampling, 2 ** len(channel_mult={config.channel_mult})), got '
          f'{tuple(image_shape)}')
    self._init_common(config, sigmas, (h, w, c), compute_dtype)
    rng = np.random.default_rng(seed)
    n = self.num_levels if config.conditional else None
    widths = [config.ngf * m for m in config.channel_mult]
    nb = config.num_res_blocks

    self.stem = layers.Conv2D(rng, 4 * c, widths[0])
    self.down_blocks, self.downs = [], []
    cin = widths[0]
    for i, width in enumerate(widths):
      self.down_blocks.append(
          [layers.ResidualBlock(rng, cin if j == 0 else width, width, n) for j in range(nb)])
      cin = width
      if i + 1 < len(widths):
        self.downs.append(_Down(rng, width, widths[i + 1]))
        cin = widths[i + 1]
    self.ups, self.up_blocks = [], []
    for i in reversed(range(len(widths) - 1)):
      width = widths[i]
      self.ups.append(_Up(rng, widths[i + 1], width))
      self.up_blocks.append(
          [layers.ResidualBlock(rng, 2 * width if j == 0 else width, width, n)
           for j in range(nb)])
    self.norm_end = layers.InstanceNormPlusPlus(rng, widths[0], n)
    self.end = layers.Conv2D(rng, widths[0], 4 * c)
    self.end.kernel.assign(tf.zeros_like(self.end.kernel))
    self._scale_by_sigma = True    # False only for the ablation in docs/ncsn.md
    self.set_fused_norm(fused_norm)


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
    h = self.stem(tf.nn.space_to_depth(h, 2))
    skips = []
    for i, blocks in enumerate(self.down_blocks):
      for block in blocks:
        h = block(h, labels)
      if i < len(self.downs):
        skips.append(h)
        h = self.downs[i](h)
    for up, blocks in zip(self.ups, self.up_blocks):
      h = tf.concat([up(h), skips.pop()], axis=-1)
      for block in blocks:
        h = block(h, labels)
    h = tf.cast(self.norm_end(h, labels, elu=True), tf.float32)
    out = tf.nn.depth_to_space(self.end(h), 2)
    if not self._scale_by_sigma:
      return out
    return out / tf.reshape(tf.gather(self.sigmas, labels), [-1, 1, 1, 1])
