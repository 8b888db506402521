"""Level-normalised scoring at unequal levels (issue 23 item 3; docs/generalization.md).

Modes:

- ``typical``: the power-mean level of the priors' training patches (what
  ``experiments.basis_separator.PRIOR_LEVEL_DB`` holds);
- ``oracle``: BASIS with each prior scored at its source shifted to that level,
  the shift taken from the true sources (``level_normalise='given'``), on a
  references folder; estimates are written as ``<out_dir>/<track>/<source>.wav``
  for ``evaluate_separation.py --estimates=NAME=<out_dir>``. ``--shift=0``
  keeps the scores unshifted (the level split of the warm start only),
  ``--level_start=0`` the split equal (the shift only);
- ``oracle_patch``: the same with each patch's own true levels;
- ``levels``: the sources' true levels beside those of given estimate folders
  (how far a separation's level estimate is from the truth);
- ``table``: the loud and quiet source's SDR per track from report folders.

  python -m experiments.studies.level_study --mode=typical
  python -m experiments.studies.level_study --mode=oracle \\
      --references=out/level/references --out_dir=out/level_oracle/estimates
  python evaluate_separation.py --references=out/level/references \\
      --estimates=BASIS-oracle-level=out/level_oracle/estimates --out_dir=out/level_oracle/report
  python -m experiments.studies.level_study --mode=table \\
      --column=shipped=out/level_shipped/report:BASIS-wiener \\
      --column=oracle=out/level_oracle/report:BASIS-oracle-level
"""

import argparse
import json
import os
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from common.atomic import write_json_atomic
from pipeline import audio

SOURCES = ('piano', 'violin')
TRAIN_DIRS = {s: f'out/music/tfr/{s}/train' for s in SOURCES}


def typical_levels(train_dirs: Dict[str, str] = TRAIN_DIRS) -> Dict[str, Dict[str, float]]:
  """Percentiles of the power-mean level (dB) of each source's training patches."""
  from pipeline.tfrecords import patch_dataset  # pylint: disable=g-import-not-at-top
  from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
  from experiments.basis_separator import patch_levels_db  # pylint: disable=g-import-not-at-top
  out = {}
  for name, folder in train_dirs.items():
    ds = patch_dataset(folder, split='all', shuffle_buffer=0, batch_size=256)
    patches = np.concatenate([b.numpy() for b in ds])
    levels = patch_levels_db(patches, FeatureConfig())[:, 0]
    out[name] = {f'p{q}': float(np.percentile(levels, q)) for q in (5, 25, 50, 75, 95)}
    out[name]['floor_fraction'] = float(np.mean(patches <= 0.01))
    out[name]['n_patches'] = int(len(patches))
  return out


def source_levels(track_dir: str, transform, sources: Sequence[str], *,
                  input_peak: Optional[float]) -> np.ndarray:
  """The true sources' levels (dB) as the separator sees them (the seam's input gain applied)."""
  from experiments.basis_separator import track_level_db  # pylint: disable=g-import-not-at-top
  gain = 1.0
  if input_peak:
    mixture, _ = audio.load(os.path.join(track_dir, 'mixture.wav'))
    peak = float(np.max(np.abs(mixture)))
    gain = input_peak / peak if peak > 0 else 1.0
  out = []
  for name in sources:
    y, _ = audio.load(os.path.join(track_dir, f'{name}.wav'))
    image = transform.waveform_to_unit(np.asarray(y * gain, np.float32)).numpy()
    out.append(float(track_level_db(image, transform.config)))
  return np.asarray(out)


def separate_track(sep, track_dir: str, out_track_dir: str) -> Tuple[float, float]:
  """Separates ``track_dir/mixture.wav`` with a separator seam ``sep``; writes
  ``out_track_dir/<source>.wav``; returns (seconds taken, seconds of audio)."""
  mixture, rate = audio.load(os.path.join(track_dir, 'mixture.wav'))
  t0 = time.time()
  est = sep.separate(mixture, rate)
  seconds = time.time() - t0
  os.makedirs(out_track_dir, exist_ok=True)
  for name, y in est.items():
    audio.write_wav(os.path.join(out_track_dir, f'{name}.wav'), y, rate, subtype='FLOAT')
  return seconds, len(mixture) / rate


def oracle(references: str, out_dir: str, *, level_start: bool = True, shift: bool = True,
           tracks: Optional[Sequence[str]] = None, log=print, **options) -> Dict:
  """Separates every track with the true levels; writes estimates and ``levels.json``.

  ``shift=False`` keeps the priors unshifted (only the level split of the warm
  start uses the levels): the ablation of the score shift.
  """
  from experiments.separators import load_separator  # pylint: disable=g-import-not-at-top
  sep = load_separator('basis', task='piano-violin', log=None, level_normalise='given',
                       guide='off',
                       level_start=level_start, **options)
  model = sep.model
  if not shift:
    apply = model._apply_levels                       # pylint: disable=protected-access

    def apply_without_shift(levels):
      apply(levels)
      for prior in model.separator.priors:
        prior.set_offset(0.0)
    model._apply_levels = apply_without_shift         # pylint: disable=protected-access
  names = sorted(tracks or os.listdir(references))
  record = {}
  for track in names:
    track_dir = os.path.join(references, track)
    levels = source_levels(track_dir, model.transform, model.sources,
                           input_peak=model.input_peak)
    model.set_source_levels(levels)
    seconds, audio_s = separate_track(sep, track_dir, os.path.join(out_dir, track))
    record[track] = {'levels_db': dict(zip(model.sources, levels.tolist())),
                     'seconds': seconds, 'audio_s': audio_s}
    log(f'{track}: levels {np.round(levels, 1).tolist()} dB, {seconds:.0f} s')
  write_json_atomic(os.path.join(out_dir, 'levels.json'), record)
  return record


class _PatchLevels:
  """A compiled separator that shifts every patch by its own (true) levels.

  ``experiments.basis_separator.separate_image`` hands it batches of patches
  (chains as copies, the last batch padded with copies); each item is found
  among the track's patches by its bytes, and before the call every prior's
  offset and the warm-start split are set per item.
  """

  def __init__(self, model, patches: np.ndarray, levels_db: np.ndarray, *,
               level_start: bool, shift: bool, min_offset_db: float = -30.0,
               max_offset_db: float = 30.0):
    self.model = model
    self.separator = model.separator
    self.index = {np.ascontiguousarray(p).tobytes(): i for i, p in enumerate(patches)}
    self.levels = np.asarray(levels_db, np.float64)               # [K, n_patches]
    self.level_start, self.shift = level_start, shift
    self.bounds = (min_offset_db, max_offset_db)

  def __getattr__(self, name):
    return getattr(self.__dict__['separator'], name)

  def __call__(self, mixtures, **kwargs):
    idx = [self.index[np.ascontiguousarray(m).tobytes()] for m in np.asarray(mixtures)]
    levels = self.levels[:, idx]                                  # [K, batch]
    target = self.model.options.prior_level_db
    min_db, max_db = self.model.features.db_range
    offsets = np.clip(target - levels, *self.bounds) / (max_db - min_db)
    for k, prior in enumerate(self.separator.priors):
      prior.set_offset(offsets[k] if self.shift else 0.0)
    self.separator.set_start_shares(target - offsets * (max_db - min_db)
                                    if self.level_start else None, max_db - min_db)
    return self.separator(mixtures, **kwargs)


def oracle_per_patch(references: str, out_dir: str, *, level_start: bool = True,
                     shift: bool = True, tracks: Optional[Sequence[str]] = None, log=print,
                     **options) -> Dict:
  """As :func:`oracle`, with each patch's own true levels (not the track's median)."""
  from experiments import patching  # pylint: disable=g-import-not-at-top
  from experiments.basis_separator import (images_to_waveforms,  # pylint: disable=g-import-not-at-top
                                           patch_levels_db, separate_image)
  from experiments.separators import load_separator  # pylint: disable=g-import-not-at-top
  sep = load_separator('basis', task='piano-violin', log=None, level_normalise='given',
                       guide='off',
                       **options)
  model = sep.model
  opts = model.options
  width = model.features.patch_frames
  record = {}
  for track in sorted(tracks or os.listdir(references)):
    track_dir = os.path.join(references, track)
    mixture, rate = audio.load(os.path.join(track_dir, 'mixture.wav'))
    gain = opts.input_peak / float(np.max(np.abs(mixture))) if opts.input_peak else 1.0
    x = np.asarray(mixture * gain, np.float32)
    image = model.transform.waveform_to_unit(x).numpy()
    patches, _, _ = patching.split_into_patches(image, patch_frames=width,
                                                hop_frames=opts.hop_frames)
    levels = []
    for name in model.sources:
      y, _ = audio.load(os.path.join(track_dir, f'{name}.wav'))
      ref = model.transform.waveform_to_unit(np.asarray(y * gain, np.float32)).numpy()
      ref_patches, _, _ = patching.split_into_patches(ref, patch_frames=width,
                                                      hop_frames=opts.hop_frames)
      levels.append(patch_levels_db(ref_patches, model.features)[:, 0])
    levels = np.stack(levels)
    t0 = time.time()
    images, _ = separate_image(
        _PatchLevels(model, patches, levels, level_start=level_start, shift=shift), image,
        patch_frames=width, hop_frames=opts.hop_frames, batch_size=opts.batch_size,
        seed=opts.seed, chains=opts.chains, log=lambda line: None)
    waves = images_to_waveforms(images, x, model.transform, magnitude=model.magnitude,
                                phase=opts.phase, phase_iterations=opts.phase_iterations,
                                refiner=opts.refiner) / np.float32(gain)
    seconds = time.time() - t0
    os.makedirs(os.path.join(out_dir, track), exist_ok=True)
    for name, y in zip(model.sources, waves):
      audio.write_wav(os.path.join(out_dir, track, f'{name}.wav'), y[:len(mixture)], rate,
                      subtype='FLOAT')
    record[track] = {'patch_levels_db': {n: v.round(2).tolist()
                                         for n, v in zip(model.sources, levels)},
                     'seconds': seconds}
    log(f'{track}: patch levels {np.round(levels, 1).tolist()} dB, {seconds:.0f} s')
  write_json_atomic(os.path.join(out_dir, 'levels.json'), record)
  return record


def estimate_levels(references: str, estimates: Dict[str, str], *, log=print) -> Dict:
  """True source levels and each estimate folder's levels, per track (dB)."""
  from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
  from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
  transform = MelTransform(FeatureConfig())
  out = {}
  for track in sorted(os.listdir(references)):
    row = {'true': source_levels(os.path.join(references, track), transform, SOURCES,
                                 input_peak=0.3).round(2).tolist()}
    for label, folder in estimates.items():
      if os.path.isdir(os.path.join(folder, track)):
        row[label] = source_levels(os.path.join(folder, track), transform, SOURCES,
                                   input_peak=None).round(2).tolist()
    out[track] = row
    log(f'{track}: {row}')
  return out


def loud_table(columns: Dict[str, str]) -> str:
  """Markdown: per track, the loud and quiet source's SDR (median over windows) per column.

  Args:
    columns: ``{label: 'REPORT_DIR:METHOD'}``: an ``evaluate_separation.py``
      output folder and a method of it (its ``scores/<method>/<track>.json``).
      The mixture's row comes from the first folder. The loud source is the one
      not named by the track's ``_quiet_<source>`` suffix.
  """
  where = {label: spec.rsplit(':', 1) for label, spec in columns.items()}

  def scores(report_dir, method, track):
    path = os.path.join(report_dir, 'scores', method, f'{track}.json')
    if not os.path.exists(path):
      return None
    with open(path) as f:
      doc = json.load(f)
    return dict(zip(doc['sources'], doc['median']['SDR']))

  first = next(iter(where.values()))[0]
  mix_dir = os.path.join(first, 'scores', 'mixture-as-estimate')
  tracks = sorted(t[:-5] for t in os.listdir(mix_dir) if t.endswith('.json'))
  labels = ['mixture'] + list(where)
  lines = ['| track | loud | ' + ' | '.join(f'{m} loud / quiet' for m in labels) + ' |',
           '|---|---|' + '---:|' * len(labels)]
  loud_all = {m: [] for m in labels}
  quiet_all = {m: [] for m in labels}
  above = {m: 0 for m in labels}
  for track in tracks:
    quiet = track.rsplit('_quiet_', 1)[-1]
    mix = scores(first, 'mixture-as-estimate', track)
    loud = [n for n in mix if n != quiet][0]
    cells = []
    for m in labels:
      sdr = mix if m == 'mixture' else scores(*where[m], track)
      if sdr is None:
        cells.append('')
        continue
      loud_all[m].append(sdr[loud])
      quiet_all[m].append(sdr[quiet])
      above[m] += int(m != 'mixture' and sdr[loud] >= mix[loud])
      cells.append(f'{sdr[loud]:.2f} / {sdr[quiet]:.2f}')
    lines.append(f'| {track} | {loud} | ' + ' | '.join(cells) + ' |')
  lines.append('| median | | ' + ' | '.join(
      f'{np.median(loud_all[m]):.2f} / {np.median(quiet_all[m]):.2f}' if loud_all[m] else ''
      for m in labels) + ' |')
  lines.append('| loud >= mixture | | ' + ' | '.join(
      f'{above[m]} / {len(loud_all[m])}' for m in labels) + ' |')
  return '\n'.join(lines)


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--mode', choices=('typical', 'oracle', 'oracle_patch', 'levels', 'table'),
                      required=True)
  parser.add_argument('--column', action='append', default=[],
                      help='table: LABEL=REPORT_DIR:METHOD, once per column')
  parser.add_argument('--references', default='out/level/references')
  parser.add_argument('--out_dir', default='out/level_oracle/estimates')
  parser.add_argument('--level_start', type=int, default=1)
  parser.add_argument('--shift', type=int, default=1, help='oracle: 0 leaves the scores unshifted')
  parser.add_argument('--estimates', action='append', default=[], help='NAME=DIR (levels)')
  parser.add_argument('--option', action='append', default=[], help='basis option key=value')
  args = parser.parse_args(argv[1:])
  if args.mode == 'typical':
    print(json.dumps(typical_levels(), indent=1))
  elif args.mode in ('oracle', 'oracle_patch'):
    options = {}
    for item in args.option:
      key, value = item.split('=', 1)
      options[key] = json.loads(value)
    run = oracle if args.mode == 'oracle' else oracle_per_patch
    run(args.references, args.out_dir, level_start=bool(args.level_start),
           shift=bool(args.shift), **options)
  elif args.mode == 'table':
    print(loud_table(dict(c.split('=', 1) for c in args.column)))
  else:
    estimate_levels(args.references, dict(e.split('=', 1) for e in args.estimates))


if __name__ == '__main__':
  main(sys.argv)
