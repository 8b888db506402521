"""Spectrogram figures of reconstructed sound (matplotlib, Agg, atomic PNG)."""

from typing import Dict

import numpy as np

from common.atomic import atomic_path
from pipeline.transforms import MelTransform


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
  dbs = {name: 20 * np.log10(np.abs(transform.stft(np.asarray(y, np.float32)).numpy()) + 1e-10)
         for name, y in clips.items()}
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
