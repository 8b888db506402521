"""The demo (make demo) runs end to end on the shipped mixture, with tiny priors."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from experiments import demo
from pipeline import FeatureConfig
from pipeline.demo import load_demo_clips
from tests.test_audio_separation import _tiny_mel_prior


@pytest.mark.slow
class DemoTest(tf.test.TestCase):

  def test_demo_writes_wavs_figure_metrics_and_report(self):
    tmp = self.create_tempdir().full_path
    priors = []
    for i, name in enumerate(('ncsn_piano', 'ncsn_violin')):
      priors.append(os.path.join(tmp, name))
      _tiny_mel_prior(priors[-1], seed=i)
    out = os.path.join(tmp, 'demo')
    lines = []
    summary = demo.run(demo.DemoConfig(out_dir=out, prior_dirs=tuple(priors),
                                       steps_per_sigma=1, precision='float32'),
                       log=lines.append)
    for name in ('piano', 'violin'):
      self.assertTrue(os.path.exists(os.path.join(out, 'separation', f'{name}.wav')))
    self.assertGreater(os.path.getsize(os.path.join(out, 'spectrograms.png')), 10000)
    self.assertTrue(os.path.exists(os.path.join(out, 'report', 'report.html')))
    with open(os.path.join(out, 'summary.json')) as f:
      doc = json.load(f)
    methods = {r['method'] for r in doc['rows']}
    self.assertEqual(methods, {'BASIS-wiener', 'BASIS-misi', 'IBM1', 'IRM1', 'IRM2',
                               'mixture-as-estimate'})
    for row in doc['rows']:
      self.assertIn(row['source'], ('piano', 'violin'))
      for metric in ('SDR', 'SIR', 'SAR'):
        self.assertTrue(np.isfinite(row[metric]), msg=(row['method'], metric))
    by = {(r['method'], r['source']): r for r in doc['rows']}
    # Oracles from the true sources beat leaving the mixture as it is.
    for source in ('piano', 'violin'):
      self.assertGreater(by[('IRM2', source)]['SDR'],
                         by[('mixture-as-estimate', source)]['SDR'] + 5)
    self.assertTrue(any('| method | source |' in line for line in lines))
    self.assertEqual(summary['report_html'], os.path.join(out, 'report', 'report.html'))

  def test_shipped_clips_are_audible_and_mixture_is_their_sum(self):
    clips = load_demo_clips(FeatureConfig())
    for name, y in clips.items():
      self.assertGreater(np.sqrt(np.mean(y ** 2)), 0.01, name)
    # PCM16 files: the sum holds to 3 quantisation steps.
    np.testing.assert_allclose(clips['piano'] + clips['violin'], clips['mixture'],
                               atol=3 / 32768)


if __name__ == '__main__':
  tf.test.main()
