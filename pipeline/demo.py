"""The shipped demo clips: an 8.2 s piano + violin duet and its sources.

Rendered by this project with fluidsynth (``assets/demo/manifest.json``
says how). The demo itself (``make demo``) lives in ``experiments.demo``.
"""

import os
from typing import Dict

import numpy as np

from common import assets
from pipeline import audio
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform

SOURCES = ('mixture', 'piano', 'violin')


def load_demo_clips(features: FeatureConfig) -> Dict[str, np.ndarray]:
  """The shipped clips at ``features.sample_rate``.

  Raises:
    ParameterError: if the demo files are missing (a broken install).
  """
  clips = {}
  for name in SOURCES:
    path = os.path.join(assets.demo_dir(), f'{name}.wav')
    if not os.path.exists(path):
      raise ParameterError(f'demo clip {path} is missing; reinstall the package')
    clips[name], _ = audio.load(path, sample_rate=features.sample_rate)
  return clips


def spectrogram_figure(path: str, clips: Dict[str, np.ndarray], transform: MelTransform):
  """Mel spectrograms in dB of each clip, with the patch borders dashed."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  from pipeline.filterbank import mel_to_hz, hz_to_mel  # pylint: disable=g-import-not-at-top
  c = transform.config
  fig, axes = plt.subplots(len(clips), 1, figsize=(10, 2.6 * len(clips)), sharex=True)
  edges_hz = mel_to_hz(np.linspace(hz_to_mel(c.fmin), hz_to_mel(c.fmax), c.n_mels + 2))
  centres = edges_hz[1:-1]
  for ax, (name, y) in zip(axes, clips.items()):
    db = transform.power_to_db(transform.spectrogram_to_mel(transform.spectrogram(y))).numpy()
    seconds = len(y) / c.sample_rate
    im = ax.imshow(db.T, origin='lower', aspect='auto', cmap='magma',
                   vmin=transform.min_db, vmax=transform.max_db,
                   extent=[0, seconds, 0, c.n_mels])
    for k in range(1, int(len(y) // c.patch_samples) + 1):
      ax.axvline(k * c.patch_samples / c.sample_rate, color='w', ls='--', lw=0.8)
    ticks = [i for i in range(0, c.n_mels, 16)]
    ax.set_yticks(ticks, [f'{centres[i]:.0f}' for i in ticks])
    ax.set_ylabel('mel band centre (Hz)')
    ax.set_title(f'{name}: mel power (dB), {c.n_mels} Slaney bands, dashed = '
                 f'{c.patch_samples / c.sample_rate:.2f} s patches')
    fig.colorbar(im, ax=ax, label='dB')
  axes[-1].set_xlabel('time (s)')
  fig.tight_layout()
  from common.atomic import atomic_path  # pylint: disable=g-import-not-at-top
  with atomic_path(path, suffix='.png') as tmp:
    fig.savefig(tmp, format='png', dpi=110)
  plt.close(fig)
