"""What this machine computes fast: oneDNN kernels, native bfloat16, the precision to use.

One helper decides the network precision for every command
(:func:`resolve_precision`); library code takes the resolved dtype string.

Why it matters (measured, docs/benchmarks.md): on CPUs with native bfloat16
(``avx512_bf16`` or ``amx_bf16``, e.g. Intel Xeon with AMX, AMD Zen 4 and 5) the
oneDNN bfloat16 convolutions run 1.5-5x faster than float32 ones; on CPUs
without it (AMD Zen 3: AVX2 only) bfloat16 is emulated and slower than
float32 (TensorFlow's plain kernels 10x slower or worse, and oneDNN, when
forced on, has no bfloat16 kernels there at all).

TensorFlow 2.16 turns its oneDNN kernels on by default only on CPUs with
AVX-512-class features; ``TF_ENABLE_ONEDNN_OPTS=0`` or ``=1`` overrides that
when set before TensorFlow is imported. Without oneDNN, TensorFlow's plain CPU
kernels run, and they have no gradient for dilated convolutions
(:class:`ncsn.layers.Conv2D` uses a space-to-batch formulation there).
"""

import functools
import os
from typing import Callable, FrozenSet, Optional, Tuple

from common.errors import ParameterError

PRECISIONS = ('auto', 'float32', 'bfloat16')
NATIVE_BF16_FLAGS = ('avx512_bf16', 'amx_bf16')


@functools.lru_cache(maxsize=None)
def cpu_flags(path: str = '/proc/cpuinfo') -> FrozenSet[str]:
  """The feature flags of the first CPU (empty where ``/proc/cpuinfo`` is absent)."""
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      for line in f:
        if line.startswith(('flags', 'Features')):
          return frozenset(line.split(':', 1)[1].split())
  except OSError:
    pass
  return frozenset()


@functools.lru_cache(maxsize=None)
def cpu_model(path: str = '/proc/cpuinfo') -> str:
  """The CPU's model name (``platform.processor()`` where ``/proc/cpuinfo`` is absent)."""
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  import platform  # pylint: disable=g-import-not-at-top
  return platform.processor() or platform.machine() or 'unknown CPU'


def cpu_description() -> str:
  """One line naming the CPU and what TensorFlow uses on it, for benchmark tables.

  For example ``'AMD EPYC, 2 cores, AVX-512, native bf16 (avx512_bf16), oneDNN on'``.
  """
  flags = cpu_flags()
  parts = [cpu_model(), f'{os.cpu_count()} cores']
  if 'avx512f' in flags:
    parts.append('AVX-512')
  elif 'avx2' in flags:
    parts.append('AVX2, no AVX-512')
  native = [f for f in NATIVE_BF16_FLAGS if f in flags]
  parts.append(f"native bf16 ({', '.join(native)})" if native else 'no native bf16')
  parts.append('oneDNN on' if onednn_enabled() else 'oneDNN off')
  return ', '.join(parts)


def has_native_bf16(flags: Optional[FrozenSet[str]] = None) -> bool:
  """True when the CPU has bfloat16 arithmetic (``avx512_bf16`` or ``amx_bf16``)."""
  flags = cpu_flags() if flags is None else flags
  return any(f in flags for f in NATIVE_BF16_FLAGS)


@functools.lru_cache(maxsize=None)
def onednn_enabled() -> bool:
  """True when TensorFlow runs its oneDNN CPU kernels in this process."""
  try:
    # pylint: disable=g-import-not-at-top
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())
  except (ImportError, AttributeError):
    # A TensorFlow without this private hook: go by the documented switch.
    return os.environ.get('TF_ENABLE_ONEDNN_OPTS', '0') not in ('0', 'false', 'False')


def has_gpu() -> bool:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return bool(tf.config.list_physical_devices('GPU'))


def choose_precision(precision: str = 'auto', *, gpu: Optional[bool] = None,
                     flags: Optional[FrozenSet[str]] = None,
                     onednn: Optional[bool] = None) -> Tuple[str, str]:
  """Resolves a precision name to a compute dtype, and says why.

  Args:
    precision: ``'auto'``, ``'float32'`` or ``'bfloat16'``. ``'auto'`` picks
      bfloat16 on a GPU or on a CPU with native bfloat16 (``avx512_bf16`` or
      ``amx_bf16`` in its flags) where TensorFlow runs its oneDNN kernels,
      float32 everywhere else: TensorFlow's plain CPU kernels emulate
      bfloat16 whatever the CPU (a training step 13x slower than float32 on
      an AMD Zen 5 with oneDNN off, docs/benchmarks.md).
    gpu: whether a GPU is visible (default: ask TensorFlow).
    flags: CPU feature flags (default: this machine's).
    onednn: whether oneDNN kernels run (default: :func:`onednn_enabled`).

  Returns:
    ``(dtype, reason)``: dtype ``'float32'`` or ``'bfloat16'``, reason one
    sentence fit for a log line.

  Raises:
    ParameterError: for an unknown precision name.
  """
  if precision not in PRECISIONS:
    raise ParameterError(f'precision must be one of {PRECISIONS}, got {precision!r}')
  flags = cpu_flags() if flags is None else flags
  native = [f for f in NATIVE_BF16_FLAGS if f in flags]
  if precision != 'auto':
    reason = f'--precision={precision} asked for'
    if precision == 'bfloat16' and not (has_gpu() if gpu is None else gpu):
      if not native:
        reason += (' (this CPU has no native bfloat16: expect it slower than float32, '
                   'and failures where oneDNN is forced on)')
      elif not (onednn_enabled() if onednn is None else onednn):
        reason += (" (oneDNN is off: TensorFlow's plain kernels emulate bfloat16, "
                   'expect it much slower than float32)')
    return precision, reason
  if gpu is None:
    gpu = has_gpu()
  if gpu:
    return 'bfloat16', 'auto: a GPU is visible'
  if native and not (onednn_enabled() if onednn is None else onednn):
    return 'float32', (f"auto: the CPU has native bfloat16 ({', '.join(native)}) but oneDNN "
                       "is off, and TensorFlow's plain kernels emulate bfloat16")
  if native:
    return 'bfloat16', f"auto: the CPU has native bfloat16 ({', '.join(native)})"
  return 'float32', 'auto: the CPU has no native bfloat16 (no avx512_bf16 / amx_bf16)'


_SAID = set()


def resolve_precision(precision: str = 'auto', *, bfloat16: Optional[bool] = None,
                      log: Callable[[str], None] = print) -> str:
  """The compute dtype a command should use; says once per process which and why.

  Args:
    precision: the ``--precision`` flag: ``'auto'``, ``'float32'`` or ``'bfloat16'``.
    bfloat16: the deprecated ``--bfloat16`` boolean, or None when not given;
      when given it overrides ``precision`` (with a deprecation note).
    log: where the one line goes.

  Returns:
    ``'float32'`` or ``'bfloat16'``.

  Raises:
    ParameterError: for an unknown precision name.
  """
  note = ''
  if bfloat16 is not None:
    precision = 'bfloat16' if bfloat16 else 'float32'
    note = f' (from the deprecated --{"" if bfloat16 else "no"}bfloat16; use --precision)'
  dtype, reason = choose_precision(precision)
  line = f'precision: {dtype} ({reason}){note}'
  if line not in _SAID:
    _SAID.add(line)
    log(line)
  return dtype
