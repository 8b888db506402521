"""Every script in ``benchmarks/`` runs (issue 27): each on its smallest setting.

Each script runs as its own process (``python benchmarks/<name>.py <smallest flags>``),
as a user runs it: the scripts define absl flags at import, several with the same
names, so they cannot share one process. The flags below shrink every size a script
has (shapes, batch, repeats, seconds) to the least that still goes through all of
its code. What the script needs from outside (TFRecords, an audio folder) is made
here from tones; what cannot be made (museval's own environment for
``bench_bss_eval``) is switched off by the script's own flag.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from absl.testing import parameterized
import tensorflow as tf

from pipeline import audio, tfrecords
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, 'benchmarks')

# script -> its smallest setting; '{tmp}', '{tfr}' and '{audio}' are filled in.
SMOKE = {
    'bench_audio_input': ['--tfrecords={tfr}', '--audio={audio}', '--batch_size=2',
                          '--batches=1', '--rounds=1'],
    'bench_basis_stages': ['--seconds=2', '--rounds=1', '--steps_per_sigma=1'],
    'bench_baselines': ['--configs=unet:cpu,convtasnet:cpu', '--seconds=1', '--repeats=1'],
    'bench_bss_eval': ['--smoke', '--museval_python=', '--fast_bss_eval_python=',
                       '--repeats=1'],
    'bench_dilated_conv': ['--shape=8,8,1', '--ngf=4', '--batch_size=2', '--repeats=1'],
    'bench_features': ['--duration_s=3', '--repeats=1'],
    'bench_flows': ['--height=8', '--width=8', '--levels=1', '--steps_per_level=1',
                    '--hidden_channels=8', '--batch_size=2', '--repeats=1'],
    'bench_inversion': ['--rounds=1', '--n_iter=2', '--clip_s=2', '--nnls_iter=2'],
    'bench_sampling': ['--ngf=4', '--batch_size=2', '--steps=5', '--eager_steps=1',
                       '--repeats=1'],
    'bench_score_arch': ['--nets=unet_16', '--dtypes=float32', '--batch_sizes=2',
                         '--train_batch_size=2', '--calls=1', '--repeats=1', '--height=16',
                         '--width=16', '--num_levels=2'],
    'bench_score_net': ['--ngf=4', '--batch_size=2', '--calls=1', '--repeats=1',
                        '--training'],
    'bench_separation': ['--lengths=1', '--methods=unet', '--out_dir={tmp}/sep'],
}


def _tone(seconds, freq, rate):
  t = np.arange(int(seconds * rate)) / rate
  return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class BenchmarkListTest(parameterized.TestCase):

  def test_every_script_has_a_smallest_setting(self):
    scripts = sorted(f[:-3] for f in os.listdir(BENCH)
                     if f.startswith('bench_') and f.endswith('.py'))
    self.assertEqual(scripts, sorted(SMOKE))


# 10-50 s per script on the 2 shared cores (the slowest: bench_dilated_conv, bench_flows,
# bench_inversion, bench_separation), about 6 min in all under load: slow.
@pytest.mark.slow
class BenchmarkScriptsTest(parameterized.TestCase):

  def _inputs(self, tmp):
    """A TFRecord patch folder and an audio folder of tones, for bench_audio_input."""
    config = FeatureConfig()
    folder = os.path.join(tmp, 'audio')
    os.makedirs(folder)
    waves = [_tone(3.0, f, config.sample_rate) for f in (220.0, 330.0)]
    for i, y in enumerate(waves):
      audio.write_wav(os.path.join(folder, f'tone{i}.wav'), y, config.sample_rate)
    patches = np.concatenate([MelTransform(config).waveform_to_patches(
        tf.constant(y)).numpy() for y in waves])
    tfr = os.path.join(tmp, 'tfr')
    tfrecords.write_patches(patches, tfr, features=config)
    return {'tmp': tmp, 'tfr': tfr, 'audio': folder}

  @parameterized.named_parameters((name, name) for name in sorted(SMOKE))
  def test_runs_on_smallest_setting(self, name):
    tmp = self.create_tempdir().full_path
    fill = self._inputs(tmp) if name == 'bench_audio_input' else {'tmp': tmp}
    args = [a.format(**fill) for a in SMOKE[name]]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3',
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, os.path.join(BENCH, name + '.py'), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    self.assertEqual(proc.returncode, 0, f'{name} {args} failed:\n{proc.stderr[-3000:]}')
    self.assertIn('|', proc.stdout, f'{name} printed no table:\n{proc.stdout[-2000:]}')
