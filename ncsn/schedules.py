"""Noise schedules: geometric sequences sigma_1 > ... > sigma_L."""

import dataclasses

import numpy as np

from common.errors import ParameterError


@dataclasses.dataclass(frozen=True)
class NoiseSchedule:
  """A geometric noise schedule.

  Attributes:
    sigma_max: float > sigma_min, the largest level sigma_1 (data units).
    sigma_min: float > 0, the smallest level sigma_L.
    num_levels: int >= 2, L.
  """

  sigma_max: float = 1.0
  sigma_min: float = 0.01
  num_levels: int = 10

  def __post_init__(self):
    if not 0 < self.sigma_min < self.sigma_max:
      raise ParameterError(
          f'need 0 < sigma_min < sigma_max, got sigma_min={self.sigma_min!r}, '
          f'sigma_max={self.sigma_max!r}')
    if int(self.num_levels) != self.num_levels or self.num_levels < 2:
      raise ParameterError(f'num_levels must be an int >= 2, got {self.num_levels!r}')

  @property
  def sigmas(self) -> np.ndarray:
    """float64 ``[num_levels]``, decreasing geometrically from sigma_max to sigma_min."""
    return np.geomspace(self.sigma_max, self.sigma_min, int(self.num_levels))

  @property
  def ratio(self) -> float:
    """Constant ratio ``sigma_{i} / sigma_{i+1}`` (> 1)."""
    return float((self.sigma_max / self.sigma_min) ** (1.0 / (self.num_levels - 1)))

  def to_dict(self):
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d):
    return cls(**d)


def ncsn_v1() -> NoiseSchedule:
  """Original NCSN setting for data in [0, 1]: 10 levels from 1 to 0.01."""
  return NoiseSchedule(sigma_max=1.0, sigma_min=0.01, num_levels=10)


def ncsn_v2(data, *, sigma_min: float = 0.01, dim=None, max_pairs: int = 2000,
            seed: int = 0) -> NoiseSchedule:
  """NCSNv2 (Song & Ermon 2020) schedule chosen from the data.

  Technique 1: sigma_1 is the largest pairwise Euclidean distance between
  training examples (estimated on at most ``max_pairs`` examples). Technique 2:
  the ratio gamma = sigma_{i-1} / sigma_i satisfies
  ``Phi(sqrt(2D)(gamma - 1) + 3 gamma) - Phi(sqrt(2D)(gamma - 1) - 3 gamma) ~ 0.5``
  with D the data dimension, which gives the number of levels.

  Args:
    data: float array ``[n, ...]`` of training examples.
    sigma_min: float > 0, the smallest level.
    dim: int, data dimension D; default the size of one example.
    max_pairs: examples used for the distance estimate.
    seed: for the subsample.

  Returns:
    A :class:`NoiseSchedule`.
  """
  from scipy import stats  # pylint: disable=g-import-not-at-top
  x = np.asarray(data, np.float64).reshape(len(data), -1)
  if len(x) < 2:
    raise ParameterError(f'need at least 2 examples, got {len(x)}')
  rng = np.random.default_rng(seed)
  if len(x) > max_pairs:
    x = x[rng.choice(len(x), max_pairs, replace=False)]
  sq = (x * x).sum(1)
  d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
  sigma_max = float(np.sqrt(d2.max()))
  dim = int(dim or x.shape[1])

  def coverage(gamma):
    a = np.sqrt(2 * dim) * (gamma - 1)
    return stats.norm.cdf(a + 3 * gamma) - stats.norm.cdf(a - 3 * gamma)

  lo, hi = 1.0 + 1e-9, 2.0
  for _ in range(100):  # bisection: coverage decreases with gamma
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if coverage(mid) > 0.5 else (lo, mid)
  gamma = lo
  levels = int(np.ceil(np.log(sigma_max / sigma_min) / np.log(gamma))) + 1
  return NoiseSchedule(sigma_max=sigma_max, sigma_min=sigma_min,
                       num_levels=max(levels, 2))
