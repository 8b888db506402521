"""The README's main job: the shipped piano + violin mixture in, two wavs out, scored.

  1. the shipped 8.2 s duet (assets/demo, rendered by this project) is
     laid out as a references folder (<track>/mixture.wav, piano.wav, violin.wav);
  2. experiments.evaluate_tracks runs the separator seam's methods on it: the
     shipped basis model of the piano-violin task (BASIS, dB power-sum; Wiener
     and MISI from the estimated magnitudes) and the IBM / IRM oracles from the
     true sources, and scores every method (BSS Eval v4, SI-SDR): table, box
     plots and report.html with players;
  3. the BASIS + Wiener wavs are copied to <out_dir>/separation/ and a
     spectrogram figure shows mixture, estimates and truth.

Everything comes from the repository: no download, no root.
"""

import dataclasses
import os
import time
from typing import Any, Dict, Optional, Tuple

from experiments import evaluate_tracks
from pipeline import audio
from common.atomic import write_json_atomic
from pipeline.config import FeatureConfig
from pipeline.demo import load_demo_clips
from common.errors import ParameterError
from pipeline.transforms import MelTransform

TRACK = 'demo_duet'


@dataclasses.dataclass(frozen=True)
class DemoConfig:
  """What ``demo.py`` (``make demo``) runs.

  Attributes:
    out_dir: output folder.
    prior_dirs: the piano and violin priors (default: the shipped basis model of
      the piano-violin task).
    sampler: 'fast' or 'paper' (``basis_separator.BasisOptions``).
    steps_per_sigma: Langevin steps per noise level (None: the sampler's).
    extra_phase: a second inversion of the same separation (None: skip).
    precision: network precision (``'auto'``: common.compute decides).
  """

  out_dir: str = 'out/demo'
  prior_dirs: Optional[Tuple[str, ...]] = None
  sampler: str = 'fast'
  steps_per_sigma: Optional[int] = None
  extra_phase: Optional[str] = 'misi'
  precision: str = 'auto'


def run(config: DemoConfig, *, log=print) -> Dict[str, Any]:
  """Runs the demo; returns the summary written to ``out_dir/summary.json``."""
  from inversion.figures import spectrogram_figure  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  features = FeatureConfig()
  clips = load_demo_clips(features)
  refs = os.path.join(config.out_dir, 'references')
  os.makedirs(os.path.join(refs, TRACK), exist_ok=True)
  for name, y in clips.items():
    audio.write_wav(os.path.join(refs, TRACK, f'{name}.wav'), y, features.sample_rate,
                    subtype='FLOAT')
  specs = ('basis',) + ((f'basis:phase={config.extra_phase}',) if config.extra_phase else ())
  basis_options = {'sampler': config.sampler, 'steps_per_sigma': config.steps_per_sigma,
                   'precision': config.precision}
  if config.prior_dirs:
    basis_options['prior_dirs'] = tuple(config.prior_dirs)
  evaluated = evaluate_tracks.run(evaluate_tracks.TrackEvalConfig(
      references_dir=refs, out_dir=config.out_dir, tracks=(TRACK,),
      methods=specs + evaluate_tracks.DEFAULT_ORACLES, task='piano-violin',
      method_options={'basis': basis_options}), log=log)
  basis_dir = os.path.join(config.out_dir, 'methods', 'BASIS-wiener', TRACK)
  names = sorted(f[:-4] for f in os.listdir(basis_dir) if f.endswith('.wav'))
  if names != ['piano', 'violin']:
    raise ParameterError(f'the demo needs a piano and a violin prior, got sources {names}')
  estimates = {n: audio.load(os.path.join(basis_dir, f'{n}.wav'))[0] for n in names}
  sep_dir = os.path.join(config.out_dir, 'separation')    # the BASIS + Wiener wavs, to listen
  os.makedirs(sep_dir, exist_ok=True)
  for n, y in estimates.items():
    audio.write_wav(os.path.join(sep_dir, f'{n}.wav'), y, features.sample_rate, subtype='FLOAT')
  fig = os.path.join(config.out_dir, 'spectrograms.png')
  spectrogram_figure(fig, {
      'mixture': clips['mixture'],
      **{f'{n} (BASIS + Wiener)': estimates[n] for n in names},
      **{f'{n} (truth)': clips[n] for n in names}}, MelTransform(features))
  summary = dict(evaluated, spectrograms_png=fig, separation_dir=sep_dir,
                 wall_s=time.time() - t0)
  write_json_atomic(os.path.join(config.out_dir, 'summary.json'), summary)
  log(f'\nlisten: {summary["report_html"]}\nseparated wavs: '
      f'{", ".join(os.path.join(sep_dir, n + ".wav") for n in names)}\n'
      f'figure: {fig}  ({summary["wall_s"]:.0f} s in all)')
  return summary
