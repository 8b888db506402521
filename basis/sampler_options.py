"""The BASIS sampler options of the separation commands: a typed config and its flag group.

``--sampler=fast|paper`` names a schedule (:mod:`basis.sampler`); the other
flags of the group override single settings of it. ``run_basis_sep.py`` also
offers ``--sampler=latent`` for flow priors (:mod:`basis.latent`), and its
default (None) is the prior kind's own (``basis.registry``: 'latent' for flows,
'fast' otherwise). ``run_basis_sep.py`` and
``separate_audio.py`` define the group with ``commandline.flag_groups.define_sampler_flags``; they
differ where their data differ, and only there:

- the warm start: ``run_basis_sep.py`` takes ``--start_sigma`` (a noise level;
  images and mel patches of any schedule), ``separate_audio.py`` takes
  ``--start_level`` (an index into the priors' schedule);
- ``--constraint`` exists only in ``run_basis_sep.py`` (a hard constraint needs
  sum or mean mixing; separate_audio mixes in the dB power sum);
- ``--step_size`` defaults to the sampler's value in ``run_basis_sep.py`` (it
  depends on the prior kind and constraint) and to 2e-5 in ``separate_audio.py``;
- the help texts name each command's 'fast' schedule.
"""

import dataclasses
from typing import Optional, Tuple, Union

from basis.sampler import LATENT, SAMPLERS, parse_level_steps, sampler_settings
from common.checks import check_positive
from common.errors import ParameterError

WARM_STARTS = ('start_sigma', 'start_level')


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
  """``--sampler`` and the flags that override it; None keeps the sampler's value.

  Attributes:
    sampler: 'fast', 'paper', 'latent' (flow priors) or None (the prior kind's
      default: :meth:`resolved`).
    steps_per_sigma: int > 0, Langevin steps per level.
    level_steps: steps of each level (0 skips a level), comma strings or ints;
      overrides ``steps_per_sigma``.
    step_size: float > 0, delta of BASIS (eta_i = delta (sigma_i / sigma_L)^2).
    constraint: 'likelihood' or 'hard'.
    denoise: end with the Tweedie step.
    start_sigma: warm start at this noise level; 0: cold start.
    start_level: warm start at this index of the schedule; 0: cold start.
    likelihood_scale: multiplies the 1 / sigma_i^2 weight of the mixture residual.
    restarts: 'latent' only: independent starts per mixture (default 8).
    choice_sigma: 'latent' only: the family member at this noise level chooses
      the restart; 0: the clean flow (``basis.latent``).
  """

  sampler: Optional[str] = None
  steps_per_sigma: Optional[int] = None
  level_steps: Optional[Tuple[int, ...]] = None
  step_size: Optional[float] = None
  constraint: Optional[str] = None
  denoise: Optional[bool] = None
  start_sigma: Optional[float] = None
  start_level: Optional[int] = None
  likelihood_scale: float = 1.0
  restarts: Optional[int] = None
  choice_sigma: Optional[float] = None

  def __post_init__(self):
    if self.sampler is not None and self.sampler not in SAMPLERS + (LATENT,):
      raise ParameterError(f'--sampler must be one of {list(SAMPLERS + (LATENT,))}, got '
                           f'{self.sampler!r}')
    object.__setattr__(self, 'level_steps', parse_level_steps(self.level_steps))
    check_positive(self, 'steps_per_sigma', 'step_size', 'restarts')
    if self.choice_sigma is not None and not self.choice_sigma >= 0:
      raise ParameterError(f'--choice_sigma must be >= 0, got {self.choice_sigma!r}')
    if self.constraint not in (None, 'likelihood', 'hard'):
      raise ParameterError("--constraint must be 'likelihood' or 'hard', got "
                           f'{self.constraint!r}')
    for name in WARM_STARTS:
      if getattr(self, name) is not None and getattr(self, name) < 0:
        raise ParameterError(f'--{name} must be >= 0, got {getattr(self, name)!r}')

  def resolved(self, prior_kind: str) -> str:
    """The sampler's name: ``sampler``, or the prior kind's default when None."""
    from basis import registry  # pylint: disable=g-import-not-at-top
    return self.sampler or registry.get_kind(prior_kind).default_sampler

  def latent_kwargs(self) -> dict:
    """Keyword arguments of :class:`basis.latent.LatentSeparator` (given options only).

    Raises:
      ParameterError: options of the Langevin schedules, which the latent sampler
        does not have.
    """
    foreign = [f'--{name}' for name in ('level_steps', 'constraint', 'denoise', 'start_sigma',
                                        'start_level') if getattr(self, name) is not None]
    if self.likelihood_scale != 1.0:
      foreign.append('--likelihood_scale')
    if foreign:
      verb = 'belongs' if len(foreign) == 1 else 'belong'
      raise ParameterError(f'{", ".join(foreign)} {verb} to the Langevin samplers (fast, '
                           'paper); --sampler=latent takes --steps_per_sigma, --step_size '
                           '(Adam learning rate), --restarts and --choice_sigma')
    return {k: v for k, v in dict(steps_per_sigma=self.steps_per_sigma,
                                  step_size=self.step_size, restarts=self.restarts,
                                  choice_sigma=self.choice_sigma).items()
            if v is not None}

  @property
  def steps(self) -> Union[None, int, Tuple[int, ...]]:
    """``level_steps`` when given, else ``steps_per_sigma`` (None: the sampler's)."""
    return self.level_steps if self.level_steps is not None else self.steps_per_sigma

  def separator_kwargs(self, *, mixing, sigmas, prior_kind: str) -> dict:
    """Keyword arguments of :class:`basis.Separator` (the schedule and its overrides).

    Args:
      mixing: the mixing function (decides whether a hard constraint applies).
      sigmas: the noise levels, largest first.
      prior_kind: a registered prior kind (basis.registry; the paper's delta differs).

    Raises:
      ParameterError: a start level outside the schedule, an unknown prior kind.
    """
    for name in ('restarts', 'choice_sigma'):
      if getattr(self, name) is not None:
        raise ParameterError(f'--{name} belongs to --sampler=latent (flow priors)')
    sampler = self.resolved(prior_kind)
    if sampler == LATENT:
      raise ParameterError('--sampler=latent is not a Langevin schedule: build '
                           'basis.latent.LatentSeparator (flow priors; run_basis_sep.py)')
    settings = sampler_settings(
        sampler, mixing=mixing, prior_kind=prior_kind, steps_per_sigma=self.steps,
        step_size=self.step_size, constraint=self.constraint, denoise=self.denoise,
        start_level=self.start_level)
    kwargs = settings.separator_kwargs(sigmas)
    if self.start_sigma is not None:
      kwargs['start_sigma'] = None if self.start_sigma == 0 else self.start_sigma
    return kwargs
