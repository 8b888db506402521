"""Phase retrieval and constrained spectrogram inversion, batched, in TensorFlow.

Every algorithm maps magnitudes (and, for separation, the mixture STFT) to
complex STFTs and waveforms; all run eagerly or inside ``tf.function`` (the
iterations are a ``tf.while_loop``, so ``n_iter`` may be a tensor).

Notation (ALGORITHMS.md, Phase retrieval; ``inversion/stft.py``): X mixture
STFT, V_j target magnitude of source j, Y_j estimate, J sources;
``P_C(Y) = STFT(iSTFT(Y))``, ``P_mag(Y)_j = V_j Y_j / |Y_j|``,
``P_mix^w(Y)_j = Y_j + w_j (X - sum_k Y_k)`` with ``w = 1/J`` (``'equal'``)
or ``w = V / sum V`` (``'magnitude'``). The separation algorithms start from
the amplitude mask ``Y_j = V_j e^{i angle X}``.

========================  ====================================================
name                      update (one iteration)
========================  ====================================================
``gla``                   ``Y <- P_C(P_mag(Y))``
``fgla``                  ``T_n = P_C(P_mag(C_{n-1})); C_n = T_n + a (T_n - T_{n-1})``
``degli``                 ``Y = P_mag(X); Z = P_C(Y); X <- Z - F(X, Y, Z, V)`` (trained F)
``misi``                  ``Y <- P_mix^{1/J}(P_mag(P_C(Y)))``
``mix_incons``            ``Y <- (P_mix^w(Y) + lam w P_C(Y)) / (1 + lam w)``
``mix_incons_hard_mag``   ``Y <- P_mag(P_mix^w(Y) + lam w P_C(Y))``
``mag_incons_hard_mix``   ``Y <- P_mix^{1/J}((P_mag(Y) + lam P_C(Y)) / (1 + lam))``
``incons_hard_mix``       ``Y <- P_mix^w(P_C(Y))`` (one iteration)
``amplitude_mask``        ``Y = V e^{i angle X}`` (no iteration)
``wiener``                ``Y_j = V_j^2 / sum_k V_k^2 X`` (no iteration)
========================  ====================================================

Shapes: magnitudes for ``gla`` / ``fgla`` are float ``[..., n_frames, n_bins]``
(any leading axes, sources included); for the separation algorithms float
``[n_sources, ..., n_frames, n_bins]`` with the mixture STFT complex
``[..., n_frames, n_bins]``. Magnitudes are linear amplitudes ``|STFT|``, not
power. Results are a :class:`Reconstruction` of tensors.

Each call builds new tensors; nothing is shared between algorithms (the
reference code kept every algorithm's result in one shared array).
"""

import dataclasses
from typing import Callable, Dict, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from inversion import checks
from inversion import masks as masks_lib
from inversion import stft as stft_lib
from common.checks import check_seed
from common.errors import ParameterError

WEIGHTS = ('equal', 'magnitude')


class Reconstruction(NamedTuple):
  """What every phase-retrieval algorithm returns.

  Attributes:
    stft: complex64 ``[..., n_frames, n_bins]``, the final STFT estimate (for
      the mixing-constrained algorithms the estimates sum to the mixture).
    waveform: float32 ``[..., length]``, ``iSTFT(stft)``.
  """
  stft: tf.Tensor
  waveform: tf.Tensor


# ------------------------------------------------------------------ checking
def _check_n_iter(n_iter):
  if isinstance(n_iter, (tf.Tensor, tf.Variable)):
    return tf.cast(n_iter, tf.int32)
  if isinstance(n_iter, bool) or int(n_iter) != n_iter or n_iter < 0:
    raise ParameterError(f'n_iter must be an int >= 0, got {n_iter!r}')
  return int(n_iter)


def _check_scalar(value, name, *, low=0.0, low_inclusive=True, high=None):
  if isinstance(value, (tf.Tensor, tf.Variable)):
    return tf.cast(value, tf.float32)
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
        and np.isfinite(value)
        and (value >= low if low_inclusive else value > low)
        and (high is None or value < high))
  if not ok:
    rng = f'{"[" if low_inclusive else "("}{low}, {high if high is not None else "inf"})'
    raise ParameterError(f'{name} must be a number in {rng}, got {value!r}')
  return float(value)


def _mags(mags, transform, *, sources_axis: bool, length):
  v = checks.real_tensor(mags, name='mags')
  v = tf.cast(v, tf.float32)
  layout = '[n_sources, ..., n_frames, n_bins]' if sources_axis else '[..., n_frames, n_bins]'
  checks.check_min_rank(v, 3 if sources_axis else 2, name='mags', layout=layout)
  stft_lib.check_spectrogram(v, transform, name='mags', length=length)
  checks.check_non_negative(v, name='mags')
  return v


def _mixture(mixture_stft, v, transform):
  if mixture_stft is None:
    raise ParameterError('this algorithm needs the mixture STFT, got None')
  x = tf.cast(checks.complex_tensor(mixture_stft, name='mixture_stft'), tf.complex64)
  stft_lib.check_same_stft(v, x, transform, sources_axis=True)
  return x


def _length(transform, v, length):
  if length is None:
    return stft_lib.default_length(transform, tf.shape(v)[-2])
  if isinstance(length, bool) or int(length) != length or length <= 0:
    raise ParameterError(f'length must be a positive int (samples), got {length!r}')
  return int(length)


def _weights(v: tf.Tensor, weights: str) -> tf.Tensor:
  if weights == 'equal':
    return tf.ones_like(v) / tf.cast(tf.shape(v)[0], v.dtype)
  if weights == 'magnitude':
    return masks_lib._ratio_mask(v, 1.0)  # pylint: disable=protected-access
  raise ParameterError(f'weights must be one of {WEIGHTS}, got {weights!r}')


# ----------------------------------------------------------------- building
def _cplx(r: tf.Tensor) -> tf.Tensor:
  return tf.complex(r, tf.zeros_like(r))


def _unit_phase(x: tf.Tensor) -> tf.Tensor:
  """``e^{i angle x}`` (1 where ``x = 0``)."""
  mag = tf.abs(x)
  ok = mag > np.finfo(np.float32).tiny
  return tf.where(ok, x / _cplx(tf.where(ok, mag, tf.ones_like(mag))),
                  tf.ones_like(x))


def amplitude_mask_init(v: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
  """``V_j e^{i angle X}``: ``[n_sources, ...]`` from ``V`` and ``X [...]``."""
  return _cplx(v) * _unit_phase(x)[tf.newaxis]


def _initial(v, init, seed):
  if isinstance(init, str):
    if init == 'random':
      phase = tf.random.stateless_uniform(tf.shape(v), seed=[check_seed(seed), 0],
                                          minval=0.0, maxval=2.0 * np.pi)
      return _cplx(v) * tf.exp(tf.complex(tf.zeros_like(phase), phase))
    if init == 'zeros':
      return _cplx(v)
    raise ParameterError(
        f"init must be 'random', 'zeros' or a complex STFT, got {init!r}")
  phase = _unit_phase(tf.cast(checks.complex_tensor(init, name='init'), tf.complex64))
  return _cplx(v) * phase  # broadcasts an init without the source axis


def _loop(body, state, n_iter):
  """Runs ``state = body(*state)`` ``n_iter`` times in a ``tf.while_loop``."""
  def step(i, *s):
    # The STFT loses the static leading shape; restore it for the loop.
    return (i + 1,) + tuple(tf.ensure_shape(new, old.shape)
                            for new, old in zip(body(*s), s))
  out = tf.while_loop(lambda i, *s: i < n_iter, step, (tf.constant(0),) + tuple(state))
  return out[1:]


def _finish(y, transform, length) -> Reconstruction:
  return Reconstruction(stft=y, waveform=transform.istft(y, length=length))


# --------------------------------------------------------------- algorithms
def griffin_lim(mags, *, n_iter: int = 32, transform=None, init='random',
                seed: int = 0, length: Optional[int] = None) -> Reconstruction:
  """Griffin-Lim: ``Y <- P_C(P_mag(Y))``.

  Args:
    mags: float ``[..., n_frames, n_bins]``, non-negative magnitudes.
    n_iter: int >= 0 (or an int tensor), iterations (one STFT + one iSTFT each).
    transform: the STFT (``MelTransform`` / ``FeatureConfig``; default the
      reference features).
    init: ``'random'`` (uniform phase, seeded), ``'zeros'`` or a complex STFT
      broadcastable to ``mags`` whose phase starts the iterations.
    seed: int, seed of the random initial phase.
    length: int, samples of the output; default ``(n_frames - 1) * hop_length``.

  Returns:
    :class:`Reconstruction`: ``stft = P_mag(Y)`` (the target magnitudes with
    the retrieved phase) and its iSTFT.

  Raises:
    ParameterError: for negative magnitudes, a bin count that does not fit the
      STFT, or a bad ``n_iter`` / ``init`` / ``length``.
  """
  t = stft_lib.as_transform(transform)
  v = _mags(mags, t, sources_axis=False, length=length)
  n_iter, length = _check_n_iter(n_iter), _length(t, v, length)
  pc = lambda y: t.stft(t.istft(y, length=length))
  y0 = _initial(v, init, seed)
  (y,) = _loop(lambda y: (pc(stft_lib._p_mag(y, v)),), (y0,), n_iter)  # pylint: disable=protected-access
  return _finish(stft_lib._p_mag(y, v), t, length)  # pylint: disable=protected-access


def fast_griffin_lim(mags, *, n_iter: int = 32, momentum: float = 0.99,
                     transform=None, init='random', seed: int = 0,
                     length: Optional[int] = None) -> Reconstruction:
  """Fast Griffin-Lim (Perraudin et al. 2013), GLA with momentum.

  ``T_n = P_C(P_mag(C_{n-1})); C_n = T_n + momentum (T_n - T_{n-1})`` with
  ``C_0 = T_0`` the initial STFT.

  Args:
    mags: float ``[..., n_frames, n_bins]``, non-negative magnitudes.
    n_iter: int >= 0, iterations.
    momentum: float in [0, 1); 0 is plain GLA.
    transform, init, seed, length: as :func:`griffin_lim`.

  Returns:
    :class:`Reconstruction` with ``stft = P_mag(C_n)``.

  Raises:
    ParameterError: as :func:`griffin_lim`, or for a momentum outside [0, 1).
  """
  t = stft_lib.as_transform(transform)
  v = _mags(mags, t, sources_axis=False, length=length)
  n_iter, length = _check_n_iter(n_iter), _length(t, v, length)
  alpha = _cplx(tf.constant(_check_scalar(momentum, 'momentum', high=1.0), tf.float32))
  pc = lambda y: t.stft(t.istft(y, length=length))
  p_mag = lambda y: stft_lib._p_mag(y, v)  # pylint: disable=protected-access

  def body(c, t_prev):
    t_n = pc(p_mag(c))
    return t_n + alpha * (t_n - t_prev), t_n

  y0 = _initial(v, init, seed)
  c, _ = _loop(body, (y0, y0), n_iter)
  return _finish(p_mag(c), t, length)


def deep_griffin_lim(mags, *, n_iter: int = 32, momentum: float = 0.9, transform=None,
                     init='random', seed: int = 0, length: Optional[int] = None,
                     degli: Optional[str] = None) -> Reconstruction:
  """Deep Griffin-Lim (Masuyama et al. 2020): a trained block, repeated.

  Each iteration is one block of :class:`inversion.nets.DeGLINet`:
  ``Y = P_mag(X); Z = P_C(Y); T_n = Z - F(X, Y, Z, V)`` (one STFT, one iSTFT
  and one small network call), then, as in fast Griffin-Lim,
  ``X <- T_n + momentum (T_n - T_{n-1})`` (``momentum = 0`` is the paper's
  DeGLI; 0.9 was the best of 0, 0.5 and 0.9 on the validation clips,
  docs/inversion.md).

  Args:
    mags: float ``[..., n_frames, n_bins]``, non-negative magnitudes.
    n_iter: int >= 0, blocks.
    momentum: float in [0, 1).
    transform, init, seed, length: as :func:`griffin_lim`.
    degli: folder of a trained block; default the shipped one
      (``assets/inversion/degli``). Its STFT must be ``transform``'s.

  Returns:
    :class:`Reconstruction` with ``stft = P_mag(X_n)``.

  Raises:
    ParameterError: as :func:`griffin_lim`, or for a block trained for
      another STFT (or a missing / damaged folder).
  """
  from inversion import nets  # pylint: disable=g-import-not-at-top
  t = stft_lib.as_transform(transform)
  v = _mags(mags, t, sources_axis=False, length=length)
  n_iter, length = _check_n_iter(n_iter), _length(t, v, length)
  alpha = _cplx(tf.constant(_check_scalar(momentum, 'momentum', high=1.0), tf.float32))
  model, _ = nets.load_net(degli, 'degli', transform=t)
  shape = tf.shape(v)
  flat = lambda a: tf.reshape(a, tf.concat([[-1], shape[-2:]], axis=0))
  v_flat = flat(v)
  p_mag = lambda y: stft_lib._p_mag(y, v_flat)  # pylint: disable=protected-access

  def body(x, t_prev):
    y = p_mag(x)
    z = t.stft(t.istft(y, length=length))
    t_n = z - model(x, y, z, v_flat)
    return t_n + alpha * (t_n - t_prev), t_n

  x0 = flat(_initial(v, init, seed))
  x, _ = _loop(body, (x0, x0), n_iter)
  return _finish(tf.reshape(p_mag(x), shape), t, length)


def _separation_setup(mags, mixture_stft, transform, length):
  t = stft_lib.as_transform(transform)
  v = _mags(mags, t, sources_axis=True, length=length)
  x = _mixture(mixture_stft, v, t)
  length = _length(t, v, length)
  pc = lambda y: t.stft(t.istft(y, length=length))
  p_mag = lambda y: stft_lib._p_mag(y, v)  # pylint: disable=protected-access
  return t, v, x, length, pc, p_mag


def misi(mags, mixture_stft, *, n_iter: int = 20, transform=None,
         length: Optional[int] = None) -> Reconstruction:
  """MISI (multiple input spectrogram inversion): ``Y <- P_mix^{1/J}(P_mag(P_C(Y)))``.

  Args:
    mags: float ``[n_sources, ..., n_frames, n_bins]``, non-negative source
      magnitudes.
    mixture_stft: complex ``[..., n_frames, n_bins]`` from the same STFT.
    n_iter: int >= 0, iterations (J STFTs + J iSTFTs each).
    transform: the STFT; default the reference features.
    length: int, samples of the output waveforms.

  Returns:
    :class:`Reconstruction`: ``stft [n_sources, ..., n_frames, n_bins]``
    summing to the mixture, ``waveform [n_sources, ..., length]``.

  Raises:
    ParameterError: for negative magnitudes, or magnitudes and mixture of
      different shapes / STFT settings.
  """
  t, v, x, length, pc, p_mag = _separation_setup(mags, mixture_stft, transform, length)
  w = _weights(v, 'equal')
  p_mix = lambda y: stft_lib._p_mix(y, x, w)  # pylint: disable=protected-access
  (y,) = _loop(lambda y: (p_mix(p_mag(pc(y))),), (amplitude_mask_init(v, x),),
               _check_n_iter(n_iter))
  return _finish(y, t, length)


# Defaults chosen on the validation split of the study (docs/inversion.md) for
# estimated magnitudes (80-mel round trip), the case of BASIS outputs; with
# exact magnitudes the study picks lam 1 / 20 it. for the two hard variants,
# lam 10 / 5 it. for mix_incons, and MISI.
def mix_incons(mags, mixture_stft, *, n_iter: int = 10, lam: float = 10.0,
               weights: str = 'magnitude', transform=None,
               length: Optional[int] = None) -> Reconstruction:
  """Mixing + inconsistency penalty: ``Y <- (P_mix^w(Y) + lam w P_C(Y)) / (1 + lam w)``.

  Args:
    mags, mixture_stft, n_iter, transform, length: as :func:`misi`.
    lam: float >= 0, weight of the inconsistency penalty.
    weights: ``'equal'`` (``w = 1/J``) or ``'magnitude'`` (``w = V / sum V``).

  Returns:
    :class:`Reconstruction` (the estimates satisfy the mixture only for
    ``lam = 0``).

  Raises:
    ParameterError: as :func:`misi`, or for a bad ``lam`` / ``weights``.
  """
  t, v, x, length, pc, _ = _separation_setup(mags, mixture_stft, transform, length)
  lam = _check_scalar(lam, 'lam')
  w = _weights(v, weights)
  lw = _cplx(lam * w)
  p_mix = lambda y: stft_lib._p_mix(y, x, w)  # pylint: disable=protected-access
  (y,) = _loop(lambda y: ((p_mix(y) + lw * pc(y)) / (1 + lw),),
               (amplitude_mask_init(v, x),), _check_n_iter(n_iter))
  return _finish(y, t, length)


def mix_incons_hard_mag(mags, mixture_stft, *, n_iter: int = 20, lam: float = 0.01,
                        weights: str = 'magnitude', transform=None,
                        length: Optional[int] = None) -> Reconstruction:
  """Mixing + inconsistency with the magnitudes imposed: ``Y <- P_mag(P_mix^w(Y) + lam w P_C(Y))``.

  Args: as :func:`mix_incons`.

  Returns:
    :class:`Reconstruction` whose magnitudes equal ``mags``.

  Raises:
    ParameterError: as :func:`mix_incons`.
  """
  t, v, x, length, pc, p_mag = _separation_setup(mags, mixture_stft, transform, length)
  lam = _check_scalar(lam, 'lam')
  w = _weights(v, weights)
  lw = _cplx(lam * w)
  p_mix = lambda y: stft_lib._p_mix(y, x, w)  # pylint: disable=protected-access
  (y,) = _loop(lambda y: (p_mag(p_mix(y) + lw * pc(y)),),
               (amplitude_mask_init(v, x),), _check_n_iter(n_iter))
  return _finish(y, t, length)


def mag_incons_hard_mix(mags, mixture_stft, *, n_iter: int = 20, lam: float = 0.001,
                        transform=None, length: Optional[int] = None) -> Reconstruction:
  """Magnitude + inconsistency with the mixture imposed.

  ``Y <- P_mix^{1/J}((P_mag(Y) + lam P_C(Y)) / (1 + lam))``.

  Args: as :func:`mix_incons` (the mixing weights are ``1/J``).

  Returns:
    :class:`Reconstruction` summing to the mixture.

  Raises:
    ParameterError: as :func:`mix_incons`.
  """
  t, v, x, length, pc, p_mag = _separation_setup(mags, mixture_stft, transform, length)
  lam = _check_scalar(lam, 'lam')
  w = _weights(v, 'equal')
  lc = _cplx(tf.constant(lam, tf.float32))
  p_mix = lambda y: stft_lib._p_mix(y, x, w)  # pylint: disable=protected-access
  (y,) = _loop(lambda y: (p_mix((p_mag(y) + lc * pc(y)) / (1 + lc)),),
               (amplitude_mask_init(v, x),), _check_n_iter(n_iter))
  return _finish(y, t, length)


def incons_hard_mix(mags, mixture_stft, *, n_iter: int = 1, weights: str = 'equal',
                    transform=None, length: Optional[int] = None) -> Reconstruction:
  """Consistency then mixture: ``Y <- P_mix^w(P_C(Y))``, one iteration in the study.

  Args:
    mags, mixture_stft, transform, length: as :func:`misi`.
    n_iter: int >= 0; the algorithm is defined with one iteration (more
      iterations alternate two projections and forget the magnitudes).
    weights: ``'equal'`` or ``'magnitude'``.

  Returns:
    :class:`Reconstruction` summing to the mixture.

  Raises:
    ParameterError: as :func:`misi`.
  """
  t, v, x, length, pc, _ = _separation_setup(mags, mixture_stft, transform, length)
  w = _weights(v, weights)
  p_mix = lambda y: stft_lib._p_mix(y, x, w)  # pylint: disable=protected-access
  (y,) = _loop(lambda y: (p_mix(pc(y)),), (amplitude_mask_init(v, x),),
               _check_n_iter(n_iter))
  return _finish(y, t, length)


def amplitude_mask(mags, mixture_stft, *, transform=None,
                   length: Optional[int] = None) -> Reconstruction:
  """The mixture's phase on each source's magnitude: ``Y_j = V_j e^{i angle X}``.

  Args: as :func:`misi` (no iterations).

  Returns:
    :class:`Reconstruction`.

  Raises:
    ParameterError: as :func:`misi`.
  """
  t, v, x, length, _, _ = _separation_setup(mags, mixture_stft, transform, length)
  return _finish(amplitude_mask_init(v, x), t, length)


def wiener(mags, mixture_stft, *, power: float = 2.0, transform=None,
           length: Optional[int] = None) -> Reconstruction:
  """Single-channel Wiener filter from estimated magnitudes: ``Y_j = V_j^p / sum_k V_k^p X``.

  Args:
    mags, mixture_stft, transform, length: as :func:`misi`.
    power: float > 0, mask exponent (2 = Wiener).

  Returns:
    :class:`Reconstruction` summing to the mixture.

  Raises:
    ParameterError: as :func:`misi`.
  """
  t, v, x, length, _, _ = _separation_setup(mags, mixture_stft, transform, length)
  y = masks_lib.wiener_filter(v, x, power=power)
  return _finish(y, t, length)


# ----------------------------------------------------------------- registry
@dataclasses.dataclass(frozen=True)
class Method:
  """One algorithm of the registry and what it needs.

  Attributes:
    name: registry key (the ``--phase`` flag value).
    fn: the function.
    needs_mixture: takes the mixture STFT (separation); otherwise the method
      works on any magnitudes and uses a given mixture only as initial phase.
    mixing_constrained: its estimates sum to the mixture STFT.
    options: keyword options the function accepts besides the data
      (``n_iter``, ``lam``, ``weights``, ``momentum``, ``power``).
    fixed_n_iter: the number of iterations that defines the method, or None.
  """
  name: str
  fn: Callable[..., Reconstruction]
  needs_mixture: bool
  mixing_constrained: bool
  options: tuple
  fixed_n_iter: Optional[int] = None

  def __call__(self, mags, mixture_stft=None, *, transform=None, length=None,
               **options) -> Reconstruction:
    """Runs the method; options it does not take are ignored.

    Args:
      mags: float magnitudes, ``[n_sources, ..., n_frames, n_bins]`` when
        ``needs_mixture``, else ``[..., n_frames, n_bins]``.
      mixture_stft: complex ``[..., n_frames, n_bins]``, required when
        ``needs_mixture``; for ``gla`` / ``fgla`` its phase starts the
        iterations (the amplitude mask).
      transform: the STFT.
      length: int, output samples.
      **options: any of ``n_iter``, ``lam``, ``weights``, ``momentum``,
        ``power``; None values are dropped (the method's default).

    Returns:
      :class:`Reconstruction`.

    Raises:
      ParameterError: if a needed mixture is missing, or from the method.
    """
    kwargs = {k: v for k, v in options.items() if k in self.options and v is not None}
    if self.fixed_n_iter is not None:
      kwargs.pop('n_iter', None)
    if self.needs_mixture:
      if mixture_stft is None:
        raise ParameterError(f'phase method {self.name!r} needs the mixture STFT')
      return self.fn(mags, mixture_stft, transform=transform, length=length, **kwargs)
    if mixture_stft is not None:
      t = stft_lib.as_transform(transform)
      v = checks.real_tensor(mags, name='mags')
      x = checks.complex_tensor(mixture_stft, name='mixture_stft')
      stft_lib.check_same_stft(v, x, t, sources_axis=v.shape.rank == x.shape.rank + 1)
      kwargs['init'] = x
    return self.fn(mags, transform=transform, length=length, **kwargs)


METHODS: Dict[str, Method] = {m.name: m for m in (
    Method('gla', griffin_lim, False, False, ('n_iter', 'init', 'seed')),
    Method('fgla', fast_griffin_lim, False, False, ('n_iter', 'momentum', 'init', 'seed')),
    Method('degli', deep_griffin_lim, False, False,
           ('n_iter', 'momentum', 'init', 'seed', 'degli')),
    Method('misi', misi, True, True, ('n_iter',)),
    Method('mix_incons', mix_incons, True, False, ('n_iter', 'lam', 'weights')),
    Method('mix_incons_hard_mag', mix_incons_hard_mag, True, False,
           ('n_iter', 'lam', 'weights')),
    Method('mag_incons_hard_mix', mag_incons_hard_mix, True, True, ('n_iter', 'lam')),
    Method('incons_hard_mix', incons_hard_mix, True, True, ('weights',), fixed_n_iter=1),
    Method('amplitude_mask', amplitude_mask, True, False, ()),
    Method('wiener', wiener, True, True, ('power',)),
)}


def get_method(name: str) -> Method:
  """The registered method called ``name``.

  Raises:
    ParameterError: naming the unknown method and listing the known ones.
  """
  if name not in METHODS:
    raise ParameterError(f'unknown phase method {name!r}; choose one of {sorted(METHODS)}')
  return METHODS[name]


def reconstruct(name: str, mags, mixture_stft=None, **kwargs) -> Reconstruction:
  """``get_method(name)(mags, mixture_stft, **kwargs)``."""
  return get_method(name)(mags, mixture_stft, **kwargs)
