"""What every flow here is: a ``tfd.TransformedDistribution`` of ``N(0, I_D)``.

The builders (:func:`flow_models.glow.build_glow`,
:func:`flow_models.realnvp.build_realnvp`) return
``tfd.TransformedDistribution(base, tfb.Invert(flow))``, where ``flow`` maps
images ``[..., height, width, channels]`` (data units) to flat latents
``[..., D]`` (the normalising direction, how flows are written in papers)
and ``base = N(0, I_D)``. ``log_prob``, ``sample`` and the trainable
variables are TFP's; this module adds what TFP has no verb for: the
data-dependent ActNorm initialisation, batch-norm mode, tempered samples.
"""

import contextlib

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from flow_models import composition
from flow_models import networks
from flow_models.actnorm import ActNorm
from common.errors import ParameterError
from common.checks import check_seed

tfb = tfp.bijectors
tfd = tfp.distributions


def make_distribution(flow: tfb.Bijector, image_shape, *, dtype=tf.float32,
                      name: str = 'flow') -> tfd.TransformedDistribution:
  """``tfd.TransformedDistribution(N(0, I_D), tfb.Invert(flow))``.

  Args:
    flow: bijector ``[..., h, w, c] -> [..., D]`` (normalising direction).
    image_shape: ``(h, w, c)``.
    dtype: float dtype of the base distribution.
    name: distribution name.

  Raises:
    ParameterError: if ``flow`` does not map ``image_shape`` to ``D`` values.
  """
  shape = tuple(int(v) for v in image_shape)
  d = int(np.prod(shape))
  out = tuple(flow.forward_event_shape(shape).as_list())
  if out != (d,):
    raise ParameterError(f'flow maps {shape} to {out}, expected ({d},)')
  base = tfd.Sample(tfd.Normal(tf.zeros([], dtype), tf.ones([], dtype)), [d], name='base')
  return tfd.TransformedDistribution(base, composition.Invert(flow), name=name)


def normalizing_flow(distribution: tfd.TransformedDistribution) -> tfb.Bijector:
  """The data -> latent bijector of a flow built here."""
  bijector = getattr(distribution, 'bijector', None)
  if not isinstance(bijector, composition.InvertBase):
    raise ParameterError(
        f'expected a TransformedDistribution with bijector Invert(flow), got '
        f'{type(bijector).__name__}')
  return bijector.bijector


def image_shape(distribution) -> tuple:
  """``(height, width, channels)`` of the flow's events."""
  return tuple(int(v) for v in distribution.event_shape)


def num_dims(distribution) -> int:
  """``D``, values per example."""
  return int(np.prod(image_shape(distribution)))


def actnorms(distribution):
  """The :class:`ActNorm` bijectors of a flow, in no particular order."""
  return [m for m in distribution.submodules if isinstance(m, ActNorm)]


def is_initialized(distribution) -> bool:
  """True when every ActNorm of the flow has had its data-dependent init."""
  return all(bool(a.initialized.numpy()) for a in actnorms(distribution))


def initialize(distribution, x):
  """Data-dependent initialisation of every ActNorm, in one eager pass.

  Each ActNorm standardises what reaches it from the already-initialised
  layers before it (Kingma & Dhariwal 2018), so the whole flow starts with
  unit-variance activations. Call before creating the optimiser; a restored
  checkpoint overwrites the result.

  Args:
    distribution: a flow built by this package.
    x: float ``[batch, height, width, channels]`` data (a few hundred values
      per channel at least, e.g. a batch of 64 MNIST digits).

  Raises:
    ParameterError: outside eager mode, or for data of the wrong shape.
  """
  if not tf.executing_eagerly():
    raise ParameterError('initialize runs eagerly (it assigns variables layer by layer); '
                         'call it outside tf.function')
  flow = normalizing_flow(distribution)
  x = tf.convert_to_tensor(x, distribution.dtype)
  want = image_shape(distribution)
  if x.shape.rank != 4 or tuple(x.shape[1:]) != want:
    raise ParameterError(f'initialize needs a batch [batch, {", ".join(map(str, want))}], '
                         f'got shape {tuple(x.shape)}')
  layers = actnorms(distribution)
  for a in layers:
    a._init_pending = True  # pylint: disable=protected-access
  try:
    with networks.training_mode(distribution, True):
      # tf.identity: a fresh tensor, so TFP's bijector cache holds nothing
      # that later calls with the caller's x could pick up.
      flow.forward(tf.identity(x))
  finally:
    missed = [a.name for a in layers if a._init_pending]  # pylint: disable=protected-access
    for a in layers:
      a._init_pending = False  # pylint: disable=protected-access
  if missed:
    raise ParameterError(f'{len(missed)} ActNorm layers were not reached by the forward '
                         f'pass: {missed[:5]}')


@contextlib.contextmanager
def training_mode(distribution, training: bool = True):
  """Batch norm in the coupling networks uses batch statistics inside the block."""
  with networks.training_mode(distribution, training):
    yield


def sample(distribution, n: int, *, seed, temperature: float = 1.0) -> tf.Tensor:
  """``n`` samples with latents ``temperature * N(0, I)``.

  Args:
    distribution: a flow built here.
    n: int > 0.
    seed: int or int32 ``[2]`` stateless seed.
    temperature: float >= 0 (Glow's standard deviation of the latent; 0.7
      gives cleaner samples than 1).

  Returns:
    ``[n, height, width, channels]`` in data units (not clipped).

  Raises:
    ParameterError: for a bad ``n`` or temperature.
  """
  if isinstance(n, bool) or int(n) != n or n < 1:
    raise ParameterError(f'n must be a positive int, got {n!r}')
  if not temperature >= 0:
    raise ParameterError(f'temperature must be >= 0, got {temperature!r}')
  if isinstance(seed, (int, np.integer)):
    seed = tf.constant([check_seed(seed), 0x5A], tf.int32)
  z = tf.random.stateless_normal([int(n), num_dims(distribution)], seed,
                                 dtype=distribution.dtype)
  return distribution.bijector.forward(tf.cast(temperature, distribution.dtype) * z)
