"""Separation memory does not grow with the length (issue 27).

``separate_audio``'s path (``experiments.separate_files.run``: read, chunked
separation, stitching, gains, the wavs, the spectrogram figure) runs in a fresh
process on a mixture of N and of 4N seconds, with a toy separator that costs
nothing, so that whatever grows is the seam's own buffers; the child reports
its peak RSS (``getrusage``). Only the waveforms themselves may grow: the
mixture and the estimates, a few float32 copies of each.
"""

import os
import resource  # pylint: disable=unused-import  (Unix only, like the measurement)
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
N_S = 30.0

_CHILD = r'''
import resource, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from experiments import separate_files, separators
from pipeline import audio


class Half:
  """Two sources, half the mixture each, in 10 s chunks."""
  sources = ('a', 'b')
  sample_rate = 16000
  chunk_s = 10.0

  def separate(self, x, rate):
    return {'a': 0.5 * x, 'b': 0.5 * x}


separators.register_method(separators.Method(name='toy-half', load=lambda *a, **o: Half(),
                                             needs_model=False))
seconds, folder = float(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
mix = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
audio.write_wav(folder + '/mix.wav', mix, 16000, subtype='FLOAT')
del mix
separate_files.run(separate_files.SeparateFilesConfig(
    input=folder + '/mix.wav', out_dir=folder + '/out', method='toy-half', resume=False),
    log=lambda line: None)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
'''


def _peak_rss_mib(seconds: float, folder: str) -> float:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.run([sys.executable, '-c', _CHILD, ROOT, str(seconds), folder],
                        capture_output=True, text=True, env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return int(proc.stdout.split()[-1]) / 1024.0


@pytest.mark.skipif(sys.platform != 'linux', reason='ru_maxrss is in KiB on Linux only')
class SeparationMemoryTest(tf.test.TestCase):

  def test_four_times_longer_grows_peak_rss_by_the_waveforms_only(self):
    short = _peak_rss_mib(N_S, self.create_tempdir().full_path)
    long = _peak_rss_mib(4 * N_S, self.create_tempdir().full_path)
    # One float32 waveform of the extra 3N seconds is 5.5 MiB; the mixture, its copy
    # at the model's level and the two estimates are 4 of them. Allowed: 8 (44 MiB).
    # Before issue 27 the figure's whole-file STFTs and the float64 stitching buffers
    # made it 16 waveforms' worth and more (and 1.35 GB for the figure at 10 minutes).
    waveform_mib = 3 * N_S * RATE * 4 / 2**20
    self.assertLess(long - short, 8 * waveform_mib,
                    f'peak RSS {short:.0f} MiB at {N_S:g} s, {long:.0f} MiB at {4 * N_S:g} s')
