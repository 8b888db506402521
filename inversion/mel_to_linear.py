"""Mel spectrogram -> linear-frequency magnitude.

Two estimators of ``S >= 0`` with ``S M ~= mel`` (``M`` the ``[n_bins, n_mels]``
filterbank of a :class:`pipeline.transforms.MelTransform`):

* ``'pinv'``: least squares with the pseudo-inverse, clipped at zero,
  ``S = max(mel M^+, 0)``;
* ``'nnls'``: that, refined by accelerated projected gradient on
  ``||S M - mel||^2`` s.t. ``S >= 0``; this is
  :meth:`MelTransform.mel_to_spectrogram` itself (reused, so the filterbank
  that made the features is the one inverted; with ``n_iter = 0`` it *is* the
  clipped pseudo-inverse).

Both run batched in TensorFlow on ``[..., n_frames, n_mels]``. The mel is in
the power of the features (``FeatureConfig.power``: 2 = power, 1 =
magnitude); the result is the linear *magnitude* ``|STFT|`` that phase
retrieval takes (the square root is taken for power features). Bins outside
``[fmin, fmax]`` are not seen by the filterbank and come back as zero.
"""

import os
import sys
from typing import Optional

import numpy as np
import tensorflow as tf

from inversion import checks
from inversion import stft as stft_lib
from common.errors import ParameterError

MAGNITUDE_METHODS = ('pinv', 'nnls', 'refiner', 'auto')
REFINER_CHUNK_FRAMES = 128   # frames per refiner call at inference (memory; see refine)
DEFAULT_NNLS_ITERATIONS = 50
_FALLBACKS_SAID = set()   # each 'auto' -> NNLS reason is printed once per process


def resolve_method(method: str, transform=None, *, refiner: Optional[str] = None) -> str:
  """``'auto'`` -> ``'refiner'`` when the (given or shipped) refiner was trained
  for the transform's STFT, else ``'nnls'``; other methods are returned as they are.

  The refiner is much better where it applies (docs/inversion.md: the mel ->
  wav table, and BASIS + Wiener on the held-out tracks). Falling back to NNLS
  is said on stderr (once per reason), never silent; an explicit
  ``'refiner'`` that does not fit is an error where it is loaded.
  """
  if method != 'auto':
    return method
  if refiner is not None:   # a folder given: the user wants it (a misfit is an error)
    return 'refiner'
  from inversion import nets  # pylint: disable=g-import-not-at-top
  t = stft_lib.as_transform(transform)
  if nets.fits('refiner', t):
    return 'refiner'
  shipped = nets.default_dir('refiner')
  if not os.path.isdir(shipped):
    reason = f'the shipped refiner is missing ({shipped}: a broken install)'
  else:
    reason = (f'the shipped refiner was trained for another STFT than these features\' '
              f'({nets.StftSettings.of(t)})')
  if reason not in _FALLBACKS_SAID:
    _FALLBACKS_SAID.add(reason)
    print(f'note: magnitude auto: {reason}; using NNLS (--magnitude=nnls to choose it, '
          '--magnitude=refiner to require the refiner)', file=sys.stderr, flush=True)
  return 'nnls'


def mel_to_magnitude(mel, *, method: str = 'nnls', transform=None,
                     n_iter: Optional[int] = None, refiner: Optional[str] = None):
  """Estimates the linear magnitude spectrogram from a mel spectrogram.

  Args:
    mel: float ``[..., n_frames, n_mels]``, non-negative, in the power of the
      transform's features (as ``MelTransform.spectrogram_to_mel`` makes it).
    method: ``'pinv'``, ``'nnls'``, ``'refiner'`` (the trained refiner on
      its base estimate, the clipped pseudo-inverse or NNLS,
      :class:`inversion.nets.Refiner`) or ``'auto'`` (:func:`resolve_method`:
      the refiner where it fits the STFT, else NNLS).
    transform: the ``MelTransform`` (or ``FeatureConfig``) that made the mel;
      default the reference features.
    n_iter: int >= 0, NNLS refinement steps (``'nnls'`` only); default 50.
    refiner: folder of a trained refiner (``'refiner'`` only); default the
      shipped one (``assets/inversion/refiner``). Its STFT must be the
      transform's.

  Returns:
    float32 ``[..., n_frames, n_bins]``, non-negative linear magnitude;
    numpy if ``mel`` was numpy.

  Raises:
    ParameterError: for an unknown method, ``n_iter`` with ``'pinv'``, a last
      axis that is not ``n_mels`` of the transform, or negative values.
  """
  numpy_out = checks.is_numpy_input(mel)
  t = stft_lib.as_transform(transform)
  if method not in MAGNITUDE_METHODS:
    raise ParameterError(
        f'unknown magnitude method {method!r}; choose one of {list(MAGNITUDE_METHODS)}')
  method = resolve_method(method, t, refiner=refiner)
  if refiner is not None and method != 'refiner':
    raise ParameterError(f"refiner={refiner!r} is only for method 'refiner'")
  if method in ('pinv', 'refiner'):
    if n_iter not in (None, 0):
      raise ParameterError(f"n_iter={n_iter!r} is only for method 'nnls'")
    n_iter = 0
  if method == 'refiner':   # its base: the clipped pseudo-inverse or NNLS
    from inversion import nets  # pylint: disable=g-import-not-at-top
    n_iter = nets.load_net(refiner, 'refiner', transform=t)[0].config.base_iterations
  elif n_iter is None:
    n_iter = DEFAULT_NNLS_ITERATIONS
  if isinstance(n_iter, bool) or int(n_iter) != n_iter or n_iter < 0:
    raise ParameterError(f'n_iter must be an int >= 0, got {n_iter!r}')
  m = tf.cast(checks.real_tensor(mel, name='mel'), tf.float32)
  checks.check_min_rank(m, 1, name='mel', layout='[..., n_frames, n_mels]')
  n_mels = t.config.n_mels
  if m.shape.rank is not None and m.shape[-1] is not None and m.shape[-1] != n_mels:
    raise ParameterError(
        f'mel has {m.shape[-1]} bands on its last axis (shape {m.shape}) but the '
        f'transform has n_mels={n_mels}; expected [..., n_frames, n_mels] '
        '(images [..., n_mels, n_frames, 1] go through MelTransform.image_to_mel)')
  checks.check_non_negative(m, name='mel')
  s = t.mel_to_spectrogram(m, n_iter=int(n_iter))
  if t.config.power == 2.0:
    s = tf.sqrt(s)
  if method == 'refiner':
    s = refine(s, transform=t, refiner=refiner)
  return checks.to_output(s, numpy_out)


def refine(base, *, transform=None, refiner: Optional[str] = None):
  """The trained refiner applied to its base magnitudes.

  Args:
    base: float ``[..., n_frames, n_bins]``, the base estimate the refiner
      was trained on: NNLS with ``config.base_iterations`` steps (0: the
      clipped pseudo-inverse, ``mel_to_magnitude(mel, method='pinv')``).
    transform: the STFT (its settings must be the refiner's).
    refiner: refiner folder; default the shipped one.

  Returns:
    float32 ``[..., n_frames, n_bins]``, non-negative.
  """
  from inversion import nets  # pylint: disable=g-import-not-at-top
  t = stft_lib.as_transform(transform)
  model, _ = nets.load_net(refiner, 'refiner', transform=t)
  base = tf.convert_to_tensor(base, tf.float32)
  shape = tf.shape(base)
  flat = tf.reshape(base, tf.concat([[-1], shape[-2:]], axis=0))
  # One item at a time in 128-frame chunks (each with the network's margin): the
  # activations, and the memory the allocator keeps after them, stay small whatever
  # the number of sources and frames (a 30 s chunk of two sources: +200 MB instead
  # of +520 MB, and no slower; issue 27), through the compiled network (1.5x faster
  # than op by op). Equal to the batched whole-input result up to float32 rounding.
  correction = model.compiled_correction()
  items = ([model(flat[i:i + 1], chunk_frames=REFINER_CHUNK_FRAMES, correction=correction)
            for i in range(int(flat.shape[0]))] if flat.shape[0] is not None
           else [model(flat, correction=correction)])
  return tf.reshape(tf.concat(items, axis=0), shape)


def mel_fit_error(mel, magnitude, *, transform=None):
  """Relative misfit ``||S^p M - mel||_F / ||mel||_F`` over the whole array.

  Args:
    mel: float ``[..., n_frames, n_mels]`` in the features' power.
    magnitude: float ``[..., n_frames, n_bins]`` linear magnitude.
    transform: the ``MelTransform`` / ``FeatureConfig``.

  Returns:
    float, dimensionless.
  """
  t = stft_lib.as_transform(transform)
  m = tf.cast(checks.real_tensor(mel, name='mel'), tf.float32)
  s = tf.cast(checks.real_tensor(magnitude, name='magnitude'), tf.float32)
  if t.config.power == 2.0:
    s = tf.square(s)
  return float(tf.norm(t.spectrogram_to_mel(s) - m) / tf.maximum(tf.norm(m), 1e-30))


MAX_GAIN_DB = 40.0   # mel_gain_magnitude clips each band's gain to +-40 dB


def mel_gain_magnitude(reference_power, mel, transform, *, floor: float = 1e-10):
  """A linear magnitude that follows ``mel`` band by band, with ``reference``'s detail.

  Where a mel estimate corrects a source that another separator already
  estimated in the linear domain, the correction can be carried by gains
  instead of by an inversion of the mel: each band's gain is the estimate's
  mel power over the reference's, the gain of a linear bin is the geometric
  mean of its bands' gains weighted by the filterbank, and the result is the
  reference's magnitude times the square root of that power gain. What 64 mel
  bands cannot hold (harmonics inside a band) comes from the reference; a mel
  equal to the reference's own returns the reference's magnitude exactly; bins
  no band covers keep it. Gains are clipped to +-``MAX_GAIN_DB``.

  Args:
    reference_power: float ``[..., n_frames, n_bins]``, the reference's
      ``|STFT|^2`` (``MelTransform.spectrogram`` with power-2 features).
    mel: float ``[..., n_frames, n_mels]`` mel power estimates (same frames).
    transform: the :class:`pipeline.transforms.MelTransform` of both.
    floor: power floor of both mels before the ratio.

  Returns:
    float32 numpy ``[..., n_frames, n_bins]`` linear magnitude.

  Raises:
    ParameterError: features that are not power-2, shapes that do not match.
  """
  if transform.config.power != 2.0:
    raise ParameterError(f'mel_gain_magnitude needs power-2 features, got power '
                         f'{transform.config.power}')
  ref = np.asarray(reference_power, np.float64)
  mel = np.asarray(mel, np.float64)
  fb = np.asarray(transform.filterbank.numpy(), np.float64)          # [n_bins, n_mels]
  if ref.shape[-1] != fb.shape[0] or mel.shape[-1] != fb.shape[1] or \
      ref.shape[:-1] != mel.shape[:-1]:
    raise ParameterError(f'reference power {ref.shape} and mel {mel.shape} do not match '
                         f'the filterbank ({fb.shape[0]} bins, {fb.shape[1]} bands) or '
                         'each other\'s frames')
  limit = MAX_GAIN_DB / 10.0 * np.log(10.0)
  log_gain = np.clip(np.log(np.maximum(mel, floor)) - np.log(np.maximum(ref @ fb, floor)),
                     -limit, limit)
  rows = fb.sum(axis=1, keepdims=True)
  weight = np.divide(fb, rows, out=np.zeros_like(fb), where=rows > 0)
  bin_gain = np.exp(log_gain @ weight.T)                   # uncovered bins: exp(0) = 1
  return np.sqrt(ref * bin_gain).astype(np.float32)
