"""experiments.studies.inversion_study (the lambda / iteration study) and inversion_study.py, on tiny synthetic data.

The data are written with ``datagen.speech.write_clip`` (no espeak-ng
needed): a "voice" of gated harmonic tones and white noise, 0.25 s, with a
small STFT (n_fft 256, hop 64) so the whole study runs in seconds.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from experiments.studies import inversion_study as study
from datagen import speech
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
N = SR // 4


def _voice(rng):
  t = np.arange(N) / SR
  f0 = rng.uniform(120, 250)
  y = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 6))
  gate = (np.sin(2 * np.pi * 3 * t) > -0.3).astype(np.float64)
  return (0.05 * y * gate).astype(np.float32)


def _dataset(root, *, n_val=2, n_test=1, snrs=(0, -10)):
  rng = np.random.default_rng(0)
  for split, n in (('validation', n_val), ('test', n_test)):
    for i in range(n):
      voice = _voice(rng)
      noise = rng.standard_normal(N)
      noise = (noise * speech.rms(voice) / speech.rms(noise)).astype(np.float32)
      speech.write_clip(os.path.join(root, split, f'{i:04d}'), voice, noise,
                        sample_rate=SR, snrs_db=snrs)
  return root


def _config(data_dir, out_dir, **kwargs):
  # 64-tap BSS Eval filters (museval's 512 cost about 1 s per clip here).
  defaults = dict(n_fft=256, hop_length=64, n_mels=32, lambdas=(0.0, 100.0),
                  iterations=(0, 5), snrs_db=(0.0, -10.0), pesq=False, bss_filters_len=64)
  defaults.update(kwargs)
  return study.StudyConfig(data_dir=data_dir, out_dir=out_dir, **defaults)


class StudyTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='inversion_study_')
    cls.data = _dataset(os.path.join(cls.root, 'data'))
    cls.out = os.path.join(cls.root, 'out')
    cls.results = study.run(_config(cls.data, cls.out), log=lambda *a: None)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_writes_json_and_markdown_with_every_algorithm_and_snr(self):
    with open(os.path.join(self.out, study.RESULTS_JSON)) as f:
      saved = json.load(f)
    self.assertEqual(saved['chosen'], json.loads(json.dumps(self.results['chosen'])))
    rows = {(r['magnitudes'], r['algorithm'], r['snr_db']) for r in saved['test']}
    self.assertLen(rows, 2 * (1 + len(study.ALGORITHMS)) * 2)
    with open(os.path.join(self.out, study.TABLES_MD)) as f:
      md = f.read()
    for label in ('Mix+Incons_hardMag', 'Mag+Incons_hardMix', 'Incons_hardMix', 'MISI',
                  'Wiener', 'Amplitude mask', 'GLA (reference)', '32 mel bands'):
      self.assertIn(label, md)
    self.assertIn('| 0 dB | -10 dB |', md)
    self.assertEqual(saved['machine']['n_cpus'], os.cpu_count())

  def test_choices_come_from_the_grid(self):
    for kind in study.MAGNITUDES:
      for algorithm in study.LAMBDA_ALGORITHMS:
        c = self.results['chosen'][kind][algorithm]
        self.assertIn(c['lam'], (0.0, 100.0))
        self.assertIn(c['n_iter'], (0, 5))
        self.assertEqual(set(c['per_snr']), {'0', '-10'})
      self.assertEqual(self.results['chosen'][kind]['incons_hard_mix']['n_iter'], 1)
      self.assertIsNone(self.results['chosen'][kind]['wiener']['n_iter'])

  def test_misi_with_exact_magnitudes_beats_the_amplitude_mask(self):
    val = [r for r in self.results['validation'] if r['magnitudes'] == 'exact'
           and r['algorithm'] == 'misi' and r['snr_db'] == -10.0]
    sdr = {r['n_iter']: r['sdr'] for r in val}
    # Exact magnitudes: MISI converges toward the true sources (measured here
    # about +9 dB from 0 to 5 iterations); 3 dB is a safe margin.
    self.assertGreater(sdr[5], sdr[0] + 3.0)
    self.assertEqual(self.results['chosen']['exact']['misi']['n_iter'], 5)

  def test_mixing_constrained_estimates_are_scored_on_the_speech(self):
    test = {(r['magnitudes'], r['algorithm'], r['snr_db']): r for r in self.results['test']}
    mix = test[('exact', 'mixture', 0.0)]['median']
    # The unprocessed mixture at 0 dB input SNR: SDR and SI-SDR near 0 dB.
    self.assertAlmostEqual(mix['plain_sdr'], 0.0, delta=0.5)
    self.assertAlmostEqual(mix['si_sdr'], 0.0, delta=0.5)
    for algorithm in ('misi', 'wiener', 'mag_incons_hard_mix'):
      self.assertGreater(test[('exact', algorithm, 0.0)]['median']['sdr'], mix['sdr'] + 3)
    self.assertTrue(all(np.isnan(v) for v in
                        test[('exact', 'misi', 0.0)]['per_clip']['pesq']))  # pesq=False

  def test_second_run_reads_the_caches(self):
    caches = sorted(os.listdir(os.path.join(self.out, 'cache')))
    self.assertLen(caches, 8)  # {validation, test} x {exact, mel} x 2 SNRs
    stamps = {c: os.stat(os.path.join(self.out, 'cache', c)).st_mtime_ns for c in caches}
    again = study.run(_config(self.data, self.out), log=lambda *a: None)
    self.assertEqual(again['chosen'], self.results['chosen'])
    self.assertEqual(stamps, {c: os.stat(os.path.join(self.out, 'cache', c)).st_mtime_ns
                              for c in caches})


class SelectTest(tf.test.TestCase):

  def _rows(self):
    rows = []
    for snr, scores in ((10.0, {(0.0, 1): 5, (1.0, 1): 7, (1.0, 5): 7}),
                        (-10.0, {(0.0, 1): 3, (1.0, 1): 1, (1.0, 5): 1})):
      for (lam, n_iter), v in scores.items():
        rows.append(dict(magnitudes='exact', snr_db=snr, algorithm='mix_incons', lam=lam,
                         n_iter=n_iter, sdr=v, si_sdr=10 * lam + v))
    return rows

  def test_pooled_choice_is_the_best_mean_and_ties_go_to_fewer_iterations(self):
    c = study.select(self._rows())['exact']['mix_incons']
    self.assertEqual((c['lam'], c['n_iter'], c['score']), (0.0, 1, 4.0))
    self.assertEqual(c['per_snr']['10'], {'lam': 1.0, 'n_iter': 1, 'score': 7})
    self.assertEqual(c['per_snr']['-10'], {'lam': 0.0, 'n_iter': 1, 'score': 3})
    c = study.select(self._rows(), metric='si_sdr')['exact']['mix_incons']
    self.assertEqual((c['lam'], c['n_iter']), (1.0, 1))


class ConfigTest(tf.test.TestCase):

  def test_bad_settings_are_named(self):
    for kwargs, pattern in (
        (dict(algorithms=('misi', 'magic')), r"algorithms=\('misi', 'magic'\).*unknown: \['magic'\]"),
        (dict(magnitudes=('exact', 'exact')), r'magnitudes=.*distinct'),
        (dict(lambdas=(-1.0,)), r'lambdas must be finite numbers >= 0, got \(-1.0,\)'),
        (dict(iterations=(0, 500)), r'iterations must be ints in \[0, 100\], got \(0, 500\)'),
        (dict(mix_weights='ratio'), r"mix_weights must be one of .*got 'ratio'"),
        (dict(hop_length=2048), r'hop_length=2048 must not exceed n_fft=1024'),
        (dict(n_test=0), r'n_test must be a positive int or None, got 0'),
    ):
      with self.assertRaisesRegex(ParameterError, pattern):
        study.StudyConfig(data_dir='d', out_dir='o', **kwargs)

  def test_missing_mixture_names_the_folder_and_file(self):
    root = _dataset(self.create_tempdir().full_path, n_val=1, snrs=(10, 0))
    with self.assertRaisesRegex(ParameterError, r'0000.*mix_snr_-10.wav is missing'):
      study.load_split(study.StudyConfig(data_dir=root, out_dir='o'), 'validation')


class ScriptTest(tf.test.TestCase):

  def test_script_runs_a_small_study(self):
    root = self.create_tempdir().full_path
    data = _dataset(os.path.join(root, 'data'), n_val=1, snrs=(0,))
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'inversion_study.py'), f'--data_dir={data}',
         f'--out_dir={root}/out', '--snrs_db=0', '--algorithms=misi,mix_incons',
         '--magnitudes=exact', '--lambdas=0,1', '--iterations=1,2', '--nopesq',
         '--n_fft=256', '--hop_length=64', '--bss_filters_len=64'],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn('| MISI |', proc.stdout)
    with open(os.path.join(root, 'out', study.RESULTS_JSON)) as f:
      self.assertEqual(set(json.load(f)['chosen']['exact']), {'mixture', 'misi', 'mix_incons'})


if __name__ == '__main__':
  tf.test.main()
