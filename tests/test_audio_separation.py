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

from experiments import basis_separator
from experiments import separate_files
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

  def test_patches_go_in_equal_batches(self):
    sizes = []

    def fake(mixtures, *, seed):
      del seed
      sizes.append(len(mixtures))
      return np.stack([mixtures, mixtures])

    image = np.zeros((4, 64 + 8 * 16, 1), np.float32)      # 9 patches of 64 at hop 16
    out, stats = basis_separator.separate_image(fake, image, patch_frames=64, hop_frames=16,
                                                batch_size=8, seed=0, log=lambda s: None)
    self.assertEqual(stats['n_patches'], 9)
    self.assertEqual(sizes, [5, 5])                         # not 8 + 1 padded to 8
    self.assertEqual(out.shape, (2,) + image.shape)

  def test_chains_average_the_patches_powers(self):
    mixing = basis_separator.DbPowerSum(-100.0, 20.0)
    unit = lambda db: (db + 100.0) / 120.0
    seen = []

    def fake(mixtures, *, seed):
      del seed
      # The first copy of every patch comes back at -10 dB, the second at -20 dB.
      values = [unit(-10.0) if len(seen) + i < 9 else unit(-20.0)
                for i in range(len(mixtures))]
      seen.extend(values)
      est = np.ones_like(mixtures) * np.asarray(values, np.float32)[:, None, None, None]
      return np.stack([est, est])

    fake.mixing = mixing
    image = np.zeros((4, 64 + 8 * 16, 1), np.float32)       # 9 patches
    out, stats = basis_separator.separate_image(fake, image, patch_frames=64, hop_frames=16,
                                                batch_size=8, seed=0, chains=2,
                                                log=lambda s: None)
    self.assertLen(seen, 18)                                 # 2 x 9 patches, 3 batches of 6
    self.assertEqual(stats['n_patches'], 9)
    # (0.1 + 0.01) / 2 in power: -12.596 dB, not the dB mean -15.
    self.assertAllClose(out, np.full((2,) + image.shape, unit(10 * np.log10(0.055))),
                        atol=1e-5)
    self.assertAllClose(basis_separator.power_mean(
        np.array([unit(-10.0), unit(-20.0)]), mixing, axis=0), unit(-12.5964), atol=1e-5)
    with self.assertRaisesRegex(ParameterError, 'chains'):
      basis_separator.BasisOptions(chains=0)

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

  def _run(self, *, figure=False, **options):
    """separate_audio's run with the tiny priors (input and out_dir in ``options``)."""
    config = separate_files.SeparateFilesConfig(
        input=options.pop('input'), out_dir=options.pop('out_dir'), figure=figure,
        channels=options.pop('channels', 'mid'), chunk_s=options.pop('chunk_s', None))
    options.setdefault('steps_per_sigma', 1)
    options.setdefault('precision', 'float32')
    options.setdefault('prior_dirs', tuple(self.priors))
    return separate_files.run(config, method_options=options, log=lambda s: None)

  def test_a_ten_second_mixture_goes_through_end_to_end(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _mixture(10.0, rate=22050), 22050, subtype='PCM_16')  # another rate
    out = os.path.join(tmp, 'out')
    summary = self._run(input=mix, out_dir=out, figure=True)
    record = summary['records']['mix.wav']
    self.assertEqual(sorted(record['sources']), ['piano', 'violin'])
    for name in ('piano', 'violin'):
      y, sr = sf.read(os.path.join(out, f'{name}.wav'))
      self.assertEqual(sr, 22050)                # back at the input's rate
      self.assertEqual(len(y), 220500)
      self.assertTrue(np.all(np.isfinite(y)))
    with open(os.path.join(out, 'separation.json')) as f:
      doc = json.load(f)
    self.assertEqual(doc['sample_rate'], 22050)
    self.assertEqual(doc['model_sample_rate'], 16000)
    self.assertGreater(doc['model_stats']['n_patches'], 4)      # 313 frames, hop 48
    # The fast sampler: warm start at the third level, 1 step (the override) on
    # each level left, and the Tweedie step.
    levels = len(doc['settings']['sigmas'])
    self.assertEqual(doc['settings']['calls_per_source'], (levels - 2) + 1)
    self.assertAlmostEqual(doc['settings']['start_sigma'], doc['settings']['sigmas'][2])
    self.assertTrue(doc['settings']['denoise'])
    self.assertIn('step_check_eta_L_p90', doc['model_stats'])
    self.assertTrue(os.path.exists(os.path.join(out, 'spectrograms.png')))
    self.assertFalse(os.path.exists(os.path.join(out, '.cache')))   # cleaned up

  def test_wiener_estimates_sum_to_the_mixture(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    y = _mixture(3.0)
    sf.write(mix, y, 16000, subtype='FLOAT')
    out = os.path.join(tmp, 'out')
    record = self._run(input=mix, out_dir=out, sampler='paper')['records']['mix.wav']
    self.assertEqual(record['settings']['calls_per_source'],
                     len(record['settings']['sigmas']))   # the paper's: every level
    self.assertIsNone(record['settings']['start_sigma'])
    total = sum(sf.read(os.path.join(out, f'{n}.wav'))[0] for n in ('piano', 'violin'))
    # Wiener masks sum to one per bin, so the estimates add up to the mixture
    # (to the iSTFT's float32 rounding).
    self.assertAllClose(total, y, atol=1e-4)

  def test_a_long_stereo_file_is_separated_in_chunks_at_its_rate(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'stereo.wav')
    left = _mixture(12.0, rate=44100)
    sf.write(mix, np.stack([left, 0.5 * left], axis=1), 44100, subtype='PCM_16')
    out = os.path.join(tmp, 'out')
    record = self._run(input=mix, out_dir=out, channels='each',
                       chunk_s=5.0)['records']['stereo.wav']
    self.assertEqual(record['chunks']['chunks'], 6)        # 3 chunks per channel
    for name in ('piano', 'violin'):
      y, sr = sf.read(os.path.join(out, f'{name}.wav'), always_2d=True)
      self.assertEqual((sr, y.shape), (44100, (len(left), 2)))
      self.assertTrue(np.all(np.isfinite(y)))

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
        self._run(input=path, out_dir=out)
      wavs = [f for f in os.listdir(out) if f.endswith('.wav')] if os.path.isdir(out) else []
      self.assertEqual(wavs, [], msg=name)

  def test_options_reject_bad_values(self):
    with self.assertRaisesRegex(ParameterError, "unknown phase method 'phasey'"):
      basis_separator.BasisOptions(phase='phasey')
    with self.assertRaisesRegex(ParameterError, 'step_size'):
      basis_separator.BasisOptions(step_size=float('nan'))
    with self.assertRaisesRegex(ParameterError, 'at least 2'):
      basis_separator.BasisSeparator((self.priors[0],), ('a',))

  def test_a_model_folder_names_its_refiner_relative_to_itself(self):
    import shutil  # pylint: disable=g-import-not-at-top
    from common import assets  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    model = os.path.join(tmp, 'model')
    os.makedirs(model)
    shutil.copytree(os.path.join(assets.root(), 'inversion', 'refiner'),
                    os.path.join(tmp, 'my_refiner'))
    doc = {'method': 'basis', 'priors': {'a': self.priors[0], 'b': self.priors[1]},
           'options': {'refiner': '../my_refiner', 'steps_per_sigma': 1,
                       'precision': 'float32', 'check_step': False}}
    sep = basis_separator.from_model_folder(model, doc, log=None)
    self.assertEqual(sep.options.refiner, os.path.join(tmp, 'my_refiner'))
    self.assertEqual(sep.magnitude, 'refiner')
    out = sep.separate(_mixture(1.0), 16000)
    self.assertEqual(out['a'].shape, (16000,))
    # The mel images do not depend on the refiner: another refiner reuses them.
    self.assertEqual(sep._mel_key(np.zeros((96, 40, 1), np.float32)),
                     basis_separator.from_model_folder(
                         None, None, prior_dirs=self.priors, names=('a', 'b'), log=None,
                         steps_per_sigma=1, precision='float32',
                         check_step=False)._mel_key(np.zeros((96, 40, 1), np.float32)))
    with self.assertRaisesRegex(ParameterError, 'goes with magnitude refiner or auto'):
      basis_separator.BasisSeparator(self.priors, ('a', 'b'), options=basis_separator.BasisOptions(
          refiner=os.path.join(tmp, 'my_refiner'), magnitude='nnls'))

  def test_an_image_prior_is_refused_naming_it(self):
    mnist = os.path.join(ROOT, 'assets', 'priors', 'ncsn_mnist')
    with self.assertRaisesRegex(ParameterError, 'ncsn_mnist records no mel features'):
      basis_separator.BasisSeparator((mnist, self.priors[1]), ('a', 'b'),
                                     options=basis_separator.BasisOptions(precision='float32'))

  def test_script_prints_one_line_errors(self):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'separate_audio.py'),
                           '--input=/nonexistent.wav', f'--prior_dir={self.priors[0]}',
                           f'--prior_dir={self.priors[1]}', '--out_dir=/tmp/never'],
                          capture_output=True, text=True, env=env, timeout=300)
    self.assertEqual(proc.returncode, 2)
    self.assertIn('separate_audio: error: --input /nonexistent.wav does not exist',
                  proc.stderr)
    self.assertNotIn('Traceback', proc.stderr)


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
        references_dir=refs, out_dir=os.path.join(tmp, 'out'),
        methods=('basis', 'basis:phase=amplitude_mask', 'IRM2'),
        method_options={'basis': {'prior_dirs': tuple(priors), 'steps_per_sigma': 1,
                                  'precision': 'float32'}})
    summary = evaluate_tracks.run(config, log=lambda s: None)
    self.assertEqual(summary['n_tracks'], 2)
    self.assertEqual({r['method'] for r in summary['rows']},
                     {'BASIS-wiener', 'BASIS-amplitude_mask', 'IRM2', 'mixture-as-estimate'})
    self.assertGreater(summary['seconds_per_audio_second_median']['BASIS-wiener'], 0)
    lines = []
    evaluate_tracks.run(config, log=lines.append)        # rerun: tracks skipped
    self.assertLen([l for l in lines if 'done in an earlier run' in l], 2)
    # A reference rewritten in place (say a fixed gain): the oracle, which is built from
    # the true sources, separates that track again; BASIS, which saw only the unchanged
    # mixture, does not.
    y, rate = sf.read(os.path.join(refs, '00000', 'violin.wav'), dtype='float32')
    sf.write(os.path.join(refs, '00000', 'violin.wav'), 0.5 * y, rate, subtype='FLOAT')
    lines = []
    evaluate_tracks.run(config, log=lines.append)
    redone = [l for l in lines if l.startswith('[1/2] 00000:')]
    self.assertLen(redone, 1)
    self.assertIn('IRM2', redone[0])
    self.assertNotIn('BASIS', redone[0])
    self.assertLen([l for l in lines if 'done in an earlier run' in l], 1)
    with self.assertRaisesRegex(ParameterError, 'has no violin/ folder'):
      os.rename(os.path.join(render, 'violin'), os.path.join(render, 'v'))
      evaluate_tracks.tracks_from_render(render, refs)


def _one_track_and_tiny_priors(tmp):
  """A references folder with one 2.5 s track of two tones, and tiny piano / violin priors."""
  refs = os.path.join(tmp, 'refs')
  os.makedirs(os.path.join(refs, '00000'))
  t = np.arange(40000) / 16000
  piano = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
  violin = (0.05 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)
  for name, y in (('piano', piano), ('violin', violin), ('mixture', piano + violin)):
    sf.write(os.path.join(refs, '00000', f'{name}.wav'), y, 16000, subtype='FLOAT')
  priors = []
  for i, name in enumerate(('ncsn_piano', 'ncsn_violin')):
    priors.append(os.path.join(tmp, name))
    _tiny_mel_prior(priors[-1], seed=i)
  return refs, priors


class AudioCallsStudyTest(tf.test.TestCase):

  def test_cells_score_each_track_and_resume(self):
    from experiments.studies import basis_calls  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    refs, priors = _one_track_and_tiny_priors(tmp)
    config = basis_calls.AudioCallStudyConfig(
        out_dir=os.path.join(tmp, 'out'), references_dir=refs,
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


if __name__ == '__main__':
  tf.test.main()


@pytest.mark.slow
class PriorSelectionTest(tf.test.TestCase):

  def test_candidates_are_ranked_by_sdr_improvement_and_resumed(self):
    from experiments.studies import prior_selection  # pylint: disable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    refs, priors = _one_track_and_tiny_priors(tmp)
    spec = f'a:{priors[0]},{priors[1]}'
    candidates = [prior_selection.parse_candidate(spec),
                  prior_selection.parse_candidate(f'b:{priors[0]},{priors[1]};sampler=paper')]
    self.assertEqual(candidates[1].options, {'sampler': 'paper'})
    out = os.path.join(tmp, 'out')
    rows = prior_selection.run(refs, candidates, out,
                               base_options={'steps_per_sigma': 1, 'precision': 'float32'},
                               log=lambda s: None)
    self.assertEqual(sorted(r['name'] for r in rows), ['a', 'b'])
    self.assertGreaterEqual(rows[0]['mean_sdri'], rows[1]['mean_sdri'])
    for r in rows:
      self.assertAlmostEqual(r['sdri']['piano'], r['sdr']['piano'] - r['mixture_sdr']['piano'])
    self.assertIn('| candidate | piano SDR |', open(os.path.join(out, 'selection.md')).read())
    with self.assertRaisesRegex(ParameterError, 'expected NAME:PRIOR_DIR'):
      prior_selection.parse_candidate('nothing')
    with self.assertRaisesRegex(ParameterError, 'does not exist'):
      prior_selection.parse_candidate('c:/no/such,/dirs')
