"""One audio-reading check serves every reader (issue 29 items 7 and 10).

``pipeline.audio.check_file`` is made by ``pipeline.audio.load`` (wav_to_spec,
the separation and inversion commands, the trainers) and by the streamed
``--dataset=audio`` reader: a truncated WAV is refused by all of them, an
8 kHz source or a float peak above 1 is a warning everywhere, and NaN samples
are refused instead of being dropped as quiet windows.
"""

import os

import numpy as np
import soundfile as sf
import tensorflow as tf

from common.errors import ParameterError
from pipeline import audio
from pipeline import audio_dataset
from pipeline.config import FeatureConfig

SR = 16000


def _tone(seconds, rate, amplitude=0.5):
  t = np.arange(int(seconds * rate)) / rate
  return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


class AudioCheckTest(tf.test.TestCase):

  def _write(self, name, y, rate=SR, subtype='PCM_16'):
    folder = self.create_tempdir().full_path
    path = os.path.join(folder, name)
    sf.write(path, y, rate, subtype=subtype)
    return folder, path

  def _truncated(self):
    folder, path = self._write('cut.wav', _tone(2.5, SR))
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
    return folder, path

  def test_truncated_wav_is_refused_by_load_as_by_wav_to_spec(self):
    # It was read to half its length without a word (separate_audio).
    _, path = self._truncated()
    with self.assertRaisesRegex(ParameterError, r"cut\.wav' is truncated: its header declares "
                                r'80000 bytes of samples, the file holds'):
      audio.load(path)

  def test_streamed_audio_dataset_refuses_a_truncated_wav(self):
    folder, _ = self._truncated()
    with self.assertRaisesRegex(ParameterError, r'cut\.wav.* is truncated'):
      audio_dataset.audio_patch_dataset(folder, split='all', log=lambda line: None)

  def test_streamed_audio_dataset_refuses_nan_samples(self):
    y = _tone(2.5, SR)
    y[100] = np.nan
    folder, _ = self._write('nan.wav', y, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError, r"nan\.wav' holds 1 non-finite"):
      audio_dataset.audio_patch_dataset(folder, split='all', log=lambda line: None)

  def test_low_rate_and_float_peak_warn_in_the_stream_and_in_load(self):
    folder = self.create_tempdir().full_path
    sf.write(os.path.join(folder, 'low.wav'), _tone(2.5, 8000), 8000, subtype='PCM_16')
    sf.write(os.path.join(folder, 'loud.wav'), _tone(2.5, SR, 15.0), SR, subtype='FLOAT')
    lines = []
    _, info = audio_dataset.audio_patch_dataset(folder, split='all', log=lines.append,
                                                features=FeatureConfig())
    self.assertLen(lines, 2)
    self.assertTrue(any('low.wav is at 8000 Hz, upsampled to 16000 Hz' in l for l in lines))
    self.assertTrue(any('loud.wav has float samples with peak 15 > 1' in l for l in lines))
    self.assertLen(info['warnings'], 2)
    warned = []
    audio.load(os.path.join(folder, 'low.wav'), sample_rate=SR, warn=warned.append)
    audio.load(os.path.join(folder, 'loud.wav'), warn=warned.append)
    self.assertLen(warned, 2)

  def test_a_text_file_named_mp3_is_not_called_missing(self):
    folder = self.create_tempdir().full_path
    path = os.path.join(folder, 'song.mp3')
    with open(path, 'w') as f:
      f.write('not audio at all\n' * 10)
    with self.assertRaisesRegex(ParameterError, r"song\.mp3': it exists but is not audio "
                                r'that soundfile can decode'):
      audio.load(path)

  def test_silent_clip_is_refused_by_the_inversion_trainer(self):
    from inversion import net_training  # pylint: disable=g-import-not-at-top
    _, path = self._write('quiet.wav', np.zeros(SR, np.float32))
    with self.assertRaisesRegex(ParameterError, r"quiet\.wav' is silent"):
      net_training.load_clips([path], SR, 1000)


if __name__ == '__main__':
  tf.test.main()
