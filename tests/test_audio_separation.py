"""Whole-recording separation: patching round trip, a 10 s mixture end to end, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from absl.testing import parameterized

from experiments import audio_separation as lib
from experiments import patching
from pipeline import FeatureConfig
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny_mel_prior(prior_dir, seed=0):
  from ncsn import schedules, train_lib  # pylint: disable=g-import-not-at-top
  from ncsn.model import ScoreNetConfig  # pylint: disable=g-import-not-at-top
  from common.atomic import write_json_atomic  # pylint: disable=g-import-not-at-top
  features = FeatureConfig()
  config = train_lib.NCSNTrainConfig(
      net=ScoreNetConfig(ngf=4, arch='unet', channel_mult=(1, 2), num_res_blocks=1),
      schedule=schedules.NoiseSchedule(1.0, 0.01, 3), image_shape=features.patch_shape,
      dataset={'name': 'melspec', 'features': features.to_dict()}, seed=seed)
  os.makedirs(prior_dir)
  tf.train.Checkpoint(model=train_lib.build_model(config)).write(
      os.path.join(prior_dir, 'weights'))
  write_json_atomic(os.path.join(prior_dir, 'config.json'), config.description())


def _mixture(seconds, rate=16000, seed=0):
  t = np.arange(int(seconds * rate)) / rate
  rng = np.random.default_rng(seed)
  piano = 0.2 * np.sin(2 * np.pi * 220 * t) * np.exp(-3 * (t % 0.5))
  violin = 0.1 * np.sin(2 * np.pi * 660 * t + 0.5 * np.sin(2 * np.pi * 5 * t))
  return (piano + violin + 1e-3 * rng.normal(size=t.shape)).astype(np.float32)


class PatchingTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((64, 64), (64, 48), (64, 32), (64, 1), (200, 48), (257, 64),
                            (30, 48), (65, 48))
  def test_split_then_stitch_is_exact(self, n_frames, hop):
    image = np.random.default_rng(n_frames + hop).uniform(size=(5, n_frames, 1))
    patches, starts, padded = patching.split_into_patches(image, patch_frames=64,
                                                          hop_frames=hop)
    self.assertEqual(patches.shape[1:], (5, 64, 1))
    self.assertEqual(int(starts[-1]), padded - 64)           # the last patch ends at the end
    back = patching.stitch_patches(patches[None], starts, padded, hop_frames=hop)[0]
    # float32 data through float64 weights: exact to float32 rounding.
    self.assertAllClose(back[:, :n_frames], image, atol=1e-6, rtol=0)
    if n_frames < 64:
      self.assertAllEqual(back[:, n_frames:], np.zeros_like(back[:, n_frames:]))

  def test_crossfade_weights_ramp_over_the_overlap(self):
    w = patching.crossfade_weights(64, 48)
    self.assertTrue(np.all(w > 0))
    self.assertAllClose(w[16:48], np.ones(32))
    self.assertLess(w[0], 0.05)
    # Two neighbours' ramps add to one across the overlap: a smooth cross-fade.
    self.assertAllClose(w[48:] + w[:16], np.ones(16))

  def test_bad_sizes_raise(self):
    with self.assertRaisesRegex(ParameterError, 'hop_frames'):
      patching.patch_starts(100, 64, 0)
    with self.assertRaisesRegex(ParameterError, 'image'):
      patching.split_into_patches(np.zeros((5, 64)), patch_frames=64, hop_frames=32)


@pytest.mark.slow
class AudioSeparationTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(os.environ.get('TEST_TMPDIR', '/tmp'), f'audio_sep_{os.getpid()}')
    cls.priors = []
    for i, name in enumerate(('ncsn_piano', 'ncsn_violin')):
      d = os.path.join(cls.root, name)
      if not os.path.exists(d):
        _tiny_mel_prior(d, seed=i)
      cls.priors.append(d)

  def _config(self, **kwargs):
    kwargs.setdefault('steps_per_sigma', 1)
    kwargs.setdefault('batch_size', 8)
    kwargs.setdefault('precision', 'float32')
    kwargs.setdefault('figure', False)
    return lib.AudioSeparationConfig(prior_dirs=tuple(self.priors), **kwargs)

  def test_a_ten_second_mixture_goes_through_end_to_end(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _mixture(10.0, rate=22050), 22050, subtype='PCM_16')  # another rate
    out = os.path.join(tmp, 'out')
    summary = lib.run(self._config(input=mix, out_dir=out, figure=True), log=lambda s: None)
    self.assertEqual(sorted(summary['sources']), ['piano', 'violin'])
    for name in ('piano', 'violin'):
      y, sr = sf.read(os.path.join(out, f'{name}.wav'))
      self.assertEqual(sr, 16000)
      self.assertEqual(len(y), 160000)           # 10 s at the priors' rate
      self.assertTrue(np.all(np.isfinite(y)))
    with open(os.path.join(out, 'separation.json')) as f:
      doc = json.load(f)
    self.assertEqual(doc['original_sample_rate'], 22050)
    self.assertEqual(doc['n_patches'], summary['n_patches'])
    self.assertGreater(doc['n_patches'], 4)      # 313 frames, hop 48
    # The fast sampler: warm start at the third level, 1 step (the override) on
    # each level left, and the Tweedie step.
    levels = len(doc['separator']['sigmas'])
    self.assertEqual(doc['separator']['calls_per_source'], (levels - 2) + 1)
    self.assertAlmostEqual(doc['separator']['start_sigma'], doc['separator']['sigmas'][2])
    self.assertTrue(doc['separator']['denoise'])
    self.assertTrue(os.path.exists(os.path.join(out, 'spectrograms.png')))
    self.assertFalse(os.path.exists(os.path.join(out, 'partial')))   # cleaned up

  def test_wiener_estimates_sum_to_the_mixture(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    y = _mixture(3.0)
    sf.write(mix, y, 16000, subtype='FLOAT')
    out = os.path.join(tmp, 'out')
    summary = lib.run(self._config(input=mix, out_dir=out, sampler='paper'), log=lambda s: None)
    self.assertEqual(summary['separator']['calls_per_source'],
                     len(summary['separator']['sigmas']))   # the paper's: every level
    self.assertIsNone(summary['separator']['start_sigma'])
    total = sum(sf.read(os.path.join(out, f'{n}.wav'))[0] for n in ('piano', 'violin'))
    # Wiener masks sum to one per bin, so the estimates add up to the mixture
    # (to the iSTFT's float32 rounding).
    self.assertAllClose(total, y, atol=1e-4)

  def test_bad_audio_gives_a_clear_error_and_writes_nothing(self):
    tmp = self.create_tempdir().full_path
    cases = {
        'missing.wav': None,
        'silent.wav': np.zeros(32000, np.float32),
        'short.wav': _mixture(0.1),
        'nan.wav': np.where(np.arange(32000) == 100, np.nan, _mixture(2.0)).astype(np.float32),
    }
    regexes = {'missing.wav': 'does not exist', 'silent.wav': 'silent',
               'short.wav': 'at least 0.25 s', 'nan.wav': 'non-finite|NaN'}
    for name, y in cases.items():
      path = os.path.join(tmp, name)
      if y is not None:
        sf.write(path, y, 16000, subtype='FLOAT')
      out = os.path.join(tmp, 'out_' + name)
      with self.assertRaisesRegex(ParameterError, regexes[name]):
        lib.run(self._config(input=path, out_dir=out), log=lambda s: None)
      wavs = [f for f in os.listdir(out) if f.endswith('.wav')] if os.path.isdir(out) else []
      self.assertEqual(wavs, [], msg=name)

  def test_config_rejects_bad_values(self):
    with self.assertRaisesRegex(ParameterError, "unknown phase method 'phasey'"):
      self._config(input='x', out_dir='y', phase='phasey')
    with self.assertRaisesRegex(ParameterError, 'step_size'):
      self._config(input='x', out_dir='y', step_size=float('nan'))
    with self.assertRaisesRegex(ParameterError, 'at least 2'):
      lib.AudioSeparationConfig(input='x', out_dir='y', prior_dirs=(self.priors[0],))

  def test_an_image_prior_is_refused_naming_it(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _mixture(2.0), 16000, subtype='FLOAT')
    mnist = os.path.join(ROOT, 'assets', 'priors', 'ncsn_mnist')
    with self.assertRaisesRegex(ParameterError, 'ncsn_mnist records no mel features'):
      lib.run(lib.AudioSeparationConfig(input=mix, out_dir=os.path.join(tmp, 'o'),
                                        prior_dirs=(mnist, self.priors[1]), names=('a', 'b'),
                                        steps_per_sigma=1, precision='float32'),
              log=lambda s: None)

  def test_script_prints_one_line_errors(self):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'separate_audio.py'),
                           '--input=/nonexistent.wav', f'--prior_dir={self.priors[0]}',
                           f'--prior_dir={self.priors[1]}', '--out_dir=/tmp/never'],
                          capture_output=True, text=True, env=env, timeout=300)
    self.assertEqual(proc.returncode, 2)
    self.assertIn("separate_audio: error: audio file '/nonexistent.wav' does not exist",
                  proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)


if __name__ == '__main__':
  tf.test.main()


@pytest.mark.slow
class EvaluateTracksTest(tf.test.TestCase):

  def test_rendered_split_is_separated_scored_and_resumed(self):
    from experiments import evaluate_tracks  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    render = os.path.join(tmp, 'render')
    for clip in ('00000', '00001'):
      t = np.arange(40000) / 16000
      piano = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
      violin = (0.05 * np.sin(2 * np.pi * (600 + 100 * int(clip)) * t)).astype(np.float32)
      for name, y in (('piano', piano), ('violin', violin), ('mixture', piano + violin)):
        os.makedirs(os.path.join(render, name), exist_ok=True)
        sf.write(os.path.join(render, name, f'{clip}.wav'), y, 16000, subtype='FLOAT')
    refs = os.path.join(tmp, 'refs')
    self.assertEqual(evaluate_tracks.tracks_from_render(render, refs), ['00000', '00001'])
    priors = []
    for i, name in enumerate(('ncsn_piano', 'ncsn_violin')):
      priors.append(os.path.join(tmp, name))
      _tiny_mel_prior(priors[-1], seed=i)
    config = evaluate_tracks.TrackEvalConfig(
        references_dir=refs, out_dir=os.path.join(tmp, 'out'), prior_dirs=tuple(priors),
        phases=('wiener', 'amplitude_mask'), oracles=('IRM2',), steps_per_sigma=1,
        precision='float32')
    summary = evaluate_tracks.run(config, log=lambda s: None)
    self.assertEqual(summary['n_tracks'], 2)
    self.assertEqual({r['method'] for r in summary['rows']},
                     {'BASIS-wiener', 'BASIS-amplitude_mask', 'IRM2', 'mixture-as-estimate'})
    self.assertGreater(summary['separation_s_per_2_04_s_median'], 0)
    lines = []
    evaluate_tracks.run(config, log=lines.append)        # rerun: tracks skipped
    self.assertLen([l for l in lines if 'done in an earlier run' in l], 2)
    with self.assertRaisesRegex(ParameterError, 'has no violin/ folder'):
      os.rename(os.path.join(render, 'violin'), os.path.join(render, 'v'))
      evaluate_tracks.tracks_from_render(render, refs)


class AudioCallsStudyTest(tf.test.TestCase):

  def test_cells_score_each_track_and_resume(self):
    from experiments.studies import basis_calls  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    refs = os.path.join(tmp, 'refs', '00000')
    os.makedirs(refs)
    t = np.arange(40000) / 16000
    piano = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    violin = (0.05 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
    for name, y in (('piano', piano), ('violin', violin), ('mixture', piano + violin)):
      sf.write(os.path.join(refs, f'{name}.wav'), y, 16000, subtype='FLOAT')
    priors = []
    for i, name in enumerate(('ncsn_piano', 'ncsn_violin')):
      priors.append(os.path.join(tmp, name))
      _tiny_mel_prior(priors[-1], seed=i)
    config = basis_calls.AudioCallStudyConfig(
        out_dir=os.path.join(tmp, 'out'), references_dir=os.path.dirname(refs),
        cells=(('basis', 3), ('warm_start_2_denoise', 2)), prior_dirs=tuple(priors),
        precision='float32')
    results = basis_calls.run_audio(config, log=lambda s: None)
    cells = results['cells']
    self.assertEqual([c['steps'] for c in cells], [[1, 1, 1], [0, 0, 1]])   # 3 levels
    for c in cells:
      self.assertEqual(c['sources'], ['piano', 'violin'])
      self.assertTrue(np.all(np.isfinite(c['median_sdr'])))
    for name in ('audio_results.json', 'audio_table.md', 'sdr_vs_calls.png'):
      self.assertTrue(os.path.exists(os.path.join(config.out_dir, name)), name)
    lines = []
    basis_calls.run_audio(config, log=lines.append)
    self.assertLen([l for l in lines if 'done before' in l], 2)
    with self.assertRaisesRegex(ParameterError, 'unknown audio row'):
      basis_calls.AudioCallStudyConfig(out_dir='x', references_dir='y', cells=(('hard', 10),))


class PriorQualityTest(tf.test.TestCase):

  def test_denoising_table_has_one_row_per_level(self):
    from experiments.studies import prior_quality  # pylint: disable=g-import-not-at-top
    from pipeline.tfrecords import write_patches  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    prior = os.path.join(tmp, 'ncsn_piano')
    _tiny_mel_prior(prior)
    data = os.path.join(tmp, 'tfr')
    write_patches(np.random.default_rng(0).uniform(0, 1, (6, 96, 64, 1)).astype(np.float32),
                  data, features=FeatureConfig())
    rows = prior_quality.run(prior_quality.PriorQualityConfig(prior_dir=prior, data_dir=data,
                                                              n_examples=4))
    self.assertLen(rows, 3)                    # the tiny prior's 3 levels
    self.assertTrue(all(np.isfinite(r['mse_ratio']) for r in rows))
    self.assertIn('| sigma | MSE / sigma^2 |', prior_quality.markdown(rows))
