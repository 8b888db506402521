"""How separation scales with length: wall time, wall per audio second and peak memory.

  python benchmarks/bench_separation.py --lengths=2,8,32,128 --methods=basis \
      --out_dir=out/bench_separation

For every method of the separator seam that has a shipped model (default: all of
them) and every length, ``separate_audio.py`` runs in a fresh process on the
shipped demo mixture tiled to that length (so start-up is counted, as a user
sees it); its wall time and peak resident memory (``getrusage`` of the child)
are recorded. Lengths are run interleaved across methods and repeated
``--repeats`` times (median reported), the command's CPU seconds beside its
wall time, and the load of the machine (the other
processes' CPU share over each run, from /proc) is written beside every figure:
speed measured under load is not speed. Writes ``results.json`` and
``results.md`` (the table docs/benchmarks.md quotes).
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

from common import compute  # pylint: disable=g-import-not-at-top,wrong-import-position
from experiments import separators  # pylint: disable=g-import-not-at-top,wrong-import-position
from pipeline import audio  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_list('lengths', ['2', '8', '32', '128'], 'Mixture lengths, seconds.')
flags.DEFINE_list('methods', None, 'Methods (default: every method with a shipped model).')
flags.DEFINE_string('task', 'piano-violin', 'Task of the shipped models.')
flags.DEFINE_integer('repeats', 1, 'Runs per (method, length); the median is reported.')
flags.DEFINE_string('out_dir', 'out/bench_separation', 'Output folder.')
flags.DEFINE_list('extra_flags', [], 'More separate_audio flags, e.g. --precision=float32.')


def _cpu_times():
  """(total jiffies, idle jiffies) of the whole machine."""
  with open('/proc/stat', encoding='utf-8') as f:
    parts = [int(v) for v in f.readline().split()[1:]]
  return sum(parts), parts[3] + parts[4]


def demo_mixture(seconds: float, path: str) -> str:
  """The shipped demo mixture tiled to ``seconds``, written to ``path``."""
  from common import assets  # pylint: disable=g-import-not-at-top
  y, rate = audio.load(os.path.join(assets.demo_dir(), 'mixture.wav'))
  n = int(round(seconds * rate))
  audio.write_wav(path, np.resize(y, n), rate, subtype='FLOAT')
  return path


# Runs a command and prints its peak RSS (KiB) and CPU seconds: a fresh wrapper
# process per run, since RUSAGE_CHILDREN's ru_maxrss is the largest child so far.
_WRAPPER = (
    'import resource, subprocess, sys\n'
    'r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n'
    'u = resource.getrusage(resource.RUSAGE_CHILDREN)\n'
    'sys.stderr.write(r.stderr[-800:])\n'
    'print(u.ru_maxrss, u.ru_utime + u.ru_stime)\n'
    'sys.exit(r.returncode)\n')


def run_once(method: str, mixture: str, out_dir: str, extra) -> dict:
  """One separate_audio run in a child process: wall, peak RSS, the machine's other load."""
  cmd = [sys.executable, os.path.join(ROOT, 'separate_audio.py'), f'--input={mixture}',
         f'--out_dir={out_dir}', f'--method={method}', f'--task={FLAGS.task}', '--nofigure',
         '--noresume', *extra]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  total0, idle0 = _cpu_times()
  t0 = time.time()
  proc = subprocess.run([sys.executable, '-c', _WRAPPER, *cmd], capture_output=True,
                        text=True, env=env, check=False)
  wall = time.time() - t0
  total1, idle1 = _cpu_times()
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed: {proc.stderr[-800:]}')
  max_rss_kib, child_cpu_s = proc.stdout.split()[-2:]
  busy = (total1 - total0) - (idle1 - idle0)             # jiffies, all cores
  ticks = os.sysconf('SC_CLK_TCK')
  cores = os.cpu_count() or 1
  others = max(0.0, busy / ticks - float(child_cpu_s)) / (wall * cores)
  return {'wall_s': wall, 'cpu_s': float(child_cpu_s), 'peak_rss_mib': int(max_rss_kib) / 1024.0,
          'other_load': others}


def main(argv):
  del argv
  lengths = [float(v) for v in FLAGS.lengths]
  methods = FLAGS.methods or sorted({m for (t, m) in separators.shipped_models()
                                     if t == FLAGS.task})
  os.makedirs(FLAGS.out_dir, exist_ok=True)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    mixtures = {s: demo_mixture(s, os.path.join(tmp, f'mix_{s:g}.wav')) for s in lengths}
    runs = {}
    for rep in range(FLAGS.repeats):
      for seconds in lengths:
        for method in methods:        # interleaved: every method under the same conditions
          r = run_once(method, mixtures[seconds], os.path.join(tmp, f'{method}_{seconds:g}'),
                       FLAGS.extra_flags)
          runs.setdefault((method, seconds), []).append(r)
          print(f'[{rep + 1}/{FLAGS.repeats}] {method} {seconds:g} s: {r["wall_s"]:.1f} s wall, '
                f'{r["peak_rss_mib"]:.0f} MiB, other load {100 * r["other_load"]:.0f} %',
                flush=True)
  for (method, seconds), rs in sorted(runs.items()):
    wall = float(np.median([r['wall_s'] for r in rs]))
    cpu = float(np.median([r['cpu_s'] for r in rs]))
    rows.append({'method': method, 'seconds': seconds, 'wall_s': wall,
                 'wall_per_audio_s': wall / seconds, 'cpu_s': cpu,
                 'cpu_per_audio_s': cpu / seconds,
                 'peak_rss_mib': float(np.median([r['peak_rss_mib'] for r in rs])),
                 'other_load': float(np.median([r['other_load'] for r in rs])),
                 'runs': len(rs)})
  lines = [f'CPU: {compute.cpu_description()}; {FLAGS.repeats} run(s) each, median; '
           '"CPU": user + system seconds of the command (all threads; the figure to read '
           'on a shared machine); "other load": the share of all cores other processes '
           'used during the run.', '',
           '| method | mixture (s) | wall (s) | wall per audio s | CPU (s) | CPU per audio s | '
           'peak RSS (MiB) | other load |',
           '|---|---:|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f"| {r['method']} | {r['seconds']:g} | {r['wall_s']:.1f} | "
                 f"{r['wall_per_audio_s']:.2f} | {r['cpu_s']:.1f} | "
                 f"{r['cpu_per_audio_s']:.2f} | {r['peak_rss_mib']:.0f} | "
                 f"{100 * r['other_load']:.0f} % |")
  text = '\n'.join(lines) + '\n'
  with open(os.path.join(FLAGS.out_dir, 'results.md'), 'w', encoding='utf-8') as f:
    f.write(text)
  with open(os.path.join(FLAGS.out_dir, 'results.json'), 'w', encoding='utf-8') as f:
    json.dump({'cpu': compute.cpu_description(), 'rows': rows,
               'command': ' '.join(sys.argv)}, f, indent=2)
  print(text)


if __name__ == '__main__':
  app.run(main)
