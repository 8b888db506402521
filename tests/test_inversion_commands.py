"""melspec_inversion_basis (script and library): BASIS mel estimates -> wavs."""

import json
import os

import numpy as np
import soundfile as sf
import tensorflow as tf

from experiments import inversion_runs as commands
from common.errors import ParameterError
from pipeline.transforms import MelTransform

from tests.inversion_fixtures import FEATURES, SR
from tests.inversion_fixtures import run_script as _run
from tests.inversion_fixtures import sdr as _sdr
from tests.inversion_fixtures import sources as _sources


class BasisInversionTest(tf.test.TestCase):

  def _basis_dir(self, n_patches=3):
    """A fake BASIS mel output: the true source patches as 'estimates'."""
    d = self.create_tempdir().full_path
    t = MelTransform(FEATURES)
    n = n_patches * FEATURES.patch_samples
    s = _sources(n)
    windows = np.stack([t.frame_waveform(x).numpy() for x in s])   # [2, n_patches, samples]
    est = t.waveform_to_unit(windows).numpy()                      # [2, n_patches, 40, 32, 1]
    np.save(os.path.join(d, 'estimates.npy'), est)
    np.save(os.path.join(d, 'mixtures.npy'), t.waveform_to_unit(windows.sum(0)).numpy())
    with open(os.path.join(d, 'features.json'), 'w') as f:
      json.dump(FEATURES.to_dict(), f)
    sf.write(os.path.join(d, 'mix.wav'), s.sum(0), SR, subtype='FLOAT')
    return d, s

  def test_script_misi_gives_one_wav_per_source_close_to_the_truth(self):
    d, s = self._basis_dir()
    out = os.path.join(d, 'wav')
    proc = _run('melspec_inversion_basis.py', f'--basis_dir={d}', f'--mixture_wav={d}/mix.wav',
                f'--output_dir={out}', '--phase=misi', '--n_iter=10')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    summary = json.load(open(os.path.join(out, 'inversion.json')))
    self.assertEqual(sorted(summary['files']), ['mixture.wav', 'source_0.wav', 'source_1.wav'])
    self.assertLess(summary['mixture_wav_vs_mixtures_npy_db'], 1e-2)
    self.assertTrue(os.path.exists(os.path.join(out, 'spectrograms.png')))
    for k in range(2):
      y, _ = sf.read(os.path.join(out, f'source_{k}.wav'))
      y = y / summary['gain']
      self.assertEqual(len(y), s.shape[1])
      # Mel (40 bands) of a clean source: the sources come back clearly separated.
      self.assertGreater(_sdr(s[k], y), 5.0)

  def test_per_patch_gla_without_mixture(self):
    d, _ = self._basis_dir(n_patches=2)
    r = commands.run_basis_inversion(commands.BasisInversionConfig(
        basis_dir=d, output_dir=d + '/p', phase='fgla', n_iter=3, stitch=False),
        log=lambda *a: None)
    self.assertLen(r['files'], 4)
    self.assertTrue(os.path.exists(os.path.join(d, 'p', 'source_1', 'patch_0001.wav')))

  def test_clear_errors(self):
    d, _ = self._basis_dir(n_patches=2)
    with self.assertRaisesRegex(ParameterError, r"'wiener' needs the mixture audio"):
      commands.BasisInversionConfig(basis_dir=d, output_dir=d)
    with self.assertRaisesRegex(ParameterError, 'not a BASIS mel output folder: estimates.npy is missing'):
      commands.run_basis_inversion(commands.BasisInversionConfig(
          basis_dir=d + '/nothing', output_dir=d, phase='gla'))
    sf.write(os.path.join(d, 'short.wav'), np.zeros(100, np.float32), SR)
    with self.assertRaisesRegex(ParameterError, r'has 1 windows of 3968 samples but .* 2 patches'):
      commands.run_basis_inversion(commands.BasisInversionConfig(
          basis_dir=d, output_dir=d, mixture_wav=d + '/short.wav', phase='misi'))


if __name__ == '__main__':
  tf.test.main()
