"""Glow (Kingma & Dhariwal 2018) as a ``tfd.TransformedDistribution``.

Normalising direction, per level ``l = 1..L``:

  squeeze 2x2 -> K x [ActNorm -> invertible 1x1 conv (LU) -> coupling]
  -> (l < L) factor out half the channels, with Glow's conditional Gaussian
     split prior ``N(mu(h), sigma(h)^2)`` given the kept half ``h``
  -> (l = L) learned top prior ``N(mu, sigma^2)`` per position and channel.

Both priors are written as bijectors that standardise the latents (zero-
initialised, so they start as ``N(0, I)``), which keeps the base
distribution ``N(0, I_D)`` and lets temperature scale every latent.

Relation to ``tfp.bijectors.Glow``: the same step and multi-scale layout,
composed from TFP bijectors (Chain, Split, JointMap, Reshape, Transpose,
Shift, Scale, Invert); ActNorm, the 1x1 convolution and the coupling are
our own for the reasons in their modules (explicit data-dependent init;
``log|s|`` parameterisation and one matmul per layer; one network pass per
``log_prob``). ``tfb.Glow`` also lacks the learned top prior, and scales its
split prior with an unbounded ``exp`` where ours uses ``exp(3 tanh(h / 3))``.
``benchmarks/bench_flows.py`` measures the two side by side (ours is about 2x
faster per training step).
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
from flow_models.conv1x1 import InvertibleConv1x1

tfb = tfp.bijectors
tfd = tfp.distributions


@dataclasses.dataclass(frozen=True)
class GlowConfig:
  """Architecture of a Glow flow.

  Attributes:
    levels: int >= 1, multi-scale levels L (each squeezes 2x2; height and
      width must be divisible by 2^L).
    steps_per_level: int >= 1, flow steps K per level.
    hidden_channels: int >= 1, width of the coupling networks.
    coupling: 'affine' (scale ``sigmoid(h + 2) / sigmoid(2)`` and shift) or
      'additive' (shift only; volume preserving).
    learn_top: learned top prior (else ``N(0, I)``).
    split_prior: conditional Gaussian prior for factored-out channels (else
      ``N(0, I)``).
    preprocessing: 'shift' (``x - 0.5``) or 'logit'.
    logit_alpha: squashing of 'logit' preprocessing.
  """

  levels: int = 3
  steps_per_level: int = 32
  hidden_channels: int = 512
  coupling: str = 'affine'
  learn_top: bool = True
  split_prior: bool = True
  preprocessing: str = 'shift'
  logit_alpha: float = 0.05

  def __post_init__(self):
    config_checks.check_common_fields(self)

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> 'GlowConfig':
    """Raises ParameterError for unknown keys."""
    return config_checks.config_from_dict(cls, d)


def build_glow(config: GlowConfig, image_shape, *, dtype=tf.float32, seed: int = 0,
               name: str = 'glow') -> tfd.TransformedDistribution:
  """Builds a Glow flow over images of ``image_shape`` in data units.

  The result is untrained, with identity couplings and priors and
  uninitialised ActNorms: call :func:`flow_models.model.initialize` on a data
  batch before training.

  Args:
    config: a :class:`GlowConfig`.
    image_shape: ``(height, width, channels)``.
    dtype: float dtype of all parameters.
    seed: int, seeds the initial weights.
    name: distribution name (and variable name prefix).

  Returns:
    ``tfd.TransformedDistribution`` with event shape ``image_shape``.

  Raises:
    ParameterError: if the image shape does not allow ``config.levels``.
  """
  shape = utils.check_image_shape(image_shape, config.levels)
  seeds = utils.Seeds(seed)
  with tf.name_scope(name):
    pre = preprocessing.preprocessing_bijector(config.preprocessing,
                                               logit_alpha=config.logit_alpha, dtype=dtype)
    flow = _level(config, shape, 0, seeds, dtype)
  return model_lib.make_distribution(composition.Chain([flow, pre], name='flow'), shape,
                                     dtype=dtype, name=name)


def _step(config, channels, seeds, dtype, name):
  """ActNorm -> 1x1 conv -> coupling, as a list in application order."""
  with tf.name_scope(name):
    actnorm = ActNorm(channels, dtype=dtype)
    conv = InvertibleConv1x1(channels, seed=seeds(), dtype=dtype)
    c_a = channels // 2
    net = networks.GlowNetwork(
        c_a, networks.output_channels(config.coupling, channels - c_a),
        config.hidden_channels, seed=seeds(), dtype=dtype, name='net')
    coupling = couplings.AffineCoupling(net, channels, kind=config.coupling, dtype=dtype,
                                        name='coupling')
  return [actnorm, conv, coupling]


def _level(config, shape, index, seeds, dtype):
  """The flow from a level's input ``[h, w, c]`` to its flat latents."""
  h, w, c = shape
  shape = (h // 2, w // 2, 4 * c)
  last = index == config.levels - 1
  keep = shape[-1] // 2
  inner = None if last else _level(config, shape[:2] + (keep,), index + 1, seeds, dtype)
  with tf.name_scope(f'level{index}'):
    parts = [multiscale.squeeze((h, w, c))]
    for k in range(config.steps_per_level):
      parts += _step(config, shape[-1], seeds, dtype, f'step{k}')
    if last:
      if config.learn_top:
        parts.append(multiscale.learned_top(shape, dtype=dtype))
      parts.append(multiscale.flatten(shape))
    else:
      split_prior = None
      if config.split_prior:
        net = networks.ZeroConvNetwork(keep, 2 * (shape[-1] - keep), dtype=dtype,
                                       name='split_prior_net')
        split_prior = couplings.AffineCoupling(net, shape[-1], num_conditioning=keep,
                                               scale='exp', dtype=dtype, name='split_prior')
      parts.append(multiscale.factor_out(shape, keep, inner, split_prior=split_prior))
  return composition.Chain(parts[::-1], name=f'level{index}')
