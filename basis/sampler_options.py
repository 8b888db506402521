"""The BASIS sampler options of the separation commands: a typed config and its flag group.

``--sampler=fast|paper`` names a schedule (:mod:`basis.sampler`); the other
flags of the group override single settings of it. ``run_basis_sep.py`` and
``separate_audio.py`` define the group with :func:`define_sampler_flags`; they
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

from basis.sampler import SAMPLERS, parse_level_steps, sampler_settings
from pipeline import cli_errors
from pipeline.errors import ParameterError

WARM_STARTS = ('start_sigma', 'start_level')


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
  """``--sampler`` and the flags that override it; None keeps the sampler's value.

  Attributes:
    sampler: 'fast' or 'paper'.
    steps_per_sigma: int > 0, Langevin steps per level.
    level_steps: steps of each level (0 skips a level), comma strings or ints;
      overrides ``steps_per_sigma``.
    step_size: float > 0, delta of BASIS (eta_i = delta (sigma_i / sigma_L)^2).
    constraint: 'likelihood' or 'hard'.
    denoise: end with the Tweedie step.
    start_sigma: warm start at this noise level; 0: cold start.
    start_level: warm start at this index of the schedule; 0: cold start.
    likelihood_scale: multiplies the 1 / sigma_i^2 weight of the mixture residual.
  """

  sampler: str = 'fast'
  steps_per_sigma: Optional[int] = None
  level_steps: Optional[Tuple[int, ...]] = None
  step_size: Optional[float] = None
  constraint: Optional[str] = None
  denoise: Optional[bool] = None
  start_sigma: Optional[float] = None
  start_level: Optional[int] = None
  likelihood_scale: float = 1.0

  def __post_init__(self):
    if self.sampler not in SAMPLERS:
      raise ParameterError(f'--sampler must be one of {list(SAMPLERS)}, got {self.sampler!r}')
    object.__setattr__(self, 'level_steps', parse_level_steps(self.level_steps))
    cli_errors.check_positive(self, 'steps_per_sigma', 'step_size')
    if self.constraint not in (None, 'likelihood', 'hard'):
      raise ParameterError("--constraint must be 'likelihood' or 'hard', got "
                           f'{self.constraint!r}')
    for name in WARM_STARTS:
      if getattr(self, name) is not None and getattr(self, name) < 0:
        raise ParameterError(f'--{name} must be >= 0, got {getattr(self, name)!r}')

  @property
  def steps(self) -> Union[None, int, Tuple[int, ...]]:
    """``level_steps`` when given, else ``steps_per_sigma`` (None: the sampler's)."""
    return self.level_steps if self.level_steps is not None else self.steps_per_sigma

  def separator_kwargs(self, *, mixing, sigmas, prior_kind: str) -> dict:
    """Keyword arguments of :class:`basis.Separator` (the schedule and its overrides).

    Args:
      mixing: the mixing function (decides whether a hard constraint applies).
      sigmas: the noise levels, largest first.
      prior_kind: 'ncsn' or 'flow' (the paper's delta differs).

    Raises:
      ParameterError: a start level outside the schedule, an unknown prior kind.
    """
    settings = sampler_settings(
        self.sampler, mixing=mixing, prior_kind=prior_kind, steps_per_sigma=self.steps,
        step_size=self.step_size, constraint=self.constraint, denoise=self.denoise,
        start_level=self.start_level)
    kwargs = settings.separator_kwargs(sigmas)
    if self.start_sigma is not None:
      kwargs['start_sigma'] = None if self.start_sigma == 0 else self.start_sigma
    return kwargs


def define_sampler_flags(*, warm_start: str, constraint: bool, step_size_default=None,
                         help, flag_values=None):  # pylint: disable=redefined-builtin
  """Defines ``--sampler``, ``--steps_per_sigma``, ``--level_steps``, ``--step_size``,
  ``--denoise``, ``--likelihood_scale``, the warm-start flag and optionally ``--constraint``.

  Args:
    warm_start: 'start_sigma' or 'start_level', the command's warm-start flag.
    constraint: define ``--constraint``.
    step_size_default: ``--step_size``'s default (None: the sampler's).
    help: help texts by flag name for ``sampler``, ``steps_per_sigma``,
      ``step_size`` and the warm-start flag (they name the command's schedule);
      the others have shared texts that an entry here replaces.
    flag_values: the ``FlagValues`` to define them in (default: absl's global FLAGS).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  if warm_start not in WARM_STARTS:
    raise ParameterError(f'warm_start must be one of {list(WARM_STARTS)}, got {warm_start!r}')
  fv = flag_values if flag_values is not None else flags.FLAGS
  texts = {
      'level_steps': "Steps of each of the priors' levels, comma separated (0 skips a "
                     'level); overrides --steps_per_sigma.',
      'constraint': "likelihood: BASIS's Gaussian mixture likelihood of std sigma_i; hard: "
                    'the last source is the mixture minus the others (sum and mean mixing '
                    'only). Default from --sampler.',
      'denoise': 'End with the Tweedie step x + sigma_L^2 s(x, sigma_L) (one more call). '
                 'Default from --sampler (fast: yes).',
      'likelihood_scale': 'Multiplies the 1 / sigma_i^2 weight of the mixture residual (1: a '
                          'Gaussian likelihood with std sigma_i; see docs/basis.md for the '
                          "original code's effective weights).",
  }
  texts.update(help)
  flags.DEFINE_enum('sampler', SamplerOptions.sampler, list(SAMPLERS), texts['sampler'],
                    flag_values=fv)
  flags.DEFINE_integer('steps_per_sigma', None, texts['steps_per_sigma'], flag_values=fv)
  flags.DEFINE_list('level_steps', None, texts['level_steps'], flag_values=fv)
  flags.DEFINE_float('step_size', step_size_default, texts['step_size'], flag_values=fv)
  if constraint:
    flags.DEFINE_enum('constraint', None, ['likelihood', 'hard'], texts['constraint'],
                      flag_values=fv)
  flags.DEFINE_boolean('denoise', None, texts['denoise'], flag_values=fv)
  if warm_start == 'start_sigma':
    flags.DEFINE_float('start_sigma', None, texts['start_sigma'], flag_values=fv)
  else:
    flags.DEFINE_integer('start_level', None, texts['start_level'], flag_values=fv)
  flags.DEFINE_float('likelihood_scale', SamplerOptions.likelihood_scale,
                     texts['likelihood_scale'], flag_values=fv)
