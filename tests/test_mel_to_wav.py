"""mel_to_wav (script and library)."""

import os

import soundfile as sf
import tensorflow as tf

from experiments import inversion_runs as commands
from common.errors import ParameterError

from tests.inversion_fixtures import FEATURES, SR
from tests.inversion_fixtures import run_script as _run
from tests.inversion_fixtures import sources as _sources


class MelToWavTest(tf.test.TestCase):

  def test_script_writes_wav_and_figure_and_prints_convergence(self):
    d = self.create_tempdir().full_path
    sf.write(os.path.join(d, 'in.wav'), _sources(SR)[0], SR)
    out = os.path.join(d, 'out.wav')
    proc = _run('mel_to_wav.py', f'--input={d}/in.wav', f'--output={out}', '--n_iter=8',
                '--n_fft=512', '--hop_length=128', '--n_mels=64', '--fmin=0', '--fmax=8000')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn('spectral convergence', proc.stdout)
    y, sr = sf.read(out)
    self.assertEqual(sr, SR)
    self.assertEqual(len(y), SR // 128 * 128)
    self.assertTrue(os.path.getsize(os.path.join(d, 'out.png')) > 1000)

  def test_library_rebuilds_a_chirp(self):
    d = self.create_tempdir().full_path
    sf.write(os.path.join(d, 'in.wav'), _sources(SR)[0], SR)
    r = commands.run_mel_to_wav(commands.MelToWavConfig(
        input=f'{d}/in.wav', output=f'{d}/out.wav', figure='', features=FEATURES,
        n_iter=30), log=lambda *a: None)
    self.assertLess(r['spectral_convergence_db'], -5.0)  # measured about -12 dB
    self.assertFalse(os.path.exists(f'{d}/out.png'))

  def test_config_rejects_a_phase_that_needs_a_mixture(self):
    with self.assertRaisesRegex(ParameterError, r"'misi' needs a mixture.*\['degli', 'fgla', 'gla'\]"):
      commands.MelToWavConfig(input='a.wav', output='b.wav', phase='misi')


if __name__ == '__main__':
  tf.test.main()
