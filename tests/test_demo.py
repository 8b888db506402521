"""The demo (make demo) runs end to end on the shipped data."""

import json
import os

import numpy as np
import tensorflow as tf

from pipeline import demo
from pipeline.tfrecords import read_metadata


class DemoTest(tf.test.TestCase):

  def test_demo_makes_tfrecords_figure_and_separation(self):
    from ncsn import schedules, train_lib  # pylint: disable=g-import-not-at-top
    from ncsn.model import ScoreNetConfig  # pylint: disable=g-import-not-at-top
    from training.loop import write_json_atomic  # pylint: disable=g-import-not-at-top
    tmp = self.get_temp_dir()
    prior_dir = os.path.join(tmp, 'prior')   # a tiny untrained prior: fast
    config = train_lib.NCSNTrainConfig(net=ScoreNetConfig(ngf=4),
                                       schedule=schedules.ncsn_v1(), image_shape=(28, 28, 1))
    os.makedirs(prior_dir)
    tf.train.Checkpoint(model=train_lib.build_model(config)).write(
        os.path.join(prior_dir, 'weights'))
    write_json_atomic(os.path.join(prior_dir, 'config.json'), config.description())
    out = os.path.join(tmp, 'demo')
    lines = []
    summary = demo.run(out, n_mixtures=2, steps_per_sigma=1, prior_dir=prior_dir,
                       log=lines.append)
    for name in demo.SOURCES:
      meta = read_metadata(os.path.join(out, 'tfrecords', name))
      self.assertEqual(meta['count'], 4)          # 8.2 s -> four 2.04 s patches
      self.assertEqual(meta['patch_shape'], [96, 64, 1])
    self.assertTrue(os.path.getsize(os.path.join(out, 'spectrograms.png')) > 10000)
    self.assertTrue(os.path.exists(os.path.join(out, 'mnist_separation', 'separation.png')))
    self.assertTrue(np.isfinite(summary['mnist_separation']['mean_psnr_db']))
    with open(os.path.join(out, 'summary.json')) as f:
      self.assertEqual(json.load(f)['clips']['piano']['patches'], 4)
    self.assertTrue(any('mean PSNR' in line for line in lines))

  def test_shipped_clips_are_audible_and_mixture_is_their_sum(self):
    from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
    clips = demo.load_demo_clips(FeatureConfig())
    for name, y in clips.items():
      self.assertGreater(np.sqrt(np.mean(y ** 2)), 0.01, name)
    # PCM16 files: the sum holds to 3 quantisation steps.
    np.testing.assert_allclose(clips['piano'] + clips['violin'], clips['mixture'],
                               atol=3 / 32768)


if __name__ == '__main__':
  tf.test.main()
