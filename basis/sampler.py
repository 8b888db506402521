"""Named BASIS sampler settings: 'fast' (the measured default) and 'paper'.

The commands take ``--sampler=fast|paper`` and let any single setting
override it. 'paper' is the BASIS paper's schedule (100 Langevin steps per
level, delta 3e-5, the Gaussian likelihood of std sigma_i). 'fast' was chosen
by the calls study of docs/basis.md ("Fewer network calls"): for linear
mixing (sum, mean) the hard mixture constraint with 20 steps per level,
delta 6e-5 and a final Tweedie step -- 201 calls per source, above the paper's
1,000-call quality on MNIST. The dB power sum is not linear, so there 'fast'
keeps the likelihood, starts warm at the third level (sigma 0.36 of the
priors' 1 -> 0.01 schedule) from the mixture split 3 dB down per source, runs
25 steps on each of the 8 levels left and ends with the Tweedie step (201
calls; on the piano + violin test tracks it beat the paper's 1,000 calls).
For flow priors 'fast' is not measured yet and stays the paper's schedule;
flows have their own default, 'latent' (:mod:`basis.latent`: annealed MAP in the
flows' latent spaces, restarts chosen by the flows' exact density), which is
not a Langevin schedule and so is not built here.
"""

import dataclasses
from typing import Optional, Sequence, Tuple, Union

from basis import registry
from basis.mixing import is_linear_mixing
from common.errors import ParameterError

SAMPLERS = ('fast', 'paper')
# The flows' sampler (basis.latent.LatentSeparator); run_basis_sep.py offers it.
LATENT = 'latent'
# Its default choice of restart: the family member nearest this noise level judges
# (0: the clean flow). Chosen on 100 MNIST pairs (seed 0) and confirmed on 100 others
# (seed 1): members 0.028-0.215 beat the clean flow by 1.5-2.1 dB there; docs/flows.md
# "Which restart to keep".
CHOICE_SIGMA = 0.05


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
  """The keyword arguments of :class:`basis.Separator` a sampler name stands for."""

  steps_per_sigma: Union[int, Sequence[int]]
  step_size: float
  constraint: str
  denoise: bool
  start_level: int = 0

  def separator_kwargs(self, sigmas) -> dict:
    """Keyword arguments of :class:`basis.Separator` for the schedule ``sigmas``."""
    out = dataclasses.asdict(self)
    level = out.pop('start_level')
    if not 0 <= level < len(sigmas):
      raise ParameterError(f'start level {level} is outside the schedule of {len(sigmas)} '
                           'levels (0 = no warm start)')
    out['start_sigma'] = float(sigmas[level]) if level else None
    return out


def parse_level_steps(values: Optional[Sequence[str]]) -> Optional[Tuple[int, ...]]:
  """``--level_steps`` (a comma list) as ints, None when not given.

  Raises:
    ParameterError: for an entry that is not an int >= 0.
  """
  if not values:
    return None
  if not all(str(v).strip().isdigit() for v in values):
    raise ParameterError(f'--level_steps must be a comma list of ints >= 0, got {list(values)}')
  return tuple(int(v) for v in values)


def sampler_settings(sampler: str, *, mixing, prior_kind: str = 'ncsn',
                     steps_per_sigma=None, step_size: Optional[float] = None,
                     constraint: Optional[str] = None, denoise: Optional[bool] = None,
                     start_level: Optional[int] = None) -> SamplerSettings:
  """The settings of ``sampler`` for this mixing and prior, with overrides applied.

  Args:
    sampler: 'fast' or 'paper'.
    mixing: the mixing function (decides whether a hard constraint applies).
    prior_kind: a registered prior kind (``basis.registry``): it gives the
      paper's delta and whether 'fast' applies.
    steps_per_sigma, step_size, constraint, denoise, start_level: None keeps
      the sampler's value; anything else overrides it (``start_level``: index
      into the schedule of the warm start's level, 0 = none).

  Raises:
    ParameterError: an unknown sampler or prior kind.
  """
  if sampler not in SAMPLERS:
    raise ParameterError(f'unknown sampler {sampler!r}; choose one of {list(SAMPLERS)}')
  kind = registry.get_kind(prior_kind)
  paper_delta = kind.paper_step_size
  if sampler == 'paper' or not kind.fast_sampler:
    base = SamplerSettings(steps_per_sigma=100, step_size=paper_delta,
                           constraint='likelihood', denoise=False)
  elif is_linear_mixing(mixing) and (constraint or 'hard') == 'hard':
    base = SamplerSettings(steps_per_sigma=20, step_size=2 * paper_delta, constraint='hard',
                           denoise=True)
  else:
    base = SamplerSettings(steps_per_sigma=25, step_size=paper_delta,
                           constraint='likelihood', denoise=True, start_level=2)
  overrides = {k: v for k, v in dict(steps_per_sigma=steps_per_sigma, step_size=step_size,
                                     constraint=constraint, denoise=denoise,
                                     start_level=start_level).items() if v is not None}
  return dataclasses.replace(base, **overrides)
