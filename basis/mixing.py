"""Mixing functions g(x_1..x_K) -> mixture; their gradients come from autodiff.

A mixing function takes the stacked sources ``[n_sources, batch, ...]`` and
returns the mixture ``[batch, ...]``. Any callable of that form works.
"""

import math

import tensorflow as tf

from common.errors import ParameterError


def mix_sum(xs):
  """``m = sum_k x_k`` (waveforms, linear spectrograms)."""
  return tf.reduce_sum(xs, axis=0)


def mix_mean(xs):
  """``m = mean_k x_k`` (images in [0, 1], as in the BASIS image experiments)."""
  return tf.reduce_mean(xs, axis=0)


class DbPowerSum:
  """Power sum of dB spectrograms stored in the unit scale of the pipeline.

  Sources and mixture are patches in [0, 1] with
  ``unit = (dB - min_db) / (max_db - min_db)``. Powers add, dB values do not:

    g = unit( 10 log10( sum_k 10^(dB_k / 10) ) ),   dB_k = db(x_k),

  computed in dB units with a log-sum-exp. (The original project applied the
  power sum to the [0, 1] values, which made g nearly the mean.) The result is
  not clipped to ``max_db``, so the gradient never vanishes.

  The range has no default: it comes from the ``FeatureConfig`` that travels
  with the data (:meth:`from_features`), so it can never disagree with it.

  Args:
    min_db, max_db: the unit-scale range (``FeatureConfig.db_range``).
  """

  def __init__(self, min_db: float, max_db: float):
    if not min_db < max_db:
      raise ParameterError(f'need min_db < max_db, got {min_db!r}, {max_db!r}')
    self.min_db, self.max_db = float(min_db), float(max_db)

  @classmethod
  def from_features(cls, features) -> 'DbPowerSum':
    """The power sum for data made with ``features`` (a ``FeatureConfig`` or its dict)."""
    from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
    if isinstance(features, dict):
      features = FeatureConfig.from_dict(features)
    if not isinstance(features, FeatureConfig):
      raise ParameterError(f'features must be a FeatureConfig or its dict, got '
                           f'{type(features).__name__}')
    return cls(*features.db_range)

  def __repr__(self):
    return f'DbPowerSum(min_db={self.min_db:g}, max_db={self.max_db:g})'

  def split(self, mixture, n_sources: int):
    """Equal sources whose power sum is ``mixture``: each 10 log10(K) dB below it."""
    return mixture - (10.0 * math.log10(n_sources)) / (self.max_db - self.min_db)

  def __call__(self, xs):
    span = self.max_db - self.min_db
    db = xs * span + self.min_db
    mixed_db = (10.0 / math.log(10.0)) * tf.reduce_logsumexp(db * (math.log(10.0) / 10.0),
                                                             axis=0)
    return (mixed_db - self.min_db) / span


def is_linear_mixing(mixing) -> bool:
  """True for the sum and the mean (the mixings a hard constraint can solve)."""
  return mixing is mix_sum or mixing is mix_mean


def split_mixture(mixing, mixture, n_sources: int):
  """The mixture split as ``mixing`` implies: equal sources ``s`` with g(s, .., s) = m.

  ``m / K`` for the sum, ``m`` for the mean, ``m - 10 log10(K) dB`` for the dB
  power sum; any other callable may define ``split(mixture, n_sources)``.

  Raises:
    ParameterError: for a mixing function without a known split.
  """
  mixture = tf.convert_to_tensor(mixture, tf.float32)
  if mixing is mix_sum:
    return mixture / float(n_sources)
  if mixing is mix_mean:
    return mixture
  split = getattr(mixing, 'split', None)
  if callable(split):
    return tf.convert_to_tensor(split(mixture, n_sources), tf.float32)
  raise ParameterError(f'a warm start needs the mixture split into equal sources, and '
                       f'{mixing!r} has no split(mixture, n_sources) method; give it one, '
                       'or start cold (start_sigma=None)')


def solve_last_source(mixing, mixture, others):
  """The last source that makes the mixture exact: ``m - sum(others)`` (sum), ``K m - sum`` (mean).

  Args:
    mixing: :func:`mix_sum` or :func:`mix_mean`.
    mixture: ``[batch, ...]``.
    others: the first K - 1 sources, ``[K - 1, batch, ...]``.
  """
  rest = tf.reduce_sum(others, axis=0)
  if mixing is mix_sum:
    return mixture - rest
  if mixing is mix_mean:
    return float(others.shape[0] + 1) * mixture - rest
  raise ParameterError(f'no closed-form last source for mixing {mixing!r} (sum or mean only)')


def project_onto_mixture(mixing, mixture, xs):
  """Spreads the residual ``m - g(xs)`` equally over the sources (sum or mean), so g = m."""
  residual = mixture - mixing(xs)
  if mixing is mix_sum:
    return xs + residual[None] / float(xs.shape[0])
  if mixing is mix_mean:
    return xs + residual[None]
  raise ParameterError(f'no projection onto the mixture for mixing {mixing!r} (sum or mean only)')


MIXINGS = {'sum': mix_sum, 'mean': mix_mean}
MIXING_NAMES = ('sum', 'mean', 'db_power_sum')


def get_mixing(name_or_fn, *, features=None):
  """A mixing function by name ('sum', 'mean', 'db_power_sum') or a callable.

  Args:
    name_or_fn: a name or a callable ``xs [K, ...] -> mixture [...]``.
    features: the data's ``FeatureConfig`` (or dict); needed by
      ``'db_power_sum'``, whose dB range it gives.

  Raises:
    ParameterError: for an unknown name, or ``'db_power_sum'`` without features.
  """
  if callable(name_or_fn):
    return name_or_fn
  if name_or_fn == 'db_power_sum':
    if features is None:
      raise ParameterError("mixing 'db_power_sum' needs the data's feature parameters "
                           '(their dB range): pass features=, or DbPowerSum.from_features(...)')
    return DbPowerSum.from_features(features)
  if name_or_fn not in MIXINGS:
    raise ParameterError(f'unknown mixing {name_or_fn!r}; choose one of {list(MIXING_NAMES)} '
                         'or pass a callable')
  return MIXINGS[name_or_fn]
