"""What every NCSN score network shares: its config and its base class.

:class:`ScoreNetConfig` names the architecture (``arch``: the RefineNet of
:mod:`ncsn.model` or the U-Net of :mod:`ncsn.unet`); :class:`ScoreNetBase`
holds the trained levels, compute dtype and level lookup of both. Both
network modules import this one, and :func:`ncsn.model.build_score_network`
imports both networks, so the imports run one way.
"""

import dataclasses
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from ncsn import layers
from common.errors import ParameterError


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
    arch: ``'refinenet'`` (:class:`ncsn.model.ScoreNetwork`) or ``'unet'``
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

  @property
  def trained_sigmas(self) -> np.ndarray:
    """float64 ``[num_levels]``, the trained noise levels (a copy)."""
    return self._sigmas_np.copy()

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
