r"""Benchmark: our fast Griffin-Lim and mel -> magnitude vs librosa's, side by side.

Same clips, same STFT, same initial phase, one run:

* phase: ``inversion.phase.fast_griffin_lim`` (momentum 0.99) on the whole
  batch of clips inside one ``tf.function`` vs ``librosa.griffinlim``
  (momentum 0.99) clip by clip; both start from zero phase (``init=None`` in
  librosa, ``init='zeros'`` here) so only the algorithm and its implementation
  differ. Reported: wall time per iteration for the whole batch and the
  median spectral convergence ``20 log10 ||V - |STFT(x)| || / ||V||`` of the
  rebuilt waveforms at each ``--n_iter``.
* magnitude: ``inversion.mel_to_linear.mel_to_magnitude`` (NNLS, batched; and
  the clipped pseudo-inverse) vs ``librosa.feature.inverse.mel_to_stft``
  (scipy L-BFGS-B NNLS per frame) on the power mel of the same clips.
  Reported: wall time and the errors ``||S^2 M - mel|| / ||mel||`` (mel fit)
  and ``20 log10 ||S - V|| / ||V||`` (against the true magnitude).

Clips: the shipped demo recordings (assets/demo: piano, violin and
their mixture, 8.2 s each) cut into ``--clip_s`` second pieces. Rounds
alternate the two sides so background load hits both alike; medians of
``--rounds`` rounds; the CPU time other processes took is printed too.

Usage (from the repository root):

  PYTHONPATH=. python benchmarks/bench_inversion.py --rounds=3
"""

import os
import statistics
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import librosa  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from bench_features import OtherLoad  # pylint: disable=g-import-not-at-top,wrong-import-position
from common import assets, compute  # pylint: disable=g-import-not-at-top,wrong-import-position
from inversion import mel_to_linear  # pylint: disable=g-import-not-at-top,wrong-import-position
from inversion import phase  # pylint: disable=g-import-not-at-top,wrong-import-position
from inversion import stft as stft_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline import audio  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_integer('rounds', 3, 'Rounds (medians are reported).')
flags.DEFINE_multi_integer('n_iter', [32, 100], 'Phase iterations to compare.')
flags.DEFINE_float('clip_s', 4.0, 'Seconds per clip.')
flags.DEFINE_integer('nnls_iter', 50, 'Our NNLS steps.')

DEMO = assets.demo_dir()


def load_clips(config: FeatureConfig, clip_s: float) -> np.ndarray:
  """``[n_clips, n_samples]`` float32 pieces of the demo recordings."""
  n = int(clip_s * config.sample_rate) // config.hop_length * config.hop_length
  clips = []
  for name in ('piano', 'violin', 'mixture'):
    y, _ = audio.load(os.path.join(DEMO, name + '.wav'), sample_rate=config.sample_rate)
    clips += [y[i:i + n] for i in range(0, len(y) - n + 1, n)]
  return np.stack(clips).astype(np.float32)


def _timed(fn):
  start = time.perf_counter()
  out = fn()
  return time.perf_counter() - start, out


def main(argv):
  del argv
  config = FeatureConfig()
  c = config
  t = MelTransform(config)
  clips = load_clips(config, FLAGS.clip_s)
  length = clips.shape[1]
  target = tf.abs(t.stft(clips))                              # [n, frames, bins]
  target_np = target.numpy()
  mel = t.spectrogram_to_mel(tf.square(target))              # power mel [n, frames, n_mels]
  mel_np = mel.numpy()
  print(f'CPU: {compute.cpu_model()}; TF {tf.__version__}, librosa {librosa.__version__}, '
        f'oneDNN {os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")}')
  print(f'{len(clips)} clips of {length / c.sample_rate:.2f} s, n_fft {c.n_fft}, hop '
        f'{c.hop_length}, {c.n_mels} mels {c.fmin:g}-{c.fmax:g} Hz; {FLAGS.rounds} rounds\n')

  ours_fns = {n: tf.function(lambda v, n=n: phase.fast_griffin_lim(
      v, n_iter=n, momentum=0.99, transform=t, init='zeros', length=length).waveform)
              for n in FLAGS.n_iter}
  for fn in ours_fns.values():
    fn(target)  # trace

  def librosa_gla(n):
    return np.stack([librosa.griffinlim(
        v.T, n_iter=n, hop_length=c.hop_length, n_fft=c.n_fft, window='hann',
        center=True, length=length, momentum=0.99, init=None) for v in target_np])

  def sc(wave):
    return float(np.median(stft_lib.spectral_convergence(target_np, t.stft(wave).numpy())))

  nnls_fn = tf.function(lambda m: mel_to_linear.mel_to_magnitude(
      m, method='nnls', transform=t, n_iter=FLAGS.nnls_iter))
  pinv_fn = tf.function(lambda m: mel_to_linear.mel_to_magnitude(m, method='pinv', transform=t))
  nnls_fn(mel), pinv_fn(mel)

  def librosa_nnls():
    return np.stack([librosa.feature.inverse.mel_to_stft(
        m.T, sr=c.sample_rate, n_fft=c.n_fft, power=2.0, fmin=c.fmin, fmax=c.fmax).T
                     for m in mel_np])

  librosa.griffinlim(target_np[0].T, n_iter=2, hop_length=c.hop_length, n_fft=c.n_fft)
  librosa.feature.inverse.mel_to_stft(mel_np[0].T, sr=c.sample_rate, n_fft=c.n_fft,
                                      fmin=c.fmin, fmax=c.fmax)  # warm-up (caches)
  times = {}
  outs = {}
  with OtherLoad() as other:
    for _ in range(FLAGS.rounds):
      for n in FLAGS.n_iter:
        dt, outs[('librosa', n)] = _timed(lambda n=n: librosa_gla(n))
        times.setdefault(('librosa', n), []).append(dt)
        dt, w = _timed(lambda n=n: ours_fns[n](target).numpy())
        outs[('ours', n)] = w
        times.setdefault(('ours', n), []).append(dt)
      dt, outs['librosa_nnls'] = _timed(librosa_nnls)
      times.setdefault('librosa_nnls', []).append(dt)
      dt, outs['nnls'] = _timed(lambda: nnls_fn(mel).numpy())
      times.setdefault('nnls', []).append(dt)
      dt, outs['pinv'] = _timed(lambda: pinv_fn(mel).numpy())
      times.setdefault('pinv', []).append(dt)
  med = {k: statistics.median(v) for k, v in times.items()}

  print('| phase retrieval (FGLA, momentum 0.99) | iterations | ms / iteration (batch) '
        '| spectral convergence (median, dB) |')
  print('| --- | ---: | ---: | ---: |')
  for n in FLAGS.n_iter:
    for side, label in (('librosa', '`librosa.griffinlim`, clip by clip'),
                        ('ours', '`inversion.phase.fast_griffin_lim`, batched')):
      print(f'| {label} | {n} | {1000 * med[(side, n)] / n:.1f} | {sc(outs[(side, n)]):.2f} |')
    print(f'| speed-up | {n} | {med[("librosa", n)] / med[("ours", n)]:.1f}x | |')

  def errors(mag):
    fit = mel_to_linear.mel_fit_error(mel_np, mag, transform=t)
    sc_db = float(20 * np.log10(np.linalg.norm(mag - target_np) / np.linalg.norm(target_np)))
    return fit, sc_db

  print('\n| mel -> magnitude | time (s, batch) | mel fit error | error vs true magnitude (dB) |')
  print('| --- | ---: | ---: | ---: |')
  for key, label in (('librosa_nnls', '`librosa.feature.inverse.mel_to_stft` (L-BFGS-B NNLS)'),
                     ('nnls', f'`mel_to_magnitude(method=\'nnls\')`, {FLAGS.nnls_iter} steps'),
                     ('pinv', '`mel_to_magnitude(method=\'pinv\')`')):
    fit, sc_db = errors(outs[key])
    print(f'| {label} | {med[key]:.3f} | {fit:.2e} | {sc_db:.2f} |')
  print(f'| speed-up NNLS | {med["librosa_nnls"] / med["nnls"]:.1f}x | | |')
  print(f'\nother processes used {other.cores:.2f} cores on average during the run')


if __name__ == '__main__':
  app.run(main)
