"""MelTransform: STFT round trip, librosa agreement, dB/unit inverses, patches."""

import librosa
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from pipeline import FeatureConfig, ParameterError
from pipeline.transforms import MelTransform


def _chirp_plus_noise(n_samples, sample_rate=16000, seed=0):
  """A real-ish test signal: a chirp, a few harmonics and a little noise."""
  rng = np.random.default_rng(seed)
  t = np.arange(n_samples) / sample_rate
  y = 0.3 * np.sin(2 * np.pi * (200 * t + 400 * t ** 2))
  for k in range(1, 5):
    y += 0.1 / k * np.sin(2 * np.pi * 440 * k * t)
  y += 0.01 * rng.standard_normal(n_samples)
  return y.astype(np.float32)


class StftTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((2048, 512), (1024, 256), (512, 128), (1024, 512))
  def test_stft_istft_roundtrip_is_exact(self, n_fft, hop_length):
    config = FeatureConfig(n_fft=n_fft, hop_length=hop_length, n_mels=40,
                           fmin=0.0, fmax=8000.0,
                           patch_samples=63 * hop_length)
    t = MelTransform(config)
    y = _chirp_plus_noise(16000 + 123)  # length not a multiple of the hop
    back = t.istft(t.stft(y), length=len(y)).numpy()
    # Spec: max abs error < 1e-5 (float32 FFTs reach ~1e-7), edges included.
    self.assertLess(np.abs(back - y).max(), 1e-5)

  def test_stft_roundtrip_batched_inside_tf_function(self):
    t = MelTransform()
    y = np.stack([_chirp_plus_noise(20000, seed=s) for s in range(3)])
    roundtrip = tf.function(lambda x: t.istft(t.stft(x), length=20000))
    self.assertLess(np.abs(roundtrip(y).numpy() - y).max(), 1e-5)

  def test_stft_of_a_float64_tensor_is_that_of_its_float32_samples(self):
    # Under numpy 2, float32 samples times a float64 scalar (a gain) are float64.
    t = MelTransform()
    y = _chirp_plus_noise(4096, seed=0).astype(np.float32)
    spectrum = t.stft(tf.constant(y.astype(np.float64)))
    self.assertEqual(spectrum.dtype, tf.complex64)
    self.assertAllEqual(spectrum, t.stft(y))   # the same float32 samples: identical

  def test_stft_matches_librosa(self):
    t = MelTransform()
    y = _chirp_plus_noise(32640)
    ours = t.stft(y).numpy()
    ref = librosa.stft(y, n_fft=2048, hop_length=512).T  # centred, zero pad
    self.assertEqual(ours.shape, (64, 1025))
    # float32 FFT of a 2048 frame: error ~1e-6 relative to the peak.
    self.assertLess(np.abs(ours - ref).max() / np.abs(ref).max(), 1e-5)

  def test_mel_of_rank_4_input_equals_per_item_mel(self):
    # Regression: oneDNN's broadcasting batched matmul crashed the process on
    # [2, 1, 94, 257] (40 mels); the transform flattens to one 2-D matmul.
    import dataclasses  # pylint: disable=g-import-not-at-top
    t = MelTransform(dataclasses.replace(FeatureConfig(), n_fft=512, hop_length=128,
                                         n_mels=40, patch_samples=8064))
    x = tf.random.stateless_uniform([2, 1, 94, 257], [1, 2])
    got = t.spectrogram_to_mel(x)
    self.assertEqual(got.shape, (2, 1, 94, 40))
    self.assertAllClose(got[1, 0], t.spectrogram_to_mel(x[1, 0]), rtol=1e-6, atol=1e-6)
    traced = tf.function(t.spectrogram_to_mel,
                         input_signature=[tf.TensorSpec([None, None, 94, 257])])
    self.assertEqual(traced(x).shape, (2, 1, 94, 40))

  def test_mel_spectrogram_matches_librosa(self):
    t = MelTransform()
    y = _chirp_plus_noise(32640)
    ours = t.spectrogram_to_mel(t.spectrogram(y)).numpy()
    ref = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=2048, hop_length=512, n_mels=96, fmin=125.0,
        fmax=7600.0).T
    self.assertLess(np.abs(ours - ref).max() / ref.max(), 1e-5)


class ScalingTest(tf.test.TestCase):

  def test_db_clips_to_reference_range(self):
    t = MelTransform()
    db = t.power_to_db([0.0, 1e-12, 1e-10, 1.0, 100.0, 1e6]).numpy()
    np.testing.assert_allclose(db, [-100, -100, -100, 0, 20, 20], atol=1e-4)
    unit = t.db_to_unit(db).numpy()
    np.testing.assert_allclose(unit, [0, 0, 0, 100 / 120, 1, 1], atol=1e-6)

  def test_db_and_unit_inverses_roundtrip(self):
    t = MelTransform()
    rng = np.random.default_rng(1)
    power = 10 ** rng.uniform(-10, 2, size=(4, 64, 96)).astype(np.float32)
    back = t.db_to_power(t.unit_to_db(t.db_to_unit(t.power_to_db(power))))
    # Inside the clip range the chain is exact up to float32 exp/log: 1e-5 rel.
    np.testing.assert_allclose(back.numpy(), power, rtol=2e-5)
    unit = rng.uniform(0, 1, size=(2, 96, 64, 1)).astype(np.float32)
    again = t.waveform_to_unit  # silence the unused warning of linters
    del again
    np.testing.assert_allclose(
        t.db_to_unit(t.unit_to_db(unit)).numpy(), unit, atol=1e-6)

  def test_mel_pseudo_inverse_nnls_reprojects(self):
    t = MelTransform()
    mel = t.spectrogram_to_mel(t.spectrogram(_chirp_plus_noise(32640)))
    lin = t.mel_to_spectrogram(mel, n_iter=100)
    self.assertAllGreaterEqual(lin, 0.0)
    reprojected = t.spectrogram_to_mel(lin)
    rel = tf.norm(reprojected - mel) / tf.norm(mel)
    # The filterbank has fewer bands than bins: the mel image is reachable,
    # so NNLS reprojects to within 1e-3 relative error.
    self.assertLess(float(rel), 1e-3)


class PatchTest(tf.test.TestCase):

  def test_reference_patch_shape_and_range(self):
    config = FeatureConfig()
    self.assertEqual(config.patch_samples, 32640)  # 2.04 s at 16 kHz
    t = MelTransform(config)
    y = _chirp_plus_noise(3 * 32640 + 1000)
    patches = t.waveform_to_patches(y).numpy()
    self.assertEqual(patches.shape, (3, 96, 64, 1))
    self.assertGreaterEqual(patches.min(), 0.0)
    self.assertLessEqual(patches.max(), 1.0)
    self.assertEqual(t.waveform_to_patches(y, pad_end=True).shape[0], 4)

  def test_patch_equals_librosa_per_clip(self):
    t = MelTransform()
    y = _chirp_plus_noise(2 * 32640)
    patches = t.waveform_to_patches(y).numpy()
    clip = y[32640:]
    mel = librosa.feature.melspectrogram(
        y=clip, sr=16000, n_fft=2048, hop_length=512, n_mels=96, fmin=125.0,
        fmax=7600.0)
    ref = (10 * np.log10(np.clip(mel, 1e-10, 100)) + 100) / 120
    # 1e-5 in unit scale is 1.2e-3 dB.
    np.testing.assert_allclose(patches[1, ..., 0], ref, atol=1e-5)

  def test_patches_to_mel_inverts_scaling(self):
    t = MelTransform()
    y = _chirp_plus_noise(32640)
    mel = t.spectrogram_to_mel(t.spectrogram(y))
    back = t.patches_to_mel(t.waveform_to_patches(y))[0]
    clipped = tf.clip_by_value(mel, 1e-10, 100.0)
    np.testing.assert_allclose(back.numpy(), clipped.numpy(), rtol=1e-4)

  def test_image_orientation_is_mels_by_frames(self):
    mel = tf.reshape(tf.range(6, dtype=tf.float32), [1, 2, 3])  # 2 frames x 3 mels
    image = MelTransform.mel_to_image(mel)
    self.assertEqual(image.shape, (1, 3, 2, 1))
    self.assertAllEqual(MelTransform.image_to_mel(image), mel)

  def test_raises_on_short_or_multichannel_waveform(self):
    t = MelTransform()
    with self.assertRaisesRegex(ParameterError, 'fewer than one patch'):
      t.waveform_to_patches(np.zeros(1000, np.float32))
    with self.assertRaisesRegex(ParameterError, 'mono'):
      t.waveform_to_patches(np.zeros((2, 40000), np.float32))


class FeatureConfigTest(tf.test.TestCase):

  def test_json_roundtrip(self):
    c = FeatureConfig(n_mels=64, fmax=8000.0)
    self.assertEqual(FeatureConfig.from_json(c.to_json()), c)

  def test_raises_naming_the_bad_value(self):
    with self.assertRaisesRegex(ParameterError, 'hop_length=4096'):
      FeatureConfig(hop_length=4096)
    with self.assertRaisesRegex(ParameterError, 'fmax=9000'):
      FeatureConfig(fmax=9000.0)
    with self.assertRaisesRegex(ParameterError, "unknown feature parameters \\['nfft'\\]"):
      FeatureConfig.from_dict({'nfft': 1024})
    with self.assertRaisesRegex(ParameterError, 'n_mels'):
      FeatureConfig(n_mels=0)
    with self.assertRaisesRegex(ParameterError, 'use e.g. patch_samples=16128'):
      FeatureConfig(hop_length=256)

  def test_differences_name_the_fields(self):
    self.assertEqual(FeatureConfig().differences(FeatureConfig(n_mels=80)),
                     {'n_mels': (96, 80)})


if __name__ == '__main__':
  tf.test.main()
