"""The README's main job: the shipped piano + violin mixture in, two wavs out, scored.

  1. the shipped 8.2 s duet (pipeline/demo_data, rendered by this project) is
     laid out as a references folder (<track>/mixture.wav, piano.wav, violin.wav);
  2. separate_audio's pipeline separates the mixture with the shipped piano
     and violin priors (BASIS, dB power-sum, Wiener from the estimated
     magnitudes) and inverts it a second time with MISI;
  3. the IBM / IRM / Wiener oracles separate it from the true sources;
  4. evaluation.report scores every method (BSS Eval v4, SI-SDR) and writes
     the table, box plots and report.html with players; a spectrogram figure
     shows mixture, estimates and truth.

Everything comes from the repository: no download, no root.
"""

import dataclasses
import os
import shutil
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from experiments import audio_separation
from pipeline import audio
from pipeline.atomic import write_json_atomic
from pipeline.config import FeatureConfig
from pipeline.demo import load_demo_clips
from pipeline.errors import ParameterError
from pipeline.transforms import MelTransform

TRACK = 'demo_duet'
ORACLES = ('IBM1', 'IRM1', 'IRM2')


@dataclasses.dataclass(frozen=True)
class DemoConfig:
  """What ``demo.py`` (``make demo``) runs.

  Attributes:
    out_dir: output folder.
    prior_dirs: the piano and violin priors (default: the shipped ones).
    steps_per_sigma: Langevin steps per noise level.
    extra_phase: a second inversion of the same separation (None: skip).
    precision: network precision (``'auto'``: pipeline.compute decides).
  """

  out_dir: str = 'out/demo'
  prior_dirs: Tuple[str, ...] = audio_separation.DEFAULT_PRIOR_DIRS
  steps_per_sigma: int = 100
  extra_phase: Optional[str] = 'misi'
  precision: str = 'auto'


def _write_track(folder: str, signals: Dict[str, np.ndarray], sample_rate: int):
  os.makedirs(folder, exist_ok=True)
  for name, y in signals.items():
    audio.write_wav(os.path.join(folder, f'{name}.wav'), y, sample_rate, subtype='FLOAT')


def run(config: DemoConfig, *, log=print) -> Dict[str, Any]:
  """Runs the demo; returns the summary written to ``out_dir/summary.json``."""
  from baselines import oracles  # pylint: disable=g-import-not-at-top
  from evaluation import report  # pylint: disable=g-import-not-at-top
  from inversion.figures import spectrogram_figure  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  features = FeatureConfig()
  clips = load_demo_clips(features)
  rate = features.sample_rate
  refs = os.path.join(config.out_dir, 'references')
  methods_dir = os.path.join(config.out_dir, 'methods')
  _write_track(os.path.join(refs, TRACK), clips, rate)
  sep_dir = os.path.join(config.out_dir, 'separation')
  sep = audio_separation.run(audio_separation.AudioSeparationConfig(
      input=os.path.join(refs, TRACK, 'mixture.wav'), out_dir=sep_dir,
      prior_dirs=tuple(config.prior_dirs), steps_per_sigma=config.steps_per_sigma,
      precision=config.precision, figure=False), log=log)
  names = list(sep['sources'])
  if sorted(names) != ['piano', 'violin']:
    raise ParameterError(f'the demo needs a piano and a violin prior, got sources {names}')
  estimates = {'BASIS-wiener': {n: audio.load(p)[0] for n, p in sep['sources'].items()}}
  if config.extra_phase:
    images = np.load(os.path.join(sep_dir, 'estimates_mel.npy'))
    transform = MelTransform(features)
    gain = 10.0 ** (sep['input_gain_db'] / 20.0)
    waves = audio_separation.images_to_waveforms(
        images, clips['mixture'] * np.float32(gain), transform, phase=config.extra_phase)
    estimates[f'BASIS-{config.extra_phase}'] = {n: w / gain for n, w in zip(names, waves)}
  estimates['mixture-as-estimate'] = {n: clips['mixture'] for n in names}
  for method, signals in estimates.items():
    _write_track(os.path.join(methods_dir, method, TRACK), signals, rate)
  log(f'oracles {", ".join(ORACLES)} from the true sources')
  oracles.run(oracles.OracleRunConfig(
      references_dir=refs, out_dir=methods_dir, overwrite=True,
      oracles=tuple(oracles.parse_method(m) for m in ORACLES)))
  report_dir = os.path.join(config.out_dir, 'report')
  shutil.rmtree(report_dir, ignore_errors=True)      # the estimates are new every run
  method_names = list(estimates)[:-1] + list(ORACLES) + ['mixture-as-estimate']
  result = report.run(report.ReportConfig(
      references_dir=refs, out_dir=report_dir,
      estimates=tuple((m, os.path.join(methods_dir, m)) for m in method_names)))
  fig = os.path.join(config.out_dir, 'spectrograms.png')
  spectrogram_figure(fig, {
      'mixture': clips['mixture'],
      **{f'{n} (BASIS + Wiener)': estimates['BASIS-wiener'][n] for n in names},
      **{f'{n} (truth)': clips[n] for n in names}}, MelTransform(features))
  table = report.table_markdown(result['rows'])
  summary = {
      'separation': sep, 'report_html': os.path.join(report_dir, 'report.html'),
      'tables': result['paths'], 'spectrograms_png': fig, 'rows': result['rows'],
      'wall_s': time.time() - t0}
  write_json_atomic(os.path.join(config.out_dir, 'summary.json'), summary)
  log('\n' + table)
  log(f'\nlisten: {summary["report_html"]}\nseparated wavs: '
      f'{", ".join(sep["sources"].values())}\nfigure: {fig}  ({summary["wall_s"]:.0f} s in all)')
  return summary
