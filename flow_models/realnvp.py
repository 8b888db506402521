"""RealNVP (Dinh, Sohl-Dickstein & Bengio 2017) as a ``tfd.TransformedDistribution``.

Normalising direction, per scale ``l = 1..L``:

  (l < L) K checkerboard couplings (alternating colours) -> squeeze 2x2
          -> K channel-wise couplings (alternating halves) -> factor out half
          the channels (straight to ``N(0, I)``, as in the paper)
  (l = L) K + 1 checkerboard couplings.

The coupling networks are residual networks with batch normalisation
(:class:`flow_models.networks.ResNetBN`). Where the paper puts a batch-norm
bijector after each coupling, an ActNorm is used instead: a batch-norm
bijector makes ``log p(x)`` of one example depend on the rest of the batch
while training, and the bounded coupling scale needs some layer that can
expand. Checkerboard couplings are composed from TFP bijectors
(:func:`flow_models.couplings.checkerboard_coupling`).
``tfp.bijectors.RealNVP`` is not used directly: it masks only the last axis
and runs its network twice per ``log_prob`` (see ``couplings.py``).
"""

import dataclasses
from typing import Any, Dict

import tensorflow as tf
import tensorflow_probability as tfp

from flow_models import composition
from flow_models import config_checks
from flow_models import couplings
from flow_models import model as model_lib
from flow_models import multiscale
from flow_models import networks
from flow_models import preprocessing
from flow_models import utils
from flow_models.actnorm import ActNorm

tfb = tfp.bijectors
tfd = tfp.distributions


@dataclasses.dataclass(frozen=True)
class RealNVPConfig:
  """Architecture of a RealNVP flow.

  Attributes:
    levels: int >= 1, scales L (height and width divisible by 2^L).
    steps_per_level: int >= 1, couplings K of each mask type per scale (the
      paper: 3; the last scale has K + 1 checkerboard couplings).
    hidden_channels: int >= 1, width of the residual networks.
    res_blocks: int >= 0, residual blocks per coupling network.
    coupling: 'affine' or 'additive'.
    preprocessing: 'logit' (the paper's) or 'shift'. Noise-conditioned
      fine-tuning needs 'shift' (noisy data leaves [0, 1]).
    logit_alpha: squashing of 'logit' preprocessing.
  """

  levels: int = 3
  steps_per_level: int = 3
  hidden_channels: int = 64
  res_blocks: int = 4
  coupling: str = 'affine'
  preprocessing: str = 'logit'
  logit_alpha: float = 0.05

  def __post_init__(self):
    config_checks.check_common_fields(self)
    utils.check_int('res_blocks', self.res_blocks, minimum=0)

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> 'RealNVPConfig':
    """Raises ParameterError for unknown keys."""
    return config_checks.config_from_dict(cls, d)


def build_realnvp(config: RealNVPConfig, image_shape, *, dtype=tf.float32, seed: int = 0,
                  name: str = 'realnvp') -> tfd.TransformedDistribution:
  """Builds a RealNVP flow over images of ``image_shape`` in data units.

  Args:
    config: a :class:`RealNVPConfig`.
    image_shape: ``(height, width, channels)``.
    dtype: float dtype of all parameters.
    seed: int, seeds the initial weights.
    name: distribution name (and variable name prefix).

  Returns:
    ``tfd.TransformedDistribution`` with event shape ``image_shape``;
    couplings start as the identity, ActNorms uninitialised.

  Raises:
    ParameterError: if the image shape does not allow ``config.levels``.
  """
  shape = utils.check_image_shape(image_shape, config.levels)
  seeds = utils.Seeds(seed)
  with tf.name_scope(name):
    pre = preprocessing.preprocessing_bijector(config.preprocessing,
                                               logit_alpha=config.logit_alpha, dtype=dtype)
    flow = _scale(config, shape, 0, seeds, dtype)
  return model_lib.make_distribution(composition.Chain([flow, pre], name='flow'), shape,
                                     dtype=dtype, name=name)


def _network(config, in_channels, transformed, seeds, dtype, name):
  return networks.ResNetBN(in_channels, networks.output_channels(config.coupling, transformed),
                           config.hidden_channels, res_blocks=config.res_blocks,
                           seed=seeds(), dtype=dtype, name=name)


def _checkerboard_steps(config, shape, count, seeds, dtype):
  c = shape[-1]
  parts = []
  for k in range(count):
    with tf.name_scope(f'checkerboard{k}'):
      net = _network(config, 2 * c, 2 * c, seeds, dtype, 'net')
      parts.append(couplings.checkerboard_coupling(net, shape, parity=k % 2,
                                                   kind=config.coupling, dtype=dtype))
      parts.append(ActNorm(c, dtype=dtype))
  return parts


def _scale(config, shape, index, seeds, dtype):
  """The flow from a scale's input ``[h, w, c]`` to its flat latents."""
  h, w, c = shape
  last = index == config.levels - 1
  squeezed = (h // 2, w // 2, 4 * c)
  keep = 2 * c
  inner = None if last else _scale(config, squeezed[:2] + (keep,), index + 1, seeds, dtype)
  with tf.name_scope(f'scale{index}'):
    k = config.steps_per_level
    if last:
      parts = _checkerboard_steps(config, shape, k + 1, seeds, dtype)
      parts.append(multiscale.flatten(shape))
      return composition.Chain(parts[::-1], name=f'scale{index}')
    parts = _checkerboard_steps(config, shape, k, seeds, dtype)
    parts.append(multiscale.squeeze(shape))
    for j in range(k):
      with tf.name_scope(f'channelwise{j}'):
        net = _network(config, keep, 4 * c - keep, seeds, dtype, 'net')
        parts.append(couplings.AffineCoupling(net, 4 * c, num_conditioning=keep,
                                              kind=config.coupling, reverse=bool(j % 2),
                                              dtype=dtype, name='coupling'))
        parts.append(ActNorm(4 * c, dtype=dtype))
    parts.append(multiscale.factor_out(squeezed, keep, inner))
  return composition.Chain(parts[::-1], name=f'scale{index}')
