"""Audio I/O and the buffer validator: clear errors for every bad input."""

import os

import numpy as np
import soundfile as sf
from absl.testing import absltest

from pipeline import ParameterError
from pipeline import audio


class ValidateTest(absltest.TestCase):

  def test_accepts_float_buffers(self):
    y = audio.validate_audio(np.zeros(10, np.float32))
    self.assertEqual(y.shape, (10,))

  def test_raises_on_empty(self):
    with self.assertRaisesRegex(ParameterError, 'empty'):
      audio.validate_audio(np.zeros(0, np.float32))

  def test_raises_on_nan_and_inf_naming_the_index(self):
    y = np.zeros(8, np.float32)
    y[5] = np.nan
    with self.assertRaisesRegex(ParameterError, 'NaN at flat index 5'):
      audio.validate_audio(y)
    y[5] = np.inf
    with self.assertRaisesRegex(ParameterError, 'infinite'):
      audio.validate_audio(y)

  def test_raises_on_wrong_rank_and_dtype(self):
    with self.assertRaisesRegex(ParameterError, 'scalar'):
      audio.validate_audio(np.float32(1.0))
    with self.assertRaisesRegex(ParameterError, r'mono.*\(2, 4\)'):
      audio.validate_audio(np.zeros((2, 4), np.float32), mono=True)
    with self.assertRaisesRegex(ParameterError, 'int16'):
      audio.validate_audio(np.zeros(4, np.int16))


class FileTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path

  def _tone(self, sr, seconds=0.5, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    y = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([y] * channels, axis=1) if channels > 1 else y

  def test_write_then_load_roundtrip(self):
    path = os.path.join(self.dir, 'a.wav')
    y = self._tone(16000)
    audio.write_wav(path, y, 16000, subtype='FLOAT')
    back, sr = audio.load(path)
    self.assertEqual(sr, 16000)
    np.testing.assert_array_equal(back, y)
    self.assertEqual([f for f in os.listdir(self.dir)], ['a.wav'])  # no temp left

  def test_load_mixes_stereo_down_and_resamples(self):
    path = os.path.join(self.dir, 'st.flac')
    sf.write(path, self._tone(44100, channels=2), 44100)
    y, sr = audio.load(path, sample_rate=16000)
    self.assertEqual(sr, 16000)
    self.assertEqual(y.ndim, 1)
    self.assertAlmostEqual(len(y), 8000, delta=1)
    # A 440 Hz tone of amplitude 0.5 keeps its RMS (0.354) through resampling.
    self.assertAlmostEqual(float(np.sqrt(np.mean(y[1000:-1000] ** 2))), 0.3536, delta=0.01)

  def test_load_ogg(self):
    path = os.path.join(self.dir, 'a.ogg')
    sf.write(path, self._tone(16000), 16000, format='OGG', subtype='VORBIS')
    y, sr = audio.load(path)
    self.assertEqual((sr, y.ndim), (16000, 1))

  def test_raises_on_missing_file(self):
    with self.assertRaisesRegex(ParameterError, 'does not exist'):
      audio.load(os.path.join(self.dir, 'nope.wav'))

  def test_raises_on_corrupt_file(self):
    path = os.path.join(self.dir, 'bad.wav')
    with open(path, 'wb') as f:
      f.write(b'RIFF\x00\x00\x00\x00WAVEjunkjunkjunk')
    with self.assertRaisesRegex(ParameterError, 'cannot read audio file .*bad.wav'):
      audio.load(path)

  def test_raises_on_empty_wav(self):
    path = os.path.join(self.dir, 'empty.wav')
    sf.write(path, np.zeros(0, np.float32), 16000)
    with self.assertRaisesRegex(ParameterError, 'empty'):
      audio.load(path)

  def test_raises_on_nan_in_file(self):
    path = os.path.join(self.dir, 'nan.wav')
    y = self._tone(16000)
    y[100] = np.nan
    sf.write(path, y, 16000, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError, 'non-finite'):
      audio.load(path)

  def test_require_sample_rate_names_both_rates(self):
    with self.assertRaisesRegex(ParameterError, '44100 Hz, expected 16000 Hz'):
      audio.require_sample_rate(44100, 16000, name='mixture.wav')

  def test_write_refuses_nan_and_keeps_existing_file(self):
    path = os.path.join(self.dir, 'keep.wav')
    audio.write_wav(path, self._tone(16000), 16000)
    before = open(path, 'rb').read()
    bad = self._tone(16000)
    bad[3] = np.nan
    with self.assertRaisesRegex(ParameterError, 'non-finite'):
      audio.write_wav(path, bad, 16000)
    self.assertEqual(open(path, 'rb').read(), before)
    self.assertEqual(os.listdir(self.dir), ['keep.wav'])


if __name__ == '__main__':
  absltest.main()
