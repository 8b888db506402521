"""BSS Eval v4 (SDR, SIR, SAR, ISR), batched, matching museval.

BSS Eval decomposes an estimate ``s_hat`` of a source image ``s_j`` into

  s_hat = s_true + e_spat + e_interf + e_artif

by least-squares projections onto delayed copies (lags ``0 .. filters_len-1``)
of the references: ``P_j s_hat`` onto the delays of ``s_j`` alone (every
channel), ``P_all s_hat`` onto the delays of all references. Then
``s_true = s_j``, ``e_spat = P_j s_hat - s_j``, ``e_interf = P_all s_hat -
P_j s_hat``, ``e_artif = s_hat - P_all s_hat`` and (the "images" variant that
SiSEC and museval report)

  SDR = 10 log10(||s_true||^2 / ||e_spat + e_interf + e_artif||^2)
  ISR = 10 log10(||s_true||^2 / ||e_spat||^2)
  SIR = 10 log10(||s_true + e_spat||^2 / ||e_interf||^2)
  SAR = 10 log10(||s_true + e_spat + e_interf||^2 / ||e_artif||^2)

Version 4 (Liutkus, Stoter & Ito, 2018) fits the distortion filters once on
the whole signal and only evaluates the energies per window. This module
computes exactly what ``museval.evaluate(..., mode='v4')`` computes, but

* the correlations are summed block by block in the frequency domain (one
  short inverse FFT per pair instead of one the length of the signal);
* the filters for all estimates come from one Cholesky solve with many
  right-hand sides (museval LU-factorises the same Gram matrix once per
  source);
* all windows are scored at once: the windowed references and estimates are
  Fourier transformed in one batch, the projections are products in the
  frequency domain and the energies follow from Parseval's theorem, so no
  convolution or inverse FFT runs per window.

museval's behaviour that is kept on purpose (tests/fixtures/museval_v4.json):

* a window is NaN for *every* source as soon as one reference or one estimate
  is silent in it (museval's test: the channel sum is exactly zero at every
  sample, so an exactly anti-phase stereo signal counts as silent too);
* the convolution tails (``filters_len - 1`` samples past a window's end) are
  part of each window's energies;
* windows start at ``t * hop`` and only full windows are scored
  (``n_windows = (n_samples - window) // hop + 1``); a window at least as long
  as the signal gives one window over the whole signal;
* estimates are scored against the reference of the same index unless
  ``compute_permutation`` is set.

Deliberate differences (documented in docs/evaluation.md):

* a reference or estimate that is silent over the whole signal gives NaN in
  every window (museval raises ``ValueError``);
* with ``compute_permutation`` the permutation maximises the mean SIR over the
  windows that are not NaN (museval's ``np.mean`` makes every candidate NaN
  when one window is, and then keeps the identity);
* window and hop are given in seconds and rounded to whole samples
  (museval truncates ``int(window_s * rate)``; equal for any whole number of
  milliseconds at the usual rates).

Axis convention: sources ``[n_sources, n_samples]`` (mono) or
``[n_sources, n_channels, n_samples]`` (museval and soundfile use
``[n_sources, n_samples, n_channels]``).
"""

import dataclasses
import itertools
import math
import warnings
from typing import Dict

import numpy as np
from scipy import fft as sp_fft

from common.errors import ParameterError

METRICS = ('SDR', 'SIR', 'SAR', 'ISR')
# Bytes of complex spectra held at once when scoring windows (chunks of windows).
_WINDOW_BUDGET_BYTES = 64 << 20
# Bytes of cross-spectra held at once when fitting the filters.
_FILTER_BUDGET_BYTES = 128 << 20


@dataclasses.dataclass(frozen=True)
class BssEvalResult:
  """Framewise BSS Eval v4 scores of one set of estimates.

  Attributes:
    sdr, sir, sar, isr: float64 ``[n_sources, n_windows]``, dB; index ``j`` is
      reference source ``j``; NaN in windows where a reference or an estimate
      is silent; ``inf`` where an error term is exactly zero.
    permutation: int ``[n_sources]``, the estimate scored against each
      reference (the identity unless a permutation search ran).
    window: int, window length, samples.
    hop: int, hop, samples.
    sample_rate: int, Hz.
  """

  sdr: np.ndarray
  sir: np.ndarray
  sar: np.ndarray
  isr: np.ndarray
  permutation: np.ndarray
  window: int
  hop: int
  sample_rate: int

  @property
  def n_windows(self) -> int:
    return int(self.sdr.shape[-1])

  def framewise(self) -> Dict[str, np.ndarray]:
    """``{'SDR': [n_sources, n_windows], 'SIR': ..., 'SAR': ..., 'ISR': ...}``."""
    return {'SDR': self.sdr, 'SIR': self.sir, 'SAR': self.sar, 'ISR': self.isr}

  def medians(self) -> Dict[str, np.ndarray]:
    """Median over the windows that are not NaN (museval's ``np.nanmedian``).

    Returns:
      ``{metric: float64 [n_sources]}``, dB; NaN for a source whose every
      window is NaN.
    """
    return {name: nanmedian(values, axis=-1) for name, values in self.framewise().items()}


def nanmedian(values, *, axis=None) -> np.ndarray:
  """``np.nanmedian`` without the all-NaN warning (an all-NaN slice gives NaN)."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmedian(np.asarray(values, np.float64), axis=axis)


def _as_sources(x, name: str) -> np.ndarray:
  """float64 ``[n_sources, n_channels, n_samples]`` from 2-D (mono) or 3-D input."""
  try:
    x = np.asarray(x, np.float64)
  except (TypeError, ValueError) as e:
    raise ParameterError(f'{name} is not a numeric array: {e}') from e
  if x.ndim == 2:
    x = x[:, np.newaxis, :]
  if x.ndim != 3:
    raise ParameterError(
        f'{name} must be [n_sources, n_samples] or [n_sources, n_channels, '
        f'n_samples], got shape {x.shape}')
  if 0 in x.shape:
    raise ParameterError(f'{name} is empty (shape {x.shape})')
  if not np.isfinite(x).all():
    raise ParameterError(f'{name} holds NaN or infinite values')
  return x


def seconds_to_samples(seconds: float, sample_rate: int, *, name: str) -> int:
  """Rounds a duration in seconds to a positive whole number of samples."""
  if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
    raise ParameterError(f'{name} must be a number of seconds, got {seconds!r}')
  if math.isinf(seconds) and seconds > 0:
    return np.iinfo(np.int64).max
  if not seconds > 0:
    raise ParameterError(f'{name} must be > 0 seconds, got {seconds!r}')
  n = int(round(seconds * sample_rate))
  if n < 1:
    raise ParameterError(
        f'{name}={seconds!r} s is less than one sample at {sample_rate} Hz')
  return n


def window_starts(n_samples: int, *, window: int, hop: int) -> np.ndarray:
  """Start samples of museval's windows (only full windows; one if too short).

  Args:
    n_samples: int > 0, signal length, samples.
    window: int > 0, window length, samples.
    hop: int > 0, samples between window starts.

  Returns:
    int64 ``[n_windows]``.
  """
  if window >= n_samples:
    return np.zeros(1, np.int64)
  return np.arange((n_samples - window) // hop + 1, dtype=np.int64) * hop


def _rfft(x: np.ndarray, n: int) -> np.ndarray:
  """``rfft`` over the last axis, zero-padded to ``n`` by hand.

  Padding into a fresh contiguous buffer first is several times faster than
  letting ``scipy.fft`` pad a (possibly strided) input.
  """
  buf = np.zeros(x.shape[:-1] + (n,))
  buf[..., :x.shape[-1]] = x
  return sp_fft.rfft(buf, axis=-1, overwrite_x=True)


def _segment(x: np.ndarray, start: int, stop: int) -> np.ndarray:
  """``x[:, start:stop]`` with zeros where the range leaves ``[0, n_samples)``."""
  out = np.zeros((x.shape[0], stop - start))
  lo, hi = max(start, 0), min(stop, x.shape[-1])
  if hi > lo:
    out[:, lo - start:hi - start] = x[:, lo:hi]
  return out


def _correlations(refs: np.ndarray, others: np.ndarray, length: int) -> np.ndarray:
  """Cross-correlations at lags ``-(length-1) .. length-1``, block by block.

  ``xc[p, q, k + length - 1] = sum_n refs[p, n] others[q, n + k]`` (zero
  outside the signals), exactly. Instead of one transform of the whole signal
  per pair, the signal is cut into blocks of ``B`` samples; each block of
  ``refs`` is correlated with the block of ``others`` extended by
  ``length - 1`` samples on both sides (one FFT of ``B + 2 length - 2``
  points, no wrap-around), the cross-spectra are summed over blocks (one
  matrix product per frequency) and only the summed spectrum of each pair is
  transformed back.

  Args:
    refs: float64 ``[P, n_samples]``.
    others: float64 ``[Q, n_samples]``.
    length: int > 0, the number of non-negative lags.

  Returns:
    float64 ``[P, Q, 2 length - 1]``.
  """
  n_samples = refs.shape[-1]
  ext = length - 1
  n_fft = sp_fft.next_fast_len(max(4 * (2 * ext + 1), 16384), real=True)
  block = n_fft - 2 * ext
  n_blocks = -(-n_samples // block)
  n_bins = n_fft // 2 + 1
  per_block = 16 * n_bins * (refs.shape[0] + others.shape[0])
  chunk = max(1, _FILTER_BUDGET_BYTES // per_block)
  cross = np.zeros((n_bins, refs.shape[0], others.shape[0]), np.complex128)
  for lo in range(0, n_blocks, chunk):
    hi = min(lo + chunk, n_blocks)
    # Blocks cut straight from the inputs (zeros outside), one chunk at a time.
    p_blocks = _segment(refs, lo * block, hi * block).reshape(refs.shape[0], hi - lo, block)
    q_seg = _segment(others, lo * block - ext, hi * block + ext)
    q_blocks = np.lib.stride_tricks.sliding_window_view(
        q_seg, block + 2 * ext, axis=-1)[:, ::block]              # [Q, nb, B + 2 ext]
    p_f = _rfft(p_blocks, n_fft)                                   # [P, nb, F]
    q_f = _rfft(q_blocks, n_fft)                                   # [Q, nb, F]
    # (einsum beats a stacked matmul of these small matrices several times)
    cross += np.einsum('pbf,qbf->fpq', np.conj(p_f), q_f)
    del p_f, q_f
  corr = sp_fft.irfft(cross.transpose(1, 2, 0), n=n_fft, axis=-1)
  return corr[..., :2 * ext + 1]


def _solve_psd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Solves ``a x = b`` for symmetric positive (semi)definite ``a`` (batched).

  Cholesky (half the work of museval's LU); LU where the factorisation fails
  (a Gram matrix that is singular to working precision).
  """
  try:
    chol = np.linalg.cholesky(a)
  except np.linalg.LinAlgError:
    return np.linalg.solve(a, b)
  from scipy.linalg import solve_triangular  # pylint: disable=g-import-not-at-top
  if a.ndim == 2:
    y = solve_triangular(chol, b, lower=True, check_finite=False)
    return solve_triangular(chol, y, lower=True, trans='T', check_finite=False)
  out = np.empty(b.shape, np.float64)
  for i in range(a.shape[0]):
    y = solve_triangular(chol[i], b[i], lower=True, check_finite=False)
    out[i] = solve_triangular(chol[i], y, lower=True, trans='T', check_finite=False)
  return out


def _fit_filters(refs: np.ndarray, ests: np.ndarray, *, filters_len: int,
                 pairs: np.ndarray):
  """Least-squares distortion filters fitted on the whole signals.

  Args:
    refs: float64 ``[n_src, n_chan, n_samples]``.
    ests: float64 ``[n_est, n_chan, n_samples]``.
    filters_len: int, number of lags.
    pairs: int ``[n_pairs, 2]``, (reference, estimate) pairs that need the
      single-source filters.

  Returns:
    ``(c_all, c_pair)``: float64 ``[n_est, n_src, n_chan, filters_len,
    n_chan]`` (projection of each estimate on all references) and
    ``[n_pairs, n_chan, filters_len, n_chan]`` (projection of estimate
    ``pairs[p, 1]`` on reference ``pairs[p, 0]`` alone); axes are
    (source, input channel, lag, output channel) as in museval.
  """
  n_src, n_chan, n_samples = refs.shape
  n_est = ests.shape[0]
  length = filters_len
  n_sig = n_src * n_chan
  flat_refs = refs.reshape(n_sig, n_samples)
  xc = _correlations(flat_refs, np.concatenate(
      [flat_refs, ests.reshape(n_est * n_chan, n_samples)]), length)
  # d[p, m, a] = <r_p delayed by a, y_m> = xc(r_p, y_m) at lag a.
  d = xc[:, n_sig:, length - 1:]
  xc = xc[:, :n_sig]
  # Gram matrix of the delayed references: G[(p, a), (q, b)] = xc[p, q, a - b].
  lag = np.arange(length)
  gram = np.empty((n_sig, length, n_sig, length))
  gram[...] = xc[:, :, (lag[:, np.newaxis] - lag[np.newaxis, :]) + length - 1].transpose(
      0, 2, 1, 3)
  gram = gram.reshape(n_sig * length, n_sig * length)
  gram[np.diag_indices_from(gram)] += np.finfo(np.float64).eps   # as museval
  rhs = d.transpose(0, 2, 1).reshape(n_sig * length, n_est * n_chan)
  c_all = _solve_psd(gram, rhs)
  c_all = c_all.reshape(n_src, n_chan, length, n_est, n_chan).transpose(3, 0, 1, 2, 4)
  # Single-source projections: the diagonal blocks of the same system.
  block = n_chan * length
  gram = gram.reshape(n_src, block, n_src, block)
  rhs = rhs.reshape(n_src, block, n_est, n_chan)
  j_ref, j_est = pairs[:, 0], pairs[:, 1]
  c_pair = _solve_psd(gram[j_ref, :, j_ref, :], rhs[j_ref, :, j_est, :])
  c_pair = c_pair.reshape(len(pairs), n_chan, length, n_chan)
  return c_all, c_pair


def _silent(x: np.ndarray) -> np.ndarray:
  """museval's silence test per window: ``[..., n_chan, n_win, win]`` -> ``[..., n_win]``."""
  return np.all(np.sum(x, axis=-3) == 0, axis=-1)


def _safe_db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
  with np.errstate(divide='ignore', invalid='ignore'):
    out = 10.0 * np.log10(num / den)
  return np.where(den == 0, np.inf, out)


def _score_windows(refs, ests, c_all, c_pair, pairs, starts, window, filters_len):
  """Energies of the decomposition in every window, for every pair.

  Returns:
    float64 ``[4, n_pairs, n_windows]``: SDR, SIR, SAR, ISR in dB (not yet
    masked for silence).
  """
  n_src, n_chan, n_samples = refs.shape
  window = min(window, n_samples)
  n_fft = sp_fft.next_fast_len(window + filters_len - 1, real=True)
  n_bins = n_fft // 2 + 1
  # Parseval weights of a real signal's one-sided spectrum.
  weight = np.full(n_bins, 2.0 / n_fft)
  weight[0] = 1.0 / n_fft
  if n_fft % 2 == 0:
    weight[-1] = 1.0 / n_fft
  filt_all = np.moveaxis(_rfft(np.moveaxis(c_all, 3, -1), n_fft), -1, 3)   # [E, S, Ci, F, Co]
  filt_pair = np.moveaxis(_rfft(np.moveaxis(c_pair, 2, -1), n_fft), -1, 2)  # [Np, Ci, F, Co]
  j_ref, j_est = pairs[:, 0], pairs[:, 1]
  n_est = ests.shape[0]
  per_window = 16 * n_bins * n_chan * (n_src + 3 * n_est + 3 * len(pairs))
  chunk = max(1, _WINDOW_BUDGET_BYTES // per_window)
  out = np.empty((4, len(pairs), len(starts)))
  ref_view = np.lib.stride_tricks.sliding_window_view(refs, window, axis=-1)
  est_view = np.lib.stride_tricks.sliding_window_view(ests, window, axis=-1)
  for lo in range(0, len(starts), chunk):
    idx = starts[lo:lo + chunk]
    r = ref_view[:, :, idx]                                # [S, C, T, W]
    e = est_view[:, :, idx]                                # [E, C, T, W]
    r_f = _rfft(r, n_fft)                                  # [S, C, T, F]
    e_f = _rfft(e, n_fft)
    # Projections in the frequency domain (linear convolutions, n_fft long).
    p_all = np.einsum('sctf,escfo->eotf', r_f, filt_all, optimize=True)
    p_pair = np.einsum('pctf,pcfo->potf', r_f[j_ref], filt_pair, optimize=True)

    def energy(spec):
      return np.einsum('...f,f->...', spec.real ** 2 + spec.imag ** 2, weight).sum(axis=-2)

    s_true = r[j_ref]
    e_true_f = r_f[j_ref]
    e_all = p_all[j_est]
    est_f = e_f[j_est]
    energy_true = np.sum(s_true ** 2, axis=(-3, -1))       # [Np, T]
    energy_dist = np.sum((e[j_est] - s_true) ** 2, axis=(-3, -1))
    sdr = _safe_db(energy_true, energy_dist)
    isr = _safe_db(energy_true, energy(p_pair - e_true_f))
    sir = _safe_db(energy(p_pair), energy(e_all - p_pair))
    sar = _safe_db(energy(e_all), energy(est_f - e_all))
    out[:, :, lo:lo + len(idx)] = np.stack([sdr, sir, sar, isr])
  return out


def bss_eval_v4(references, estimates, *, sample_rate: int, window_s: float = 1.0,
                hop_s: float = 1.0, filters_len: int = 512,
                compute_permutation: bool = False) -> BssEvalResult:
  """BSS Eval v4 ("images" variant) framewise scores, as museval computes them.

  Args:
    references: float ``[n_sources, n_samples]`` or ``[n_sources, n_channels,
      n_samples]``, the true source images.
    estimates: float, same shape as ``references``.
    sample_rate: int > 0, Hz.
    window_s: float > 0, window length in seconds (``inf``: the whole signal).
    hop_s: float > 0, hop in seconds.
    filters_len: int > 0, number of lags of the distortion filters, samples.
    compute_permutation: search the assignment of estimates to references
      that maximises the mean SIR over the windows that are not NaN.

  Returns:
    :class:`BssEvalResult` with ``[n_sources, n_windows]`` scores in dB.

  Raises:
    ParameterError: for shapes that differ or are not 2-D/3-D, non-finite
      values, non-positive sizes or rates.
  """
  refs = _as_sources(references, 'references')
  ests = _as_sources(estimates, 'estimates')
  if refs.shape != ests.shape:
    raise ParameterError(
        f'references shape {np.shape(references)} != estimates shape '
        f'{np.shape(estimates)}')
  if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate <= 0:
    raise ParameterError(f'sample_rate must be a positive int (Hz), got {sample_rate!r}')
  if isinstance(filters_len, bool) or int(filters_len) != filters_len or filters_len <= 0:
    raise ParameterError(f'filters_len must be a positive int, got {filters_len!r}')
  sample_rate, filters_len = int(sample_rate), int(filters_len)
  window = seconds_to_samples(window_s, sample_rate, name='window_s')
  hop = seconds_to_samples(hop_s, sample_rate, name='hop_s')
  n_src, _, n_samples = refs.shape
  starts = window_starts(n_samples, window=window, hop=hop)
  win_len = min(window, n_samples)

  if compute_permutation:
    pairs = np.array(list(itertools.product(range(n_src), range(n_src))))
  else:
    pairs = np.stack([np.arange(n_src)] * 2, axis=1)
  c_all, c_pair = _fit_filters(refs, ests, filters_len=filters_len, pairs=pairs)
  scores = _score_windows(refs, ests, c_all, c_pair, pairs, starts, win_len, filters_len)

  # museval: a window where any reference or any estimate is silent is NaN.
  ref_view = np.lib.stride_tricks.sliding_window_view(refs, win_len, axis=-1)[:, :, starts]
  est_view = np.lib.stride_tricks.sliding_window_view(ests, win_len, axis=-1)[:, :, starts]
  silent = _silent(ref_view).any(axis=0) | _silent(est_view).any(axis=0)   # [T]
  scores[:, :, silent] = np.nan

  if compute_permutation:
    sir = scores[1].reshape(n_src, n_src, -1)               # [ref, est, T]
    with warnings.catch_warnings():
      warnings.simplefilter('ignore', RuntimeWarning)
      mean_sir = np.nanmean(sir, axis=-1)
    perms = np.array(list(itertools.permutations(range(n_src))))
    totals = np.nan_to_num(mean_sir[np.arange(n_src), perms], nan=-np.inf,
                           posinf=1e300).sum(axis=1)
    perm = perms[int(np.argmax(totals))]
    scores = scores.reshape(4, n_src, n_src, -1)[:, np.arange(n_src), perm]
  else:
    perm = np.arange(n_src)
  sdr, sir, sar, isr = scores
  return BssEvalResult(sdr=sdr, sir=sir, sar=sar, isr=isr, permutation=perm,
                       window=window, hop=hop, sample_rate=sample_rate)
