r"""Benchmark: waveform -> mel patches, batched TensorFlow vs a librosa loop.

Turns the same audio (a seeded synthetic 60 s piece of decaying harmonic notes
plus a little noise at 16 kHz, or ``--wav``) into ``[n_patches, 96, 64, 1]``
patches in [0, 1] two ways, in one run:

* ``pipeline``: ``MelTransform.waveform_to_patches`` on the whole waveform,
  batched over the windows, inside one ``tf.function`` (numpy in, numpy out).
  The first call (trace + run) is reported apart from the steady state.
* ``librosa``: for each 32,640-sample window,
  ``librosa.feature.melspectrogram(y=clip, sr=16000, n_fft=2048,
  hop_length=512, n_mels=96, fmin=125, fmax=7600)``, clipped to
  [1e-10, 100], ``10 log10``, then ``(dB + 100) / 120``.

Both stop at the last full window (the partial tail is dropped). Each of
``--repeats`` rounds times the librosa loop, then the pipeline right after it
and once more back-to-back, so background load hits all rows alike. The two
pipeline rows differ because on 2 cores TensorFlow's second worker thread has
gone idle during the single-threaded librosa loop and the next call runs
mostly on one core; back-to-back calls keep both cores busy. Medians and the
ratios are printed as a markdown table, together with the CPU time other
processes took during the run; the run fails unless the two outputs agree
within ``--tolerance`` (unit scale) and the ``tf.function`` traced once.

Usage (from the repository root):

  PYTHONPATH=. python benchmarks/bench_features.py --repeats=20
"""

import os
import statistics
import sys
import time
from typing import Callable, Dict, List

from absl import app
from absl import flags

# Runnable as `python benchmarks/bench_features.py` without installing.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import librosa  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from pipeline import audio  # pylint: disable=g-import-not-at-top,wrong-import-position
from common import compute  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top,wrong-import-position
from common.errors import ParameterError  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string('wav', None, 'Audio file to use instead of the synthetic '
                    'piece; mixed to mono and resampled to 16 kHz.')
flags.DEFINE_float('duration_s', 60.0, 'Seconds of audio (synthetic length, or '
                   'the head of --wav).')
flags.DEFINE_integer('repeats', 20, 'Timed rounds; medians are reported.')
flags.DEFINE_integer('seed', 0, 'Seed of the synthetic audio.')
flags.DEFINE_float('tolerance', 1e-5, 'Largest allowed |pipeline - librosa| '
                   'on the [0, 1] scale.')
flags.DEFINE_integer('intra_op_threads', 0, 'tf.config.threading intra-op '
                     'threads; 0 keeps the TensorFlow default.')
flags.DEFINE_bool('jit_compile', True, 'Compile the pipeline tf.function '
                  'with XLA (one compilation per input length).')


def synthetic_piece(duration_s: float, sample_rate: int, *,
                    seed: int) -> np.ndarray:
  """A deterministic, music-like test signal.

  About two notes per second (MIDI 36-96) with random onsets, 1-10 harmonics
  of ``1 / k`` amplitude (slightly detuned), a 5 ms attack and an exponential
  decay, overlapping freely, plus white noise 50 dB below full scale.

  Args:
    duration_s: float > 0, seconds.
    sample_rate: int > 0, Hz.
    seed: seed of the ``numpy`` generator.

  Returns:
    float32 ``[round(duration_s * sample_rate)]`` with peak 0.9.
  """
  rng = np.random.default_rng(seed)
  n_samples = int(round(duration_s * sample_rate))
  y = np.zeros(n_samples, np.float64)
  for _ in range(max(1, int(2 * duration_s))):
    start = int(rng.integers(0, n_samples))
    length = min(int(rng.uniform(0.3, 2.5) * sample_rate), n_samples - start)
    t = np.arange(length) / sample_rate
    f0 = 440.0 * 2.0 ** ((rng.integers(36, 97) - 69) / 12.0)
    note = np.zeros(length)
    for k in range(1, int(rng.integers(1, 11)) + 1):
      fk = k * f0 * (1.0 + rng.uniform(-1e-3, 1e-3))
      if fk >= sample_rate / 2:
        break
      note += np.sin(2 * np.pi * fk * t + rng.uniform(0, 2 * np.pi)) / k
    envelope = np.minimum(t / 0.005, 1.0) * np.exp(-t / rng.uniform(0.2, 1.0))
    y[start:start + length] += rng.uniform(0.2, 1.0) * envelope * note
  y += 10.0 ** (-50.0 / 20.0) * rng.standard_normal(n_samples)
  return (0.9 * y / np.abs(y).max()).astype(np.float32)


def librosa_patches(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
  """The plain per-window librosa loop.

  Args:
    y: float32 ``[n_samples]`` at ``config.sample_rate``.
    config: the feature parameters.

  Returns:
    float32 ``[n_patches, n_mels, patch_frames, 1]`` in [0, 1].
  """
  c = config
  min_db, max_db = c.db_range
  out = []
  for i in range(len(y) // c.patch_samples):
    clip = y[i * c.patch_samples:(i + 1) * c.patch_samples]
    mel = librosa.feature.melspectrogram(
        y=clip, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length,
        n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax)
    db = 10.0 * np.log10(np.clip(mel, c.amin, c.amax))
    out.append((db - min_db) / (max_db - min_db))
  return np.stack(out)[..., np.newaxis].astype(np.float32)


def _timed(fn: Callable[[], np.ndarray]):
  start = time.perf_counter()
  result = fn()
  return time.perf_counter() - start, result


PIPELINE_COLD = 'pipeline, after librosa'
PIPELINE_WARM = 'pipeline, back-to-back'
LIBROSA = 'librosa loop'


def run_benchmark(y: np.ndarray, config: FeatureConfig, *, repeats: int,
                  jit_compile: bool = False) -> Dict[str, object]:
  """Times both paths on ``y`` and compares their outputs.

  Each round runs the librosa loop, then the pipeline twice: the first
  pipeline call follows ~60 ms of single-threaded librosa work (TensorFlow's
  second worker thread has gone idle), the second follows the first at once
  (the throughput of a loop that only extracts features).

  Args:
    y: float32 ``[n_samples]`` at ``config.sample_rate``.
    config: the feature parameters.
    repeats: int > 0, timed rounds after the first call of each path.
    jit_compile: compile the pipeline's ``tf.function`` with XLA.

  Returns:
    dict with ``first`` (seconds, first call incl. tracing) and ``times``
    (seconds per round) keyed by row name, ``outputs`` (``pipeline`` and
    ``librosa`` patches) and ``traces``, the trace count of the
    ``tf.function``.
  """
  transform = MelTransform(config)
  to_patches = tf.function(
      transform.waveform_to_patches,
      input_signature=[tf.TensorSpec([None], tf.float32)],
      jit_compile=jit_compile)
  pipeline = lambda: to_patches(tf.convert_to_tensor(y)).numpy()
  reference = lambda: librosa_patches(y, config)
  first, outputs = {}, {}
  first[PIPELINE_COLD], outputs['pipeline'] = _timed(pipeline)
  first[LIBROSA], outputs['librosa'] = _timed(reference)
  times: Dict[str, List[float]] = {
      PIPELINE_COLD: [], PIPELINE_WARM: [], LIBROSA: []}
  for _ in range(repeats):
    for name, fn in ((LIBROSA, reference), (PIPELINE_COLD, pipeline),
                     (PIPELINE_WARM, pipeline)):
      times[name].append(_timed(fn)[0])
  return dict(first=first, times=times, outputs=outputs,
              traces=to_patches.experimental_get_tracing_count())


def markdown_table(result: Dict[str, object], n_patches: int,
                   audio_s: float) -> str:
  """Formats the timings as a markdown table (milliseconds)."""
  reference = statistics.median(result['times'][LIBROSA])
  rows = ['| path | first call (ms) | median (ms) | min (ms) | max (ms) '
          '| ms / patch | x real time | librosa / path |',
          '|---|---:|---:|---:|---:|---:|---:|---:|']
  for name, ts in result['times'].items():
    med = statistics.median(ts)
    first = result['first'].get(name)
    first = '-' if first is None else f'{1e3 * first:.1f}'
    rows.append(
        f'| {name} | {first} | {1e3 * med:.1f} | {1e3 * min(ts):.1f} | '
        f'{1e3 * max(ts):.1f} | {1e3 * med / n_patches:.2f} | '
        f'{audio_s / med:.0f} | {reference / med:.2f} |')
  return '\n'.join(rows)


class OtherLoad:
  """Measures the CPU time that other processes take during a block.

  Busy time of the whole machine (``/proc/stat``) minus this process's own
  CPU time (all its threads), per second of wall time: about 0 on an idle
  machine, 1.0 when another process keeps one core busy.
  """

  def __enter__(self):
    self._start = self._snapshot()
    return self

  def __exit__(self, *exc):
    (busy0, own0, wall0), (busy1, own1, wall1) = self._start, self._snapshot()
    self.cores = max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall1 - wall0)
    return False

  @staticmethod
  def _snapshot():
    busy = float('nan')
    try:
      with open('/proc/stat', encoding='utf-8') as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
      busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError):
      pass
    t = os.times()
    return busy, t.user + t.system, time.perf_counter()


def main(argv):
  del argv  # Unused.
  if FLAGS.repeats <= 0:
    raise app.UsageError(f'--repeats must be > 0, got {FLAGS.repeats}')
  if FLAGS.intra_op_threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
  config = FeatureConfig()
  if FLAGS.wav:
    try:
      y, _ = audio.load(FLAGS.wav, sample_rate=config.sample_rate)
    except ParameterError as e:
      raise app.UsageError(str(e)) from e
    y = y[:int(round(FLAGS.duration_s * config.sample_rate))]
    source = FLAGS.wav
  else:
    y = synthetic_piece(FLAGS.duration_s, config.sample_rate, seed=FLAGS.seed)
    source = f'synthetic (seed {FLAGS.seed})'
  n_patches = len(y) // config.patch_samples
  if n_patches == 0:
    raise app.UsageError(f'need at least {config.patch_samples} samples, got '
                         f'{len(y)}')
  with OtherLoad() as other:
    result = run_benchmark(y, config, repeats=FLAGS.repeats,
                           jit_compile=FLAGS.jit_compile)

  ours, ref = result['outputs']['pipeline'], result['outputs']['librosa']
  if ours.shape != ref.shape:
    raise AssertionError(f'shapes differ: {ours.shape} vs {ref.shape}')
  max_diff = float(np.abs(ours - ref).max())
  print(f'audio: {source}, {len(y) / config.sample_rate:.2f} s -> '
        f'{n_patches} patches {ours.shape[1:]}')
  print(f'machine: {compute.cpu_model()}, {os.cpu_count()} CPUs; TF '
        f'{tf.__version__}, librosa {librosa.__version__}, numpy '
        f'{np.__version__}; intra-op threads '
        f'{tf.config.threading.get_intra_op_parallelism_threads() or "default"}')
  print(f'repeats: {FLAGS.repeats}; tf.function traces: {result["traces"]}; '
        f'XLA: {FLAGS.jit_compile}; other processes used {other.cores:.2f} '
        'cores during the run\n')
  print(markdown_table(result, n_patches, n_patches * config.patch_samples /
                       config.sample_rate))
  med = {k: statistics.median(v) for k, v in result['times'].items()}
  print(f'\nratio librosa / pipeline (medians): '
        f'{med[LIBROSA] / med[PIPELINE_COLD]:.2f}x after librosa, '
        f'{med[LIBROSA] / med[PIPELINE_WARM]:.2f}x back-to-back')
  print(f'max |pipeline - librosa|: {max_diff:.3g} (unit scale), '
        f'{120 * max_diff:.3g} dB')
  if not max_diff <= FLAGS.tolerance:
    raise AssertionError(f'outputs differ by {max_diff:.3g} > --tolerance='
                         f'{FLAGS.tolerance:g}')
  if result['traces'] != 1:
    raise AssertionError(f'tf.function traced {result["traces"]} times, not 1')


if __name__ == '__main__':
  app.run(main)
