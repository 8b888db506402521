"""The shared training loop (strategy, checkpoints, EMA, TensorBoard, eval).

``from training import LoopConfig, Task, train`` works as before, but the
loop is imported on first use (PEP 562): the light modules of this package
(``training.prior_io``, ``training.ema``, ``training.optim``) serve loading a
prior, and separating with one must not pull in the trainer.
"""

import importlib

_LAZY = {
    'LoopConfig': 'training.loop',
    'Task': 'training.loop',
    'train': 'training.loop',
    'get_strategy': 'training.strategy',
    'EMA': 'training.ema',
}

__all__ = sorted(_LAZY)


def __getattr__(name):
  if name in _LAZY:
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return sorted(set(globals()) | set(_LAZY))
