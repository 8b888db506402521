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
"""

import dataclasses
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from ncsn import layers
from pipeline.errors import ParameterError


ARCHS = ('refinenet', 'unet')


@dataclasses.dataclass(frozen=True)
class ScoreNetConfig:
  """Architecture of the score network.

  Attributes:
    ngf: int > 0, base width. RefineNet: its deep layers use ``2 * ngf``; the
      original MNIST model used 64, the audio model 192; 16-32 train on a
      2-core CPU. U-Net: the width at its first (1/2) resolution.
    conditional: True for NCSN (level-conditional norms), False for NCSNv2
      (unconditional, output divided by sigma). The U-Net divides its output
      by sigma in both (see :mod:`ncsn.unet`).
    centered: feed ``2 x - 1`` (data in [0, 1] centred on zero) to the first conv.
    arch: ``'refinenet'`` (:class:`ScoreNetwork`) or ``'unet'``
      (:class:`ncsn.unet.UNetScoreNetwork`, a CPU-sized network that
      downsamples early).
    channel_mult: U-Net only: tuple of ints > 0, the width of each
      resolution (1/2, 1/4, 1/8, ...) in units of ``ngf``; its length sets the
      depth (total downsampling ``2 ** len(channel_mult)``).
    num_res_blocks: U-Net only: int > 0, residual blocks per resolution and
      path.

  Raises:
    ParameterError: for a bad width, an unknown ``arch``, or U-Net fields
      changed from their defaults with ``arch='refinenet'`` (they would be
      ignored).
  """

  ngf: int = 32
  conditional: bool = True
  centered: bool = True
  arch: str = 'refinenet'
  channel_mult: Tuple[int, ...] = (1, 2, 2, 4)
  num_res_blocks: int = 1

  def __post_init__(self):
    if int(self.ngf) != self.ngf or self.ngf <= 0:
      raise ParameterError(f'ngf must be a positive int, got {self.ngf!r}')
    if self.arch not in ARCHS:
      raise ParameterError(f'arch must be one of {ARCHS}, got {self.arch!r}')
    mult = tuple(self.channel_mult)
    if not mult or any(int(m) != m or m <= 0 for m in mult):
      raise ParameterError(
          f'channel_mult must be a non-empty sequence of positive ints, got {self.channel_mult!r}')
    object.__setattr__(self, 'channel_mult', tuple(int(m) for m in mult))   # lists from json
    if int(self.num_res_blocks) != self.num_res_blocks or self.num_res_blocks <= 0:
      raise ParameterError(
          f'num_res_blocks must be a positive int, got {self.num_res_blocks!r}')
    if self.arch == 'refinenet':
      for name in _UNET_FIELDS:
        if getattr(self, name) != _DEFAULTS[name]:
          raise ParameterError(
              f"{name} applies to arch='unet' only, got {name}={getattr(self, name)!r} "
              "with arch='refinenet'")

  def to_dict(self):
    """json-able fields; a RefineNet's dict has no U-Net fields (nor ``arch``),
    so descriptions of runs and priors made before the U-Net compare equal."""
    d = dataclasses.asdict(self)
    if self.arch == 'refinenet':
      for name in ('arch',) + _UNET_FIELDS:
        del d[name]
    else:
      d['channel_mult'] = list(self.channel_mult)
    return d

  @classmethod
  def from_dict(cls, d):
    return cls(**d)


_UNET_FIELDS = ('channel_mult', 'num_res_blocks')
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ScoreNetConfig)}


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
    from ncsn import unet  # pylint: disable=g-import-not-at-top  (unet imports this module)
    cls = unet.UNetScoreNetwork
  else:
    cls = ScoreNetwork
  return cls(config, sigmas, image_shape, compute_dtype=compute_dtype, seed=seed,
             fused_norm=fused_norm)


class ScoreNetBase(tf.Module):
  """What every score network here shares: the trained levels, the compute
  dtype, the fused-norm switch and the level lookup (no variables of its own,
  so subclasses' checkpoint layouts are theirs alone)."""

  def _init_common(self, config: ScoreNetConfig, sigmas: Sequence[float], image_shape,
                   compute_dtype):
    """Checks and stores config, sigmas, image shape and compute dtype.

    Raises:
      ParameterError: bad sigmas or an unknown compute dtype.
    """
    sigmas = np.asarray(sigmas, np.float64)
    if sigmas.ndim != 1 or len(sigmas) < 1 or not np.all(sigmas > 0):
      raise ParameterError(f'sigmas must be a positive 1-D sequence, got {sigmas}')
    if compute_dtype not in ('float32', 'bfloat16'):
      raise ParameterError(
          f"compute_dtype must be 'float32' or 'bfloat16', got {compute_dtype!r}")
    self.config = config
    self.image_shape = tuple(image_shape)
    self.compute_dtype = tf.as_dtype(compute_dtype)
    self._sigmas_np = sigmas
    self.num_levels = len(sigmas)

  def set_fused_norm(self, fused: bool):
    """XLA-fused norm + ELU kernels (default) or the plain op-by-op form.

    Same values to float rounding; see :mod:`ncsn.layers` for the speed.
    """
    for module in self.submodules:
      if isinstance(module, layers.InstanceNormPlusPlus):
        module.fused = bool(fused)

  @property
  def sigmas(self) -> tf.Tensor:
    """float32 ``[num_levels]``, the trained noise levels."""
    return tf.constant(self._sigmas_np, tf.float32)

  def level_index(self, sigma) -> int:
    """Index of the trained level equal to ``sigma`` (relative tolerance 1e-4).

    Raises:
      ParameterError: if ``sigma`` is not one of the trained levels.
    """
    sig = self._sigmas_np
    i = int(np.argmin(np.abs(np.log(sig) - np.log(float(sigma)))))
    if abs(sig[i] - float(sigma)) > 1e-4 * sig[i]:
      raise ParameterError(
          f'sigma={float(sigma)!r} is not a noise level of this network '
          f'(levels: {np.array2string(sig, precision=4)})')
    return i

  def num_parameters(self) -> int:
    return int(sum(np.prod(v.shape) for v in self.trainable_variables))


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
