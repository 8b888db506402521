"""PESQ (wide band) and STOI: the shared implementation, the report's columns, the matrix.

The voice is spoken by espeak-ng when it is installed (22,050 Hz, so PESQ's resampling
to 16 kHz is exercised), else a synthetic vowel sequence (glottal pulses through
formant resonators, in syllables). The score tests need the optional ``pesq`` and
``pystoi`` packages (the ``[quality]`` extra) and are skipped without them; the
missing-package path is tested by blocking their import.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import pytest
import soundfile as sf
from absl.testing import absltest

from common.errors import ParameterError
from evaluation import report
from evaluation import speech_quality
from pipeline import audio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_QUALITY = speech_quality.missing() is None
requires_quality = unittest.skipUnless(HAVE_QUALITY, 'pesq / pystoi not installed (the '
                                       '[quality] extra)')


def _synthetic_voice(sample_rate: int, seconds: float = 3.0) -> np.ndarray:
  """Vowel-like syllables: a 100-140 Hz pulse train through three formant resonators."""
  from scipy import signal  # pylint: disable=g-import-not-at-top
  n = int(seconds * sample_rate)
  t = np.arange(n) / sample_rate
  f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
  pulses = (np.diff(np.floor(np.cumsum(f0) / sample_rate), prepend=0) > 0).astype(np.float64)
  y = np.zeros(n)
  for formant, bandwidth in ((700, 110), (1220, 120), (2600, 160)):
    r = np.exp(-np.pi * bandwidth / sample_rate)
    a = [1, -2 * r * np.cos(2 * np.pi * formant / sample_rate), r * r]
    y += signal.lfilter([1 - r], a, pulses)
  syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
  return (0.3 * y / np.abs(y).max() * syllables).astype(np.float64)


def _voice() -> tuple:
  """``(voice float64 [n_samples], sample_rate)``: espeak-ng's if installed."""
  if shutil.which('espeak-ng'):
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, 'voice.wav')
      subprocess.run(['espeak-ng', '-w', path, 'The quick brown fox jumps over the lazy '
                      'dog, and then it sleeps in the warm afternoon sun.'],
                     check=True, capture_output=True, timeout=60)
      y, rate = sf.read(path, dtype='float64')
    return 0.5 * y / np.abs(y).max(), rate
  return _synthetic_voice(16000), 16000


class SpeechQualityTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.voice, cls.rate = _voice()
    cls.voice16 = audio.resample(cls.voice, orig_sr=cls.rate, target_sr=16000).astype(
        np.float64)
    rng = np.random.RandomState(0)
    cls.noise16 = 0.05 * rng.standard_normal(cls.voice16.size)

  @requires_quality
  def test_pesq_and_stoi_equal_the_packages_own_calls(self):
    from pesq import pesq  # pylint: disable=g-import-not-at-top
    from pystoi import stoi  # pylint: disable=g-import-not-at-top
    ref, est = self.voice16, self.voice16 + self.noise16
    scores = speech_quality.speech_quality(ref, est, 16000)
    # Same calls, same inputs: equal to float rounding (1e-6).
    self.assertAlmostEqual(scores['PESQ'], pesq(16000, ref, est, 'wb'), delta=1e-6)
    self.assertAlmostEqual(scores['STOI'], stoi(ref, est, 16000, extended=False), delta=1e-6)
    self.assertEqual(scores['notes'], {})

  @requires_quality
  def test_other_rates_are_resampled_to_16k_for_pesq_and_stoi_keeps_the_rate(self):
    from pesq import pesq  # pylint: disable=g-import-not-at-top
    from pystoi import stoi  # pylint: disable=g-import-not-at-top
    rate = 22050 if self.rate == 16000 else self.rate
    ref = audio.resample(self.voice16, orig_sr=16000, target_sr=rate).astype(np.float64)
    est = ref + 0.03 * np.random.RandomState(1).standard_normal(ref.size)
    value, why = speech_quality.pesq_wb(ref, est, rate)
    expected = pesq(16000, audio.resample(ref, orig_sr=rate, target_sr=16000).astype(np.float64),
                    audio.resample(est, orig_sr=rate, target_sr=16000).astype(np.float64), 'wb')
    self.assertIsNone(why)
    self.assertAlmostEqual(value, expected, delta=1e-6)
    value, why = speech_quality.stoi(ref, est, rate)
    self.assertAlmostEqual(value, stoi(ref, est, rate, extended=False), delta=1e-6)

  @requires_quality
  def test_clean_voice_scores_near_the_top_and_noise_far_below(self):
    clean = speech_quality.speech_quality(self.voice16, self.voice16, 16000)
    self.assertGreater(clean['PESQ'], 4.4)      # the wide-band scale tops out at 4.64
    self.assertGreater(clean['STOI'], 0.99)
    noise = speech_quality.speech_quality(self.voice16, 10 * self.noise16, 16000)
    self.assertLess(noise['PESQ'], 1.5)
    self.assertLess(noise['STOI'], 0.6)
    noisy = speech_quality.speech_quality(self.voice16, self.voice16 + self.noise16, 16000)
    self.assertBetween(noisy['PESQ'], noise['PESQ'], clean['PESQ'])

  @requires_quality
  def test_pairs_that_cannot_be_scored_are_nan_with_a_reason(self):
    silent = speech_quality.speech_quality(np.zeros(32000), self.noise16[:32000], 16000)
    self.assertTrue(np.isnan(silent['PESQ']) and np.isnan(silent['STOI']))
    self.assertEqual(silent['notes'], {'PESQ': 'silent reference', 'STOI': 'silent reference'})
    short = speech_quality.speech_quality(self.voice16[:2000], self.voice16[:2000], 16000)
    self.assertRegex(short['notes']['PESQ'], r'BufferTooShort')
    self.assertRegex(short['notes']['STOI'], r'under 30 frames')
    quiet = np.zeros(32000)
    quiet[1000:1400] = self.voice16[8000:8400]           # 25 ms of voice in 2 s of silence
    self.assertRegex(speech_quality.speech_quality(quiet, quiet, 16000)['notes']['STOI'],
                     r'under 30 frames')
    mute = speech_quality.speech_quality(self.voice16, np.zeros_like(self.voice16), 16000)
    self.assertRegex(mute['notes']['PESQ'], r'silent estimate')
    bad = self.voice16.copy()
    bad[100] = np.nan
    self.assertEqual(speech_quality.pesq_wb(self.voice16, bad, 16000)[1],
                     'estimate is not finite')
    with self.assertRaisesRegex(ParameterError, r'reference has 100 samples, estimate 99'):
      speech_quality.pesq_wb(np.ones(100), np.ones(99), 16000)

  @requires_quality
  def test_synthesis_scores_uses_the_shared_implementation(self):
    from experiments.studies import synthesis_scores  # pylint: disable=g-import-not-at-top
    sources = np.stack([self.voice16, self.noise16])
    estimates = np.stack([self.voice16 + self.noise16, 0 * self.noise16 + self.noise16])
    scores = synthesis_scores.score_track(None, sources, estimates)
    shared = speech_quality.speech_quality(self.voice16, estimates[0], 16000)
    self.assertEqual((scores['pesq'], scores['stoi']), (shared['PESQ'], shared['STOI']))


def _block_quality(test: absltest.TestCase):
  """Makes ``import pesq`` / ``import pystoi`` fail for the rest of the test."""
  for name in ('pesq', 'pystoi'):
    saved = sys.modules.get(name, None)
    had = name in sys.modules
    sys.modules[name] = None                         # import raises ImportError
    test.addCleanup(lambda n=name, s=saved, h=had: sys.modules.__setitem__(n, s) if h
                    else sys.modules.pop(n, None))


class MissingPackagesTest(absltest.TestCase):

  def test_missing_packages_say_what_to_install_in_one_line(self):
    _block_quality(self)
    message = speech_quality.missing()
    self.assertNotIn('\n', message)
    self.assertIn('pip install pesq pystoi', message)
    self.assertIn('[quality]', message)
    with self.assertRaisesRegex(ParameterError, r'pip install pesq pystoi'):
      speech_quality.pesq_wb(np.ones(16000), np.ones(16000), 16000)
    with self.assertRaisesRegex(ParameterError, r'pip install pesq pystoi'):
      speech_quality.stoi(np.ones(16000), np.ones(16000), 16000)
    self.assertFalse(speech_quality.available('PESQ'))
    self.assertFalse(speech_quality.available('STOI'))

  def test_inversion_runs_notes_a_missing_package(self):
    from experiments import inversion_runs  # pylint: disable=g-import-not-at-top
    _block_quality(self)
    out = inversion_runs.quality_scores(np.ones(16000), np.ones(16000), 16000)
    self.assertEqual(out, {'pesq': None, 'stoi': None,
                           'notes': ['PESQ not computed: pip install pesq',
                                     'STOI not computed: pip install pystoi']})

  def test_available_refuses_another_metric(self):
    with self.assertRaisesRegex(ParameterError, "metric must be one of \\['PESQ', 'STOI'\\], "
                                "got 'SDR'"):
      speech_quality.available('SDR')


def _speech_folders(root: str, n_tracks: int = 2):
  """References ``<track>/{mixture,voice,noise}.wav`` and leaky estimates, 16 kHz."""
  voice, rate = _voice()
  voice = audio.resample(voice, orig_sr=rate, target_sr=16000)[:40000]     # 2.5 s
  refs, ests = os.path.join(root, 'refs'), os.path.join(root, 'leaky')
  for i in range(n_tracks):
    rng = np.random.RandomState(10 + i)
    v = np.roll(voice, 4000 * i).astype(np.float32)
    noise = (0.08 * rng.standard_normal(v.size)).astype(np.float32)
    for folder, signals in ((refs, {'voice': v, 'noise': noise, 'mixture': v + noise}),
                            (ests, {'voice': v + 0.3 * noise, 'noise': noise + 0.3 * v})):
      for name, y in signals.items():
        audio.write_wav(os.path.join(folder, f'{i:04d}', f'{name}.wav'), y, 16000,
                        subtype='FLOAT')
  return refs, ests


# Short BSS Eval settings keep the tests fast.
FAST = dict(window_s=0.5, hop_s=0.5, filters_len=64)


class ReportQualityTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='quality_test_')
    cls.refs, cls.ests = _speech_folders(cls.root)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _run(self, out, **kwargs):
    return report.run(report.ReportConfig(
        references_dir=self.refs, estimates=(('leaky', self.ests),), out_dir=out,
        media=False, **FAST, **kwargs))

  @requires_quality
  def test_voice_gets_pesq_and_stoi_columns_and_the_noise_none(self):
    out = self.create_tempdir().full_path
    result = self._run(out)
    self.assertIsNone(result['quality_note'])
    rows = {(r['method'], r['source']): r for r in result['rows']}
    voice, noise = rows['leaky', 'voice'], rows['leaky', 'noise']
    self.assertBetween(voice['PESQ'], 1.0, 4.64)
    self.assertBetween(voice['STOI'], 0.5, 1.0)
    self.assertLen(voice['quartiles']['PESQ'], 2)
    self.assertTrue(voice['speech'])
    self.assertFalse(noise['speech'])
    # The per-track values are the shared implementation's, the row their median.
    per_track = []
    for track in ('0000', '0001'):
      ref, _ = sf.read(os.path.join(self.refs, track, 'voice.wav'), dtype='float32')
      est, _ = sf.read(os.path.join(self.ests, track, 'voice.wav'), dtype='float32')
      per_track.append(speech_quality.speech_quality(ref, est, 16000))
      with open(os.path.join(out, 'scores', 'leaky', f'{track}.json'), encoding='utf-8') as f:
        cached = json.load(f)
      j = cached['sources'].index('voice')
      self.assertAlmostEqual(cached['quality']['PESQ'][j], per_track[-1]['PESQ'], delta=1e-9)
      self.assertIsNone(cached['quality']['PESQ'][1 - j])     # the noise: not speech
    self.assertAlmostEqual(voice['PESQ'], np.median([q['PESQ'] for q in per_track]),
                           delta=1e-9)
    with open(os.path.join(out, 'results.md'), encoding='utf-8') as f:
      text = f.read()
    self.assertIn('| PESQ | STOI |', text)
    self.assertRegex(text, r'\| leaky \| noise \|( [^|]+ \|){6}  \|  \| 2 \|')
    with open(os.path.join(out, 'results.csv'), encoding='utf-8') as f:
      self.assertIn('PESQ,STOI', f.readline())
    with open(os.path.join(out, 'report.html'), encoding='utf-8') as f:
      self.assertIn('<th>PESQ</th><th>STOI</th>', f.read())
    self.assertTrue(os.path.exists(os.path.join(out, 'boxplot_PESQ.png')))

  @requires_quality
  def test_a_rerun_over_scores_without_quality_adds_only_quality(self):
    out = self.create_tempdir().full_path
    first = self._run(out, speech_sources=())
    self.assertNotIn('PESQ', first['rows'][0])
    second = self._run(out)
    self.assertEqual((second['computed'], second['cached'], second['quality_added']), (0, 2, 2))
    self.assertIn('PESQ', second['rows'][0])
    third = self._run(out)
    self.assertEqual((third['computed'], third['quality_added']), (0, 0))
    self.assertEqual([r['PESQ'] for r in second['rows']], [r['PESQ'] for r in third['rows']])

  def test_without_the_packages_the_columns_are_left_out_with_one_line(self):
    _block_quality(self)
    out = self.create_tempdir().full_path
    result = self._run(out)
    self.assertIn('pip install pesq pystoi', result['quality_note'])
    self.assertNotIn('PESQ', result['rows'][0])
    with open(os.path.join(out, 'results.md'), encoding='utf-8') as f:
      text = f.read()
    self.assertNotIn('| PESQ', text)
    self.assertIn('pip install pesq pystoi', text)

  @pytest.mark.slow
  @requires_quality
  def test_evaluate_separation_writes_the_pesq_and_stoi_columns(self):
    out = self.create_tempdir().full_path
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'evaluate_separation.py'),
         f'--references={self.refs}', f'--estimates=leaky={self.ests}', f'--out_dir={out}',
         '--window_s=0.5', '--hop_s=0.5', '--filters_len=64', '--nomedia'],
        check=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    self.assertIn('| PESQ | STOI |', proc.stdout)
    self.assertRegex(proc.stdout, r'\| leaky \| voice \|( [^|]+ \|){6} \d\.\d\d \| 0\.\d{3} \|')
    with open(os.path.join(out, 'results.json'), encoding='utf-8') as f:
      rows = {(r['method'], r['source']): r for r in json.load(f)['rows']}
    self.assertGreater(rows['leaky', 'voice']['PESQ'], 1.0)


class MatrixQualityTest(absltest.TestCase):

  def test_the_matrix_has_voice_pesq_and_stoi_tables_and_a_heat_map(self):
    from experiments import evaluate_tracks  # pylint: disable=g-import-not-at-top
    from experiments import generalization  # pylint: disable=g-import-not-at-top
    conditions = generalization.CONDITIONS['speech-noise'][:2]

    def row(method, source, sdr, pesq=None, stoi=None):
      r = {'method': method, 'source': source, 'SDR': sdr, 'SI-SDR': sdr, 'n_tracks': 3,
           'quartiles': {'SDR': [sdr - 1, sdr + 1]}}
      if pesq is not None:
        r.update(PESQ=pesq, STOI=stoi, speech=True)
        r['quartiles'].update(PESQ=[pesq - 0.1, pesq + 0.1], STOI=[stoi - 0.01, stoi + 0.01])
      else:
        r.update(PESQ=float('nan'), STOI=float('nan'), speech=False)
      return r

    results = {c.name: {'rows': [
        row('U-Net', 'voice', 9.0 + i, 1.5 + i / 10, 0.8), row('U-Net', 'noise', 6.0),
        row(evaluate_tracks.MIXTURE_METHOD, 'voice', 0.0, 1.1, 0.7),
        row(evaluate_tracks.MIXTURE_METHOD, 'noise', 0.0)]} for i, c in enumerate(conditions)}
    rows = generalization.matrix_rows(results)
    text = generalization.quality_markdown(rows, conditions)
    self.assertIn('| U-Net | voice | 1.50 [1.40, 1.60] | 1.60 [1.50, 1.70] |', text)
    self.assertIn('| U-Net | voice | 0.800 [0.790, 0.810] | 0.800 [0.790, 0.810] |', text)
    self.assertNotIn('| noise |', text)
    path = os.path.join(self.create_tempdir().full_path, 'matrix_quality.png')
    generalization.quality_heat_map(path, rows, conditions)
    self.assertGreater(os.path.getsize(path), 1000)
    no_quality = [{**r, 'cells': {k: {m: v for m, v in c.items() if m not in ('PESQ', 'STOI')}
                                  for k, c in r['cells'].items()}} for r in rows]
    self.assertEqual(generalization.quality_markdown(no_quality, conditions), '')


if __name__ == '__main__':
  absltest.main()
