"""BASIS warm-started from another separator's estimates (issue 23 item 3).

At a 20 dB balance the quiet source's prior claims part of the loud source
(docs/generalization.md, "Unequal levels"), and BASIS's loud source falls below
the unprocessed mixture in 6 of 8 tracks, while the U-Net keeps it above in 6
of 8. ``basis:guide=unet`` starts the chains from a guide's mel estimates (the
guide's waveforms through the priors' mel transform) plus the start level's
noise instead of from the mixture split, and runs the rest of the schedule: the
prior refines what the guide found. This study runs it with any basis options
(the start level, chains, ``magnitude=guide``) on a references folder, and the control
(``--guide_only``: the guide's mels through the same inversion, no Langevin
step). Estimates are written as ``<out_dir>/<track>/<source>.wav`` for
``evaluate_separation.py --estimates``.

  python -m experiments.studies.guided_start --references=out/level/references \\
      --guide=unet --start_level=5 --out_dir=out/guided/unet_s5
"""

import argparse
import json
import os
import sys
from typing import Dict, Optional, Sequence


from common.atomic import write_json_atomic
from experiments.studies.level_study import separate_track


def guided(references: str, out_dir: str, *, guide: str = 'unet', guide_only: bool = False,
           task: str = 'piano-violin', tracks: Optional[Sequence[str]] = None, log=print,
           **options) -> Dict:
  """Separates every track with ``basis:guide=GUIDE`` and the other basis ``options``;
  writes estimates and ``guided.json``. ``guide_only``: the control, the guide's mel
  estimates through BASIS's inversion (refiner + Wiener) with no Langevin step."""
  from experiments.basis_separator import images_to_waveforms  # pylint: disable=g-import-not-at-top
  from experiments.separators import load_separator  # pylint: disable=g-import-not-at-top
  sep = load_separator('basis', task=task, log=None, guide=guide, **options)
  model = sep.model
  if guide_only:
    def only(mixture, sample_rate):
      del sample_rate
      images = model._guide_images(model._run_guide(mixture))  # pylint: disable=protected-access
      waves = images_to_waveforms(images, mixture, model.transform, magnitude=model.magnitude,
                                  phase=model.options.phase,
                                  phase_iterations=model.options.phase_iterations,
                                  refiner=model.options.refiner)
      return dict(zip(model.sources, waves))
    model.separate = only
  record = {'task': task, 'guide': guide, 'guide_only': guide_only, 'options': options,
            'start_sigma': model.separator.start_sigma,
            'calls_per_source': 0 if guide_only else model.separator.calls_per_source,
            'chains': model.options.chains, 'tracks': {}}
  for track in sorted(tracks or os.listdir(references)):
    seconds, audio_s = separate_track(sep, os.path.join(references, track),
                                      os.path.join(out_dir, track))
    record['tracks'][track] = {'seconds': seconds, 'audio_s': audio_s}
    log(f'{track}: {seconds:.0f} s')
  write_json_atomic(os.path.join(out_dir, 'guided.json'), record)
  return record


def main(argv):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--references', required=True)
  p.add_argument('--out_dir', required=True)
  p.add_argument('--guide', default='unet')
  p.add_argument('--task', default='piano-violin')
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
                  task=args.task,
                  guide_only=args.guide_only,
                  **options)
  print(json.dumps({k: v for k, v in record.items() if k != 'tracks'}))


if __name__ == '__main__':
  main(sys.argv[1:])
