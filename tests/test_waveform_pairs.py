"""Tests of pipeline.waveform_pairs: the voice + noise layout reader, on tiny sets.

Needs nothing installed: the clips are written with ``datagen.mixtures.write_clip``.
"""

import os
import shutil
import tempfile

from absl.testing import absltest
import numpy as np
import soundfile as sf

from common.errors import ParameterError
from datagen import mixtures
from pipeline import waveform_pairs

SR = 16000


def _write_split(root, n_clips=3, n=SR // 2, snrs=((-3.4,), (0.0,), (5.0, -5.0))):
  rng = np.random.default_rng(0)
  for i in range(n_clips):
    voice = (0.05 * np.sin(2 * np.pi * 220 * np.arange(n) / SR)).astype(np.float32)
    noise = rng.standard_normal(n)
    noise = (noise * np.std(voice) / np.std(noise)).astype(np.float32)   # 0 dB SNR
    mixtures.write_clip(os.path.join(root, f'{i:04d}'), voice, noise, sample_rate=SR,
                        snrs_db=snrs[i % len(snrs)], info={'index': i})


class WaveformPairsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.dir)
    self.split = os.path.join(self.dir, 'train')
    _write_split(self.split)

  def test_check_split_lists_every_mixture(self):
    entries = waveform_pairs.check_split(self.split)
    self.assertEqual([(os.path.basename(f), s) for f, s in entries],
                     [('0000', -3.4), ('0001', 0.0), ('0002', -5.0), ('0002', 5.0)])

  def test_pairs_sum_to_the_mixture_at_their_snr(self):
    for mixture, sources in waveform_pairs.iter_pairs(self.split):
      self.assertEqual(sources.shape, (2, mixture.shape[0]))
      np.testing.assert_allclose(sources.sum(0), mixture, atol=1e-6)   # float32 rounding
    first = next(waveform_pairs.iter_pairs(self.split))[1]
    self.assertAlmostEqual(waveform_pairs.snr_db(first[0], first[1]), -3.4, places=3)

  def test_segments_are_cut_and_padded_to_length(self):
    items = list(waveform_pairs.iter_pairs(self.split, segment_samples=3000, shuffle=True,
                                           seed=1))
    self.assertLen(items, 4)
    self.assertTrue(all(m.shape == (3000,) and s.shape == (2, 3000) for m, s in items))
    long = list(waveform_pairs.iter_pairs(self.split, segment_samples=SR))
    self.assertTrue(np.all(long[0][0][SR // 2:] == 0))

  def test_dataset_batches_pairs(self):
    ds = waveform_pairs.waveform_pair_dataset(self.split, segment_samples=4000, batch_size=2)
    mixture, sources = next(iter(ds))
    self.assertEqual(tuple(mixture.shape), (2, 4000))
    self.assertEqual(tuple(sources.shape), (2, 2, 4000))

  def test_missing_noise_is_named_before_any_item(self):
    os.remove(os.path.join(self.split, '0001', 'noise.wav'))
    with self.assertRaisesRegex(ParameterError, r"0001'?: noise.wav is missing"):
      waveform_pairs.waveform_pair_dataset(self.split)

  def test_stereo_and_other_rate_and_length_are_named(self):
    folder = os.path.join(self.split, '0000')
    path = os.path.join(folder, 'voice.wav')
    y, _ = sf.read(path)
    sf.write(path, np.stack([y, y], 1), SR, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError, '0000.*voice.wav has 2 channels'):
      waveform_pairs.check_split(self.split)
    sf.write(path, y, 8000, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError, '0000.*voice.wav has sample rate 8000'):
      waveform_pairs.check_split(self.split)
    sf.write(path, y[:-5], SR, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError, '0000.*noise.wav has 8000 samples, voice.wav has 7995'):
      waveform_pairs.check_split(self.split)

  def test_folder_without_mixture_and_stray_folder_are_named(self):
    for name in os.listdir(os.path.join(self.split, '0001')):
      if name.startswith('mix_snr_'):
        os.remove(os.path.join(self.split, '0001', name))
    with self.assertRaisesRegex(ParameterError, '0001.*no mixture'):
      waveform_pairs.check_split(self.split)
    os.makedirs(os.path.join(self.split, 'extra'))
    with self.assertRaisesRegex(ParameterError, "holds 'extra', which is not a clip folder"):
      waveform_pairs.check_split(self.split)

  def test_mixture_that_is_not_the_sum_is_named_when_read(self):
    path = os.path.join(self.split, '0001', 'mix_snr_0.wav')
    y, _ = sf.read(path, dtype='float32')
    sf.write(path, 2 * y, SR, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError, '0001.*mix_snr_0.wav is not voice.wav'):
      list(waveform_pairs.iter_pairs(self.split))


if __name__ == '__main__':
  absltest.main()
