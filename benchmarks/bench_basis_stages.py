"""Where ``--method=basis`` spends its time: start-up and each stage of a chunk.

  python benchmarks/bench_basis_stages.py --seconds=30 --rounds=3

Loads the shipped piano-violin BASIS separator as ``separate_audio.py`` does,
then separates one chunk of ``--seconds`` of the demo mixture (tiled) ``--rounds``
times after a warm-up round, timing each stage of ``BasisSeparator.separate``:
the mel image, the BASIS chains (the score calls: ``separate_image``), the mel ->
magnitude step (the refiner by default), the mixture STFT and the phase
(Wiener by default). Wall and CPU seconds (this process, all threads) are
reported per stage, per audio second and as a share; the CPU column is the one
to read on a shared machine, the wall column is what a user waits for. The
other processes' CPU use during the rounds is printed with the table.
"""

import os
import statistics
import sys
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

T_START = time.perf_counter(), os.times()

FLAGS = flags.FLAGS
flags.DEFINE_float('seconds', 30.0, 'Seconds of mixture per round (the seam\'s chunk: 30).')
flags.DEFINE_integer('rounds', 3, 'Timed rounds after the warm-up; medians are reported.')
flags.DEFINE_integer('steps_per_sigma', None, 'Override the sampler\'s steps (smoke runs).')


def _cpu():
  t = os.times()
  return t.user + t.system


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  from bench_features import OtherLoad  # pylint: disable=g-import-not-at-top
  from common import assets, compute  # pylint: disable=g-import-not-at-top
  from experiments import basis_separator as bs  # pylint: disable=g-import-not-at-top
  from experiments import separators  # pylint: disable=g-import-not-at-top
  from inversion import mel_to_linear  # pylint: disable=g-import-not-at-top
  from inversion import phase as phase_lib  # pylint: disable=g-import-not-at-top
  from pipeline import audio  # pylint: disable=g-import-not-at-top

  t_import = time.perf_counter() - T_START[0], _cpu() - sum(T_START[1][:2])
  t0, c0 = time.perf_counter(), _cpu()
  options = {} if FLAGS.steps_per_sigma is None else {'steps_per_sigma': FLAGS.steps_per_sigma}
  model = separators.load_separator('basis', task='piano-violin', log=None, **options).model
  t_load = time.perf_counter() - t0, _cpu() - c0
  y, rate = audio.load(os.path.join(assets.demo_dir(), 'mixture.wav'))
  y = np.resize(y, int(FLAGS.seconds * rate)).astype(np.float32)
  y *= np.float32(model.input_peak / np.max(np.abs(y)))
  t = model.transform
  stages = {}

  def timed(name, fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    stages.setdefault(name, []).append((time.perf_counter() - w, _cpu() - c))
    return out

  def one_round():
    bs._MEL_MEMO.clear()  # pylint: disable=protected-access
    image = timed('mel image', lambda: t.waveform_to_unit(y).numpy())
    guide = None
    if model.guide is not None:
      guide = timed(f'guide ({model.guide.label})',
                    lambda: model._run_guide(y))  # pylint: disable=protected-access
    images = timed('BASIS chains (score calls)',
                   lambda: model._separate_image(image, guide))  # pylint: disable=protected-access
    if model.magnitude == 'guide':
      mags = timed('mel gains on the guide\'s magnitudes',
                   lambda: mel_to_linear.mel_gain_magnitude(
                       t.spectrogram(guide).numpy(), t.unit_to_mel(images).numpy(), t))
    else:
      mags = timed(f'mel -> magnitude ({model.magnitude})',
                   lambda: mel_to_linear.mel_to_magnitude(
                       t.unit_to_mel(images).numpy(), method=model.magnitude, transform=t))
    mix_stft = timed('mixture STFT', lambda: t.stft(y).numpy())
    timed(f'phase ({model.options.phase})', lambda: np.asarray(phase_lib.reconstruct(
        model.options.phase, mags, mix_stft, transform=t, length=len(y),
        n_iter=model.options.phase_iterations).waveform))

  w, c = time.perf_counter(), _cpu()
  one_round()                                                  # warm-up: traces, caches
  t_first = time.perf_counter() - w, _cpu() - c
  stages.clear()
  with OtherLoad() as other:
    for _ in range(FLAGS.rounds):
      one_round()
  med = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs))
         for k, vs in stages.items()}
  total_w, total_c = sum(v[0] for v in med.values()), sum(v[1] for v in med.values())
  n_patches = model.stats['n_patches'] // (FLAGS.rounds + 1)
  print(f'\nCPU: {compute.cpu_description()}; precision {model.precision}; '
        f'{FLAGS.seconds:g} s chunk ({n_patches} patches, '
        f'{model.separator.settings()["calls_per_source"]} score calls per source and patch); '
        f'medians of {FLAGS.rounds} rounds; other processes used {other.cores:.2f} cores, '
        f'load average {os.getloadavg()[0]:.1f}\n')
  print('| stage | wall (s) | CPU (s) | wall per audio s | CPU per audio s | share of CPU |')
  print('|---|---:|---:|---:|---:|---:|')
  for name, (wv, cv) in list(med.items()) + [('chunk total', (total_w, total_c))]:
    print(f'| {name} | {wv:.2f} | {cv:.2f} | {wv / FLAGS.seconds:.3f} | '
          f'{cv / FLAGS.seconds:.3f} | {100 * cv / total_c:.0f} % |')
  print(f'| once: imports | {t_import[0]:.2f} | {t_import[1]:.2f} | | | |')
  print(f'| once: load separator (priors, refiner) | {t_load[0]:.2f} | {t_load[1]:.2f} | | | |')
  print(f'| once: first chunk (tracing) minus a later one | {t_first[0] - total_w:.2f} | '
        f'{t_first[1] - total_c:.2f} | | | |')


if __name__ == '__main__':
  app.run(main)
