"""Whole spectrograms <-> overlapping fixed-size patches, and back, exactly.

A prior sees patches of ``patch_frames`` frames; a recording has any number
of frames. :func:`split_into_patches` cuts a scaled mel image
``[n_mels, n_frames, 1]`` into patches every ``hop_frames`` frames (the last
patch ends at the last frame, so every frame is covered and nothing is
padded unless the recording is shorter than one patch); :func:`stitch_patches`
puts patches back with a cross-fade: each frame is the weighted mean of the
patches covering it, with weights that ramp up over the overlap (a raised
cosine) and are flat inside. Without separation the round trip is exact (the
weights are normalised by their sum at every frame).

Axis order: images ``[n_mels, n_frames, 1]`` (pipeline's [height, width,
channels]); patches ``[..., n_patches, n_mels, patch_frames, 1]``.
"""

from typing import Tuple

import numpy as np

from common.errors import ParameterError


def patch_starts(n_frames: int, patch_frames: int, hop_frames: int) -> np.ndarray:
  """First frame of each patch: ``0, hop, 2 hop, ...`` and ``n_frames - patch_frames``.

  Args:
    n_frames: int >= patch_frames, frames of the (padded) image.
    patch_frames: int > 0.
    hop_frames: int in ``[1, patch_frames]`` (``patch_frames``: no overlap).

  Returns:
    int64 ``[n_patches]``, increasing, the last one ``n_frames - patch_frames``.

  Raises:
    ParameterError: for sizes out of range.
  """
  if patch_frames <= 0 or not 1 <= hop_frames <= patch_frames:
    raise ParameterError(f'need 0 < hop_frames <= patch_frames, got hop_frames={hop_frames}, '
                         f'patch_frames={patch_frames}')
  if n_frames < patch_frames:
    raise ParameterError(f'n_frames={n_frames} is shorter than one patch ({patch_frames})')
  last = n_frames - patch_frames
  starts = list(range(0, last + 1, hop_frames))
  if starts[-1] != last:
    starts.append(last)
  return np.asarray(starts, np.int64)


def split_into_patches(image: np.ndarray, *, patch_frames: int, hop_frames: int,
                       pad_value: float = 0.0) -> Tuple[np.ndarray, np.ndarray, int]:
  """Cuts ``[n_mels, n_frames, 1]`` into ``[n_patches, n_mels, patch_frames, 1]``.

  Args:
    image: float ``[n_mels, n_frames, 1]``.
    patch_frames: frames per patch.
    hop_frames: frames between patch starts.
    pad_value: fills the frames added when ``n_frames < patch_frames`` (0 in
      the unit scale is the dB floor: silence).

  Returns:
    ``(patches, starts, n_frames)``: the patches, their first frames and the
    frame count of the (padded) image that :func:`stitch_patches` rebuilds.
  """
  image = np.asarray(image, np.float32)
  if image.ndim != 3 or image.shape[-1] != 1:
    raise ParameterError(f'expected an image [n_mels, n_frames, 1], got shape {image.shape}')
  n_frames = image.shape[1]
  if n_frames < patch_frames:
    pad = np.full((image.shape[0], patch_frames - n_frames, 1), pad_value, np.float32)
    image = np.concatenate([image, pad], axis=1)
    n_frames = patch_frames
  starts = patch_starts(n_frames, patch_frames, hop_frames)
  patches = np.stack([image[:, s:s + patch_frames] for s in starts])
  return patches, starts, n_frames


def crossfade_weights(patch_frames: int, hop_frames: int) -> np.ndarray:
  """``[patch_frames]`` weights: raised-cosine ramps over the overlap, 1 inside.

  Strictly positive everywhere, so a frame covered by one patch keeps it.
  """
  overlap = patch_frames - hop_frames
  w = np.ones(patch_frames, np.float64)
  if overlap > 0:
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
    w[:overlap] = ramp
    w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
  return w


def stitch_patches(patches: np.ndarray, starts: np.ndarray, n_frames: int, *,
                   hop_frames: int) -> np.ndarray:
  """Cross-faded overlap-add of ``[..., n_patches, n_mels, patch_frames, 1]``.

  Args:
    patches: float ``[..., n_patches, n_mels, patch_frames, 1]`` (leading axes,
      e.g. sources, are kept).
    starts: the patches' first frames (:func:`split_into_patches`).
    n_frames: frames of the result.
    hop_frames: the hop the patches were cut with (sets the cross-fade).

  Returns:
    float32 ``[..., n_mels, n_frames, 1]``.
  """
  patches = np.asarray(patches, np.float64)
  n_patches, patch_frames = patches.shape[-4], patches.shape[-2]
  if len(starts) != n_patches:
    raise ParameterError(f'{n_patches} patches but {len(starts)} starts')
  w = crossfade_weights(patch_frames, hop_frames)
  lead = patches.shape[:-4]
  out = np.zeros(lead + (patches.shape[-3], n_frames, 1), np.float64)
  norm = np.zeros(n_frames, np.float64)
  for i, s in enumerate(starts):
    out[..., :, s:s + patch_frames, :] += patches[..., i, :, :, :] * w[:, None]
    norm[s:s + patch_frames] += w
  if np.any(norm <= 0):
    raise ParameterError('the patches do not cover every frame')
  return (out / norm[:, None]).astype(np.float32)
