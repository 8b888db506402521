"""Spectrogram figures in bounded memory (issue 27): the blocked, grouped STFT image."""

import os

import numpy as np
import tensorflow as tf

from inversion import figures
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform


def _whole_db(y, transform):
  return 20 * np.log10(np.abs(transform.stft(y).numpy()) + 1e-10)


class StftDbColumnsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.transform = MelTransform(FeatureConfig())
    rng = np.random.default_rng(0)
    self.y = (0.1 * rng.standard_normal(16000 * 3 + 123)).astype(np.float32)

  def test_blocks_equal_the_whole_stft(self):
    # 95 frames in blocks of 16: the block edges must not show.
    self.enter_context(tf.compat.v1.test.mock.patch.object(figures, 'BLOCK_FRAMES', 16))
    got = figures.stft_db_columns(self.y, self.transform)
    want = _whole_db(self.y, self.transform)
    self.assertEqual(got.shape, want.shape)
    # float32 FFTs of the same frames; 1e-3 dB is far below what a figure shows.
    self.assertAllClose(got, want, atol=1e-3, rtol=0)

  def test_long_clips_are_grouped_by_their_loudest_frame(self):
    self.enter_context(tf.compat.v1.test.mock.patch.object(figures, 'BLOCK_FRAMES', 16))
    got = figures.stft_db_columns(self.y, self.transform, max_columns=10)
    want = _whole_db(self.y, self.transform)
    group = -(-len(want) // 10)                              # 95 frames -> groups of 10
    self.assertEqual(got.shape, (-(-len(want) // group), want.shape[1]))
    for i in range(len(got)):
      self.assertAllClose(got[i], want[i * group:(i + 1) * group].max(axis=0), atol=1e-3,
                          rtol=0)

  def test_figure_of_a_long_clip_is_written(self):
    path = os.path.join(self.create_tempdir().full_path, 'f.png')
    figures.spectrogram_figure(path, {'a': self.y, 'b': 0.5 * self.y}, self.transform)
    self.assertGreater(os.path.getsize(path), 1000)
