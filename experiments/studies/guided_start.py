"""BASIS warm-started from another separator's estimates (issue 23 item 3).

At a 20 dB balance the quiet source's prior claims part of the loud source
(docs/generalization.md, "Unequal levels"), and BASIS's loud source falls below
the unprocessed mixture in 6 of 8 tracks, while the U-Net keeps it above in 6
of 8. This study starts the chains from a guide's mel estimates (the guide's
waveforms through the priors' mel transform) plus the start level's noise
instead of from the mixture split, and runs the rest of the schedule: the
prior refines what the guide found. Estimates are written as
``<out_dir>/<track>/<source>.wav`` for ``evaluate_separation.py --estimates``.

  python -m experiments.studies.guided_start --references=out/level/references \\
      --guide=unet --start_level=5 --out_dir=out/guided/unet_s5
"""

import argparse
import json
import os
import sys
import time
from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from common.atomic import write_json_atomic
from pipeline import audio


class _Guided:
  """A compiled separator whose warm start is the guide's patch, found by the mixture
  patch's bytes (``separate_image`` hands it batches of patches, chains as copies)."""

  def __init__(self, separator, patches: np.ndarray, guides: np.ndarray):
    self.separator = separator
    self.index = {np.ascontiguousarray(p).tobytes(): i for i, p in enumerate(patches)}
    self.guides = guides                                          # [K, n_patches, ...]

  def __getattr__(self, name):
    return getattr(self.__dict__['separator'], name)

  def __call__(self, mixtures, **kwargs):
    idx = [self.index[np.ascontiguousarray(m).tobytes()] for m in np.asarray(mixtures)]
    start = tf.constant(self.guides[:, idx], tf.float32)
    sep = self.separator
    seed = kwargs.get('seed', 0)

    def warm_start(mixture, seed):
      noise = tf.random.stateless_normal(tuple(start.shape),
                                         tf.constant([int(seed), 0x3A37], tf.int32))
      return start + sep.start_sigma * noise

    sep.warm_start = warm_start
    try:
      return sep(mixtures, **kwargs)
    finally:
      del sep.warm_start
    del seed


def guided(references: str, out_dir: str, *, guide: str = 'unet', guide_only: bool = False,
           tracks: Optional[Sequence[str]] = None, log=print, **options) -> Dict:
  """Separates every track from the guide's estimates; writes estimates and ``guided.json``."""
  from experiments import patching  # pylint: disable=g-import-not-at-top
  from experiments.basis_separator import (images_to_waveforms,  # pylint: disable=g-import-not-at-top
                                           separate_image)
  from experiments.separators import load_separator  # pylint: disable=g-import-not-at-top
  model = load_separator('basis', task='piano-violin', log=None, **options).model
  guide_sep = load_separator(guide, task='piano-violin', log=None)
  opts = model.options
  width = model.features.patch_frames
  record = {'guide': guide, 'options': options,
            'start_sigma': model.separator.start_sigma,
            'calls_per_source': model.separator.calls_per_source, 'tracks': {}}
  for track in sorted(tracks or os.listdir(references)):
    track_dir = os.path.join(references, track)
    mixture, rate = audio.load(os.path.join(track_dir, 'mixture.wav'))
    mixture = audio.resample(mixture, orig_sr=rate, target_sr=model.sample_rate)
    gain = opts.input_peak / float(np.max(np.abs(mixture))) if opts.input_peak else 1.0
    x = np.asarray(mixture * gain, np.float32)
    t0 = time.time()
    g = guide_sep.separate(x, model.sample_rate)
    image = model.transform.waveform_to_unit(x).numpy()
    patches, _, _ = patching.split_into_patches(image, patch_frames=width,
                                                hop_frames=opts.hop_frames)
    guides = []
    for name in model.sources:
      gi = model.transform.waveform_to_unit(np.asarray(g[name], np.float32)).numpy()
      gp, _, _ = patching.split_into_patches(gi, patch_frames=width, hop_frames=opts.hop_frames)
      guides.append(gp)
    if guide_only:          # the control: the guide's mels through the same inversion
      images = np.stack([model.transform.waveform_to_unit(np.asarray(g[name], np.float32)
                                                          ).numpy() for name in model.sources])
    else:
      images, _ = separate_image(
        _Guided(model.separator, patches, np.stack(guides)), image,
        patch_frames=width, hop_frames=opts.hop_frames, batch_size=opts.batch_size,
        seed=opts.seed, chains=opts.chains, log=lambda line: None)
    waves = images_to_waveforms(images, x, model.transform, magnitude=model.magnitude,
                                phase=opts.phase, phase_iterations=opts.phase_iterations,
                                refiner=opts.refiner) / np.float32(gain)
    seconds = time.time() - t0
    waves = audio.resample(waves, orig_sr=model.sample_rate, target_sr=rate)
    os.makedirs(os.path.join(out_dir, track), exist_ok=True)
    n = len(audio.load(os.path.join(track_dir, 'mixture.wav'))[0])
    for name, y in zip(model.sources, waves):
      y = np.pad(y, (0, max(0, n - len(y))))[:n]
      audio.write_wav(os.path.join(out_dir, track, f'{name}.wav'), y, rate, subtype='FLOAT')
    record['tracks'][track] = {'seconds': seconds, 'audio_s': n / rate}
    log(f'{track}: {seconds:.0f} s')
  write_json_atomic(os.path.join(out_dir, 'guided.json'), record)
  return record


def main(argv):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--references', required=True)
  p.add_argument('--out_dir', required=True)
  p.add_argument('--guide', default='unet')
  p.add_argument('--option', action='append', default=[],
                 help='a basis option NAME=VALUE (start_level=5, chains=2, ...)')
  p.add_argument('--tracks', nargs='*')
  p.add_argument('--guide_only', action='store_true',
                 help="the control: the guide's mel estimates through BASIS's inversion")
  args = p.parse_args(argv)
  from experiments.separators import parse_value  # pylint: disable=g-import-not-at-top
  options = {}
  for text in args.option:
    name, _, value = text.partition('=')
    options[name] = parse_value(value)
  record = guided(args.references, args.out_dir, guide=args.guide, tracks=args.tracks,
                  guide_only=args.guide_only,
                  **options)
  print(json.dumps({k: v for k, v in record.items() if k != 'tracks'}))


if __name__ == '__main__':
  main(sys.argv[1:])
