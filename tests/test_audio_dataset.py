"""Audio files streamed into tf.data (tensorflow-io, or soundfile where it does not load):
same patches as the TFRecord path."""

import functools
import importlib.util
import os
import sys
from unittest import mock

import numpy as np
import soundfile as sf
import tensorflow as tf

from pipeline import FeatureConfig
from pipeline import audio_dataset
from pipeline.audio_dataset import audio_patch_dataset, list_audio_files
from common.errors import ParameterError
from pipeline.transforms import MelTransform

RATE = 16000
N = FeatureConfig().patch_samples


def _tone(seconds, freq, seed=0, rate=RATE):
  t = np.arange(int(seconds * rate)) / rate
  noise = 0.01 * np.random.default_rng(seed).normal(size=t.shape)
  return (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32)


class AudioDatasetTest(tf.test.TestCase):
  """The ``tfio`` backend (``'auto'`` picks it where it loads)."""

  BACKEND = 'tfio'

  def setUp(self):
    super().setUp()
    if self.BACKEND == 'tfio' and not audio_dataset.tfio_available():
      why = (f'does not load with TensorFlow {tf.__version__}'
             if importlib.util.find_spec('tensorflow_io') is not None
             else 'is not installed (a dependency on Python 3.11 only)')
      self.skipTest(f'tensorflow-io {why} (the soundfile backend is tested instead)')
    self.enter_context(mock.patch.object(
        sys.modules[__name__], 'audio_patch_dataset',
        functools.partial(audio_dataset.audio_patch_dataset, backend=self.BACKEND)))

  def _folder(self):
    return self.create_tempdir().full_path

  def test_patches_equal_the_mel_transform_of_the_file(self):
    folder = self._folder()
    y = _tone(2 * N / RATE + 0.3, 440.0)            # two windows and a dropped tail
    sf.write(os.path.join(folder, 'a.wav'), y, RATE, subtype='FLOAT')
    ds, info = audio_patch_dataset(folder, split='all', shuffle=False, min_rms_db=None)
    got = np.stack([p.numpy() for p in ds])
    want = MelTransform(FeatureConfig()).waveform_to_patches(y).numpy()
    self.assertEqual(got.shape, (2, 96, 64, 1))
    self.assertEqual(info['image_shape'], (96, 64, 1))
    # Same samples, same transform; 1e-5 covers the batched-vs-single FFT order.
    self.assertAllClose(got, want, atol=1e-5, rtol=0)

  def test_pcm16_flac_and_ogg_decode_to_the_same_audio(self):
    folder = self._folder()
    y = _tone(N / RATE + 0.1, 330.0, seed=1)
    sf.write(os.path.join(folder, 'f.wav'), y, RATE, subtype='FLOAT')
    sf.write(os.path.join(folder, 'p.wav'), y, RATE, subtype='PCM_16')
    sf.write(os.path.join(folder, 'c.flac'), y, RATE, subtype='PCM_16')
    ds, info = audio_patch_dataset(folder, split='all', shuffle=False, min_rms_db=None)
    patches = np.stack([p.numpy() for p in ds])
    self.assertEqual(info['num_files'], 3)
    self.assertLen(patches, 3)
    # 16-bit quantisation moves the quiet bins a little: 1 % of the unit range.
    self.assertAllClose(patches[0], patches[1], atol=1e-2)
    self.assertAllClose(patches[1], patches[2], atol=1e-2)

  def test_other_rates_are_resampled_in_the_graph(self):
    folder = self._folder()
    y8 = _tone(2 * N / RATE + 0.5, 500.0, rate=8000)
    sf.write(os.path.join(folder, 'low.wav'), y8, 8000, subtype='PCM_16')
    ds, _ = audio_patch_dataset(folder, split='all', shuffle=False, min_rms_db=None)
    patches = np.stack([p.numpy() for p in ds])
    self.assertEqual(patches.shape, (2, 96, 64, 1))
    # The 500 Hz tone lands in the mel band whose centre is nearest 500 Hz.
    fb_peak = int(np.argmax(patches[0, :, :, 0].mean(axis=1)))
    y16 = _tone(N / RATE, 500.0)
    ref = MelTransform(FeatureConfig()).waveform_to_patches(y16).numpy()
    self.assertEqual(fb_peak, int(np.argmax(ref[0, :, :, 0].mean(axis=1))))

  def test_quiet_windows_are_skipped_and_splits_are_by_file(self):
    folder = self._folder()
    for i in range(10):
      y = _tone(N / RATE, 200.0 + 50 * i, seed=i)
      if i == 3:
        y *= 1e-5                                    # -110 dB: below -60 dB rms
      sf.write(os.path.join(folder, f'{i:02d}.wav'), y, RATE, subtype='FLOAT')
    all_ds, _ = audio_patch_dataset(folder, split='all', shuffle=False)
    self.assertLen(list(all_ds), 9)
    train, ti = audio_patch_dataset(folder, split='train', shuffle=False, min_rms_db=None)
    test, si = audio_patch_dataset(folder, split='test', shuffle=False, min_rms_db=None)
    self.assertEqual(ti['num_files'] + si['num_files'], 10)
    self.assertGreater(si['num_files'], 0)
    self.assertLen(list(train) + list(test), 10)

  def test_batched_repeated_training_stream(self):
    folder = self._folder()
    sf.write(os.path.join(folder, 'a.wav'), _tone(N / RATE, 440.0), RATE, subtype='FLOAT')
    ds, _ = audio_patch_dataset(folder, split='all', batch_size=4, repeat=True,
                                drop_remainder=True, min_rms_db=None)
    batch = next(iter(ds))
    self.assertEqual(batch.shape, (4, 96, 64, 1))

  def test_bad_folders_and_files_raise_naming_them(self):
    with self.assertRaisesRegex(ParameterError, "audio folder '/nonexistent' does not exist"):
      list_audio_files('/nonexistent')
    empty = self._folder()
    with self.assertRaisesRegex(ParameterError, 'no audio files'):
      list_audio_files(empty)
    bad = self._folder()
    with open(os.path.join(bad, 'broken.wav'), 'wb') as f:
      f.write(b'RIFF not really a wav')
    with self.assertRaisesRegex(ParameterError, 'broken.wav'):
      audio_patch_dataset(bad, split='all')


class SoundfileAudioDatasetTest(AudioDatasetTest):
  """The same tests through the soundfile backend (what 'auto' picks without tensorflow-io)."""

  BACKEND = 'soundfile'


class BackendTest(tf.test.TestCase):

  def test_auto_picks_tfio_where_it_loads(self):
    want = 'tfio' if audio_dataset.tfio_available() else 'soundfile'
    self.assertEqual(audio_dataset.resolve_backend('auto'), want)
    self.assertEqual(audio_dataset.resolve_backend('soundfile'), 'soundfile')

  def test_unknown_backend_and_missing_tfio_are_errors(self):
    with self.assertRaisesRegex(ParameterError, "unknown audio backend 'sox'"):
      audio_dataset.resolve_backend('sox')
    with mock.patch.object(audio_dataset, 'tfio_available', return_value=False):
      with self.assertRaisesRegex(ParameterError, 'tensorflow-io is not installed or does not'):
        audio_dataset.resolve_backend('tfio')

if __name__ == '__main__':
  tf.test.main()
