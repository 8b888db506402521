"""BSS Eval v4: ours against museval (and fast_bss_eval), same signals, same machine.

  python benchmarks/bench_bss_eval.py --museval_python=/tmp/museval_venv/bin/python

museval needs numpy >= 2 and ffmpeg, so it runs in its own environment
(tests/fixtures/make_museval_fixture.py says how it was made), and so does
fast_bss_eval, with numpy < 2 (``python3 -m venv /tmp/fbe_venv;
/tmp/fbe_venv/bin/pip install 'numpy<2' scipy fast_bss_eval``): the signals are saved once to an .npz, the other
environment scores them in a subprocess and sends its values back.

Cases: 2 sources x 10 s and 4 sources x 60 s at 16 kHz (mono, the fixture's
harmonic-plus-noise recipe), 1 s windows and hops as in SiSEC. Reported: the
best of ``--repeats`` wall-clock times, the ratio, and the largest absolute
difference in dB over every framewise SDR/SIR/SAR/ISR value. fast_bss_eval
computes another quantity (BSS Eval's "sources" variant over the whole signal,
no windows), so its values are compared with museval's own whole-signal
``bss_eval_sources``-style call, not with v4.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tests', 'fixtures'))

from evaluation.bss_eval import bss_eval_v4  # pylint: disable=g-import-not-at-top,wrong-import-position
import museval_signals  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string('museval_python', '/tmp/museval_venv/bin/python',
                    'Python of an environment with museval (empty: time ours only).')
flags.DEFINE_string('fast_bss_eval_python', '/tmp/fbe_venv/bin/python',
                    'Python of an environment with fast_bss_eval and numpy < 2 '
                    '(empty: skip it).')
flags.DEFINE_integer('repeats', 3, 'Timed runs per tool (best is reported).')
flags.DEFINE_string('out', None, 'Optional json file for the results.')
flags.DEFINE_bool('smoke', False, 'One 2 sources x 2 s case only (checks that the script runs).')

CASES = ((2, 10.0), (4, 60.0))
SMOKE_CASES = ((2, 2.0),)
RATE = museval_signals.SAMPLE_RATE

_MUSEVAL_CHILD = r'''
import json, sys, time, warnings
import numpy as np
import museval
from museval import metrics
warnings.simplefilter('ignore')
data = np.load(sys.argv[1])
repeats = int(sys.argv[2])
refs = np.moveaxis(data['references'], 1, 2)      # museval: [src, samples, chan]
ests = np.moveaxis(data['estimates'], 1, 2)
rate = int(data['rate'])
times = {}
best = np.inf
for _ in range(repeats):
  t = time.perf_counter()
  sdr, isr, sir, sar = museval.evaluate(refs, ests, win=rate, hop=rate, mode='v4')
  best = min(best, time.perf_counter() - t)
times['museval'] = best
# museval's whole-signal "sources" variant: the quantity fast_bss_eval computes.
t = time.perf_counter()
m_sdr, _, m_sir, m_sar, _ = metrics.bss_eval(
    refs, ests, window=np.inf, hop=np.inf, compute_permutation=False,
    framewise_filters=True, bsseval_sources_version=True)
times['museval_sources_whole'] = time.perf_counter() - t
np.savez(sys.argv[3], SDR=sdr, SIR=sir, SAR=sar, ISR=isr, M_SDR=m_sdr[:, 0],
         M_SIR=m_sir[:, 0], M_SAR=m_sar[:, 0])
print(json.dumps(times))
'''

# fast_bss_eval 0.1.4 fails under numpy 2 (np.linalg.solve's batching changed),
# so it gets an environment of its own with numpy < 2.
_FAST_CHILD = r'''
import json, sys, time
import numpy as np
import fast_bss_eval
data = np.load(sys.argv[1])
repeats = int(sys.argv[2])
best = np.inf
for _ in range(repeats):
  t = time.perf_counter()
  sdr, sir, sar = fast_bss_eval.bss_eval_sources(
      data['references'][:, 0], data['estimates'][:, 0], filter_length=512,
      compute_permutation=False)
  best = min(best, time.perf_counter() - t)
np.savez(sys.argv[3], F_SDR=sdr, F_SIR=sir, F_SAR=sar)
print(json.dumps({'fast_bss_eval': best}))
'''


def _signals(n_sources, seconds):
  rng = np.random.RandomState(1000 + n_sources)
  n = int(seconds * RATE)
  freqs = (196.0, 262.0, 330.0, 440.0, 523.0, 660.0)[:n_sources]
  refs = np.stack([museval_signals._source(rng, 1, n, f) for f in freqs])  # pylint: disable=protected-access
  ests = museval_signals._estimates(rng, refs, leak=0.2, noise=0.05)    # pylint: disable=protected-access
  return refs, ests


def _child(python, code, inputs, values):
  proc = subprocess.run([python, '-c', code, inputs, str(FLAGS.repeats), values],
                        capture_output=True, text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f'{python} failed:\n{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(values))


def _max_diff(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
    return np.inf
  finite = np.isfinite(a)
  return float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0


def main(argv):
  del argv
  cpu = 'unknown'
  if os.path.exists('/proc/cpuinfo'):
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      cpu = next((line.split(':', 1)[1].strip() for line in f if 'model name' in line), cpu)
  results = []
  with tempfile.TemporaryDirectory() as tmp:
    for n_sources, seconds in (SMOKE_CASES if FLAGS.smoke else CASES):
      refs, ests = _signals(n_sources, seconds)
      inputs = os.path.join(tmp, 'inputs.npz')
      np.savez(inputs, references=refs, estimates=ests, rate=RATE)
      ours = np.inf
      for _ in range(FLAGS.repeats):
        t = time.perf_counter()
        result = bss_eval_v4(refs, ests, sample_rate=RATE, window_s=1.0, hop_s=1.0)
        ours = min(ours, time.perf_counter() - t)
      row = {'case': f'{n_sources} sources x {seconds:g} s', 'ours_s': ours,
             'museval_s': float('nan'), 'speedup': float('nan'),
             'max_abs_diff_db': float('nan')}
      if FLAGS.museval_python:
        values = os.path.join(tmp, 'values.npz')
        times, theirs = _child(FLAGS.museval_python, _MUSEVAL_CHILD, inputs, values)
        row.update(museval_s=times['museval'], speedup=times['museval'] / ours,
                   max_abs_diff_db=max(_max_diff(result.framewise()[m], theirs[m])
                                       for m in ('SDR', 'SIR', 'SAR', 'ISR')),
                   museval_sources_whole_s=times['museval_sources_whole'])
      if FLAGS.museval_python and FLAGS.fast_bss_eval_python:
        fast_values = os.path.join(tmp, 'fast.npz')
        fast_times, fast = _child(FLAGS.fast_bss_eval_python, _FAST_CHILD, inputs,
                                  fast_values)
        row['fast_bss_eval_s'] = fast_times['fast_bss_eval']
        row['fast_vs_museval_sources_db'] = max(
            _max_diff(fast[f'F_{m}'], theirs[f'M_{m}']) for m in ('SDR', 'SIR', 'SAR'))
      results.append(row)
      print(json.dumps(row))
  print(f'\nCPU: {cpu}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n')
  print('| case | ours v4 (s) | museval v4 (s) | speed-up | max abs diff (dB) | '
        'fast_bss_eval (s) | its diff to museval sources (dB) |')
  print('|---|---:|---:|---:|---:|---:|---:|')
  for r in results:
    fast = (f"{r['fast_bss_eval_s']:.2f} | {r['fast_vs_museval_sources_db']:.1e}"
            if 'fast_bss_eval_s' in r else 'n/a | n/a')
    print(f"| {r['case']} | {r['ours_s']:.2f} | {r['museval_s']:.2f} | {r['speedup']:.1f}x | "
          f"{r['max_abs_diff_db']:.1e} | {fast} |")
  if FLAGS.out:
    with open(FLAGS.out, 'w', encoding='utf-8') as f:
      json.dump({'cpu': cpu, 'results': results}, f, indent=2)


if __name__ == '__main__':
  app.run(main)
