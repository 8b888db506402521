"""Figures every part draws: image grids, colourised spectrogram patches, PNG files.

Images are ``[n, height, width, channels]`` in [0, 1] (for mel patches height
= mel bands, low bands first); PNGs are written atomically. matplotlib is
imported on first use (Agg backend). Used by the training loop's preview
grids, the sample commands of ``ncsn`` and ``flow_models``, and the
separation experiments' pictures.
"""

import os

import numpy as np

from common.atomic import atomic_path, save_npy_atomic
from common.errors import ParameterError


def make_grid(images, *, ncols=None, pad=1, pad_value=1.0) -> np.ndarray:
  """Tiles ``[n, height, width, channels]`` images into one ``[H, W, channels]`` array."""
  images = np.asarray(images, np.float32)
  if images.ndim != 4:
    raise ParameterError(f'expected images [n, height, width, channels], got {images.shape}')
  n, h, w, c = images.shape
  ncols = ncols or int(np.ceil(np.sqrt(n)))
  nrows = int(np.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value,
                 np.float32)
  for i in range(n):
    r, col = divmod(i, ncols)
    y0, x0 = pad + r * (h + pad), pad + col * (w + pad)
    grid[y0:y0 + h, x0:x0 + w] = images[i]
  return grid


def colorize(images, *, cmap='magma', flip_vertical=True) -> np.ndarray:
  """Single-channel images in [0, 1] -> RGB through a colour map.

  Spectrogram patches are ``[n, n_mels, n_frames, 1]`` with low bands first;
  ``flip_vertical`` puts low frequencies at the bottom, as people read them.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import colormaps  # pylint: disable=g-import-not-at-top
  x = np.clip(np.asarray(images, np.float32)[..., 0], 0.0, 1.0)
  if flip_vertical:
    x = x[:, ::-1]
  return colormaps[cmap](x)[..., :3].astype(np.float32)


def save_png(path: str, image: np.ndarray, *, scale: int = 1):
  """Writes ``[H, W, 1 or 3]`` in [0, 1] as PNG, atomically; ``scale`` repeats pixels."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  img = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
  if scale > 1:
    img = img.repeat(scale, axis=0).repeat(scale, axis=1)
  if img.shape[-1] == 1:
    img = np.repeat(img, 3, axis=-1)
  with atomic_path(path, suffix='.png') as tmp:
    plt.imsave(tmp, img, format='png')


def save_sample_grid(out_png: str, samples, meta=None, scale: int = 3):
  """Writes ``samples`` as ``<out>.npy`` and a PNG grid (mel patches colourised).

  Args:
    out_png: PNG path; the array goes beside it with the ``.npy`` suffix.
    samples: float ``[n, height, width, channels]`` in [0, 1].
    meta: the prior's config json (a melspec prior's samples are colourised).
    scale: integer upscaling of the PNG.
  """
  save_npy_atomic(os.path.splitext(out_png)[0] + '.npy', samples)
  imgs = samples
  if ((meta or {}).get('dataset') or {}).get('name') == 'melspec':
    imgs = colorize(samples)
  save_png(out_png, make_grid(imgs), scale=scale)
