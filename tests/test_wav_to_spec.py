"""wav folder -> TFRecord patches (library function and the absl script)."""

import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf
import tensorflow as tf

from pipeline import FeatureConfig, ParameterError
from pipeline import audio
from pipeline import tfrecords
from pipeline.spec_folder import folder_to_patches
from pipeline.transforms import MelTransform

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tone(seconds, sr, freq=440.0, amp=0.3):
  t = np.arange(int(seconds * sr)) / sr
  return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class FolderToPatchesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.in_dir = self.get_temp_dir() + '/wavs'
    os.makedirs(self.in_dir + '/sub', exist_ok=True)
    sf.write(self.in_dir + '/a.wav', _tone(4.2, 16000), 16000)           # 2 patches
    sf.write(self.in_dir + '/sub/b.flac', _tone(2.1, 44100, 880), 44100)  # 1, resampled
    sf.write(self.in_dir + '/short.wav', _tone(0.5, 16000), 16000)       # none
    sf.write(self.in_dir + '/silent.wav', np.zeros(40000, np.float32), 16000)

  def test_writes_patches_equal_to_the_transform(self):
    out = self.get_temp_dir() + '/tfr'
    meta = folder_to_patches(self.in_dir, out, progress=False)
    self.assertEqual(meta['count'], 3)  # silent and short files give nothing
    self.assertEqual(FeatureConfig.from_dict(meta['features']), FeatureConfig())
    files = {s['file']: s['patches'] for s in meta['provenance']['files']}
    self.assertEqual(files, {'a.wav': 2, 'short.wav': 0, 'silent.wav': 0,
                             'sub/b.flac': 1})
    ds = tfrecords.patch_dataset(out, split='all', shuffle_buffer=0)
    patches = np.stack([p.numpy() for p in ds])
    y, _ = audio.load(self.in_dir + '/a.wav')  # PCM16 as written
    expected = MelTransform().waveform_to_patches(y).numpy()
    # Same transform, graph vs eager kernels: equal to 1e-6 (unit scale).
    found = [any(np.allclose(p, e, atol=1e-6, rtol=0) for p in patches)
             for e in expected]
    self.assertEqual(found, [True, True])

  def test_raises_on_corrupt_file_unless_skipped(self):
    with open(self.in_dir + '/bad.wav', 'wb') as f:
      f.write(b'not audio at all')
    with self.assertRaisesRegex(ParameterError, 'bad.wav'):
      folder_to_patches(self.in_dir, self.get_temp_dir() + '/x', progress=False)
    meta = folder_to_patches(self.in_dir, self.get_temp_dir() + '/y', progress=False,
                             skip_bad_files=True)
    self.assertLen(meta['provenance']['bad_files'], 1)

  def test_raises_on_missing_or_empty_folder(self):
    with self.assertRaisesRegex(ParameterError, 'does not exist'):
      folder_to_patches(self.in_dir + '/nope', self.get_temp_dir() + '/o')
    os.makedirs(self.get_temp_dir() + '/empty', exist_ok=True)
    with self.assertRaisesRegex(ParameterError, 'no audio files'):
      folder_to_patches(self.get_temp_dir() + '/empty', self.get_temp_dir() + '/o')

  def test_script_runs_and_reports(self):
    out = self.get_temp_dir() + '/script_out'
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'wav_to_spec.py'), f'--in_dir={self.in_dir}',
         f'--out_dir={out}'], capture_output=True, text=True, env=env, timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn('wrote 3 patches of shape (96, 64, 1)', proc.stdout)
    with open(os.path.join(out, 'metadata.json')) as f:
      self.assertIn('wav_to_spec.py', json.load(f)['provenance']['command'])


if __name__ == '__main__':
  tf.test.main()
