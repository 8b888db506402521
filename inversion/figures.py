"""Spectrogram figures of reconstructed sound (matplotlib, Agg, atomic PNG)."""

from typing import Dict

import numpy as np

from common.atomic import atomic_path
from pipeline.transforms import MelTransform

# A figure is 1,000 pixels wide: longer clips are shown as the loudest bin of each group
# of frames, in at most this many columns, computed block by block (a 10-minute clip's
# whole STFT would take 0.6 GB per row; issue 27).
MAX_COLUMNS = 1000
BLOCK_FRAMES = 512


def stft_db_columns(y: np.ndarray, transform: MelTransform, *,
                    max_columns: int = MAX_COLUMNS) -> np.ndarray:
  """The STFT magnitude in dB, at most ``max_columns`` frames, in bounded memory.

  Args:
    y: float ``[n_samples]`` at the transform's rate.
    transform: the STFT.
    max_columns: int > 0, the most frames returned.

  Returns:
    float32 ``[n_columns, n_bins]``: ``20 log10(|STFT| + 1e-10)``, exactly the
    whole STFT's when it has at most ``max_columns`` frames, else the largest
    value of each group of ``ceil(n_frames / max_columns)`` frames.
  """
  c = transform.config
  y = np.asarray(y, np.float32)
  hop = c.hop_length
  n_frames = 1 + len(y) // hop
  group = -(-n_frames // max_columns)
  if not c.center or (group == 1 and n_frames <= BLOCK_FRAMES):
    return 20 * np.log10(np.abs(transform.stft(y).numpy()) + 1e-10)
  # Frames k0..k1-1 from the samples of frames k0-m .. k1-1+m (zeros outside the clip,
  # as the centring pads): m * hop >= n_fft / 2, so frames m.. of that piece's centred
  # STFT are the clip's frames k0.. exactly.
  m = -(-(c.n_fft // 2) // hop)
  block = group * max(1, BLOCK_FRAMES // group)
  columns = []
  for k0 in range(0, n_frames, block):
    k1 = min(n_frames, k0 + block)
    lo, hi = (k0 - m) * hop, (k1 - 1 + m) * hop + 1
    seg = np.pad(y[max(lo, 0):max(min(hi, len(y)), 0)],
                 (max(0, -lo), max(0, hi - max(lo, len(y)))))
    mag = np.abs(transform.stft(seg).numpy()[m:m + k1 - k0])   # [k1 - k0, n_bins]
    n = -(-(k1 - k0) // group) * group
    mag = np.pad(mag, ((0, n - len(mag)), (0, 0)))
    columns.append(20 * np.log10(mag.reshape(-1, group, mag.shape[-1]).max(axis=1) + 1e-10))
  return np.concatenate(columns).astype(np.float32)


def spectrogram_figure(path: str, clips: Dict[str, np.ndarray], transform: MelTransform,
                       *, dynamic_range_db: float = 80.0):
  """One row per clip: the STFT magnitude in dB (0 dB = the loudest bin of all).

  Args:
    path: PNG to write.
    clips: ``{title: waveform [n_samples]}``, float, at the transform's rate.
    transform: the STFT to show them with.
    dynamic_range_db: float > 0, dB shown below the peak.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  c = transform.config
  dbs = {name: stft_db_columns(y, transform) for name, y in clips.items()}
  top = max(float(d.max()) for d in dbs.values())
  fig, axes = plt.subplots(len(clips), 1, figsize=(10, 2.4 * len(clips)), sharex=True,
                           squeeze=False)
  for ax, (name, db) in zip(axes[:, 0], dbs.items()):
    seconds = len(clips[name]) / c.sample_rate
    im = ax.imshow(db.T, origin='lower', aspect='auto', cmap='magma',
                   vmin=top - dynamic_range_db, vmax=top,
                   extent=[0, seconds, 0, c.sample_rate / 2000])
    ax.set_ylabel('kHz')
    ax.set_title(name)
    fig.colorbar(im, ax=ax, label='dB')
  axes[-1, 0].set_xlabel('time (s)')
  fig.tight_layout()
  with atomic_path(path, suffix='.png') as tmp:
    fig.savefig(tmp, format='png', dpi=100)
  plt.close(fig)
