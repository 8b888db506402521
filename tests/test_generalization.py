"""The generalisation matrix: conditions x methods, table, heat map, index page, resume."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from common.errors import ParameterError
from experiments import generalization
from experiments import separators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class LowHigh:
  """A toy piano-violin separator: the spectrum below / above 1 kHz."""

  sources = ('piano', 'violin')
  sample_rate = 16000

  def separate(self, audio, sample_rate):
    spec = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1 / sample_rate)
    low = np.fft.irfft(np.where(freqs < 1000, spec, 0), n=len(audio))
    return {'piano': low, 'violin': audio - low}


def _fake_sets(config, cond, log=print):
  """Writes the condition's references directly (no rendering): low piano, high violin."""
  del log
  refs = os.path.join(config.out_dir, 'references', cond.name)
  balance_db = 0.0 if cond.name.endswith('equal') else -12.0
  for i in range(config.n_tracks):
    folder = os.path.join(refs, f'{i:05d}')
    os.makedirs(folder, exist_ok=True)
    t = np.arange(24000) / 16000
    piano = 0.2 * np.sin(2 * np.pi * (220 + 20 * i) * t)
    violin = 0.2 * 10 ** (balance_db / 20) * np.sin(2 * np.pi * 2000 * t)
    if cond.name.startswith('unseen'):                # a "timbre" the toy gets partly wrong
      piano = piano + 0.05 * np.sin(2 * np.pi * 1500 * t)
    for name, y in (('piano', piano), ('violin', violin), ('mixture', piano + violin)):
      sf.write(os.path.join(folder, f'{name}.wav'), y.astype(np.float32), 16000,
               subtype='FLOAT')
  return refs


@pytest.mark.slow
class MatrixTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    separators.register_method(separators.Method(
        name='toy-lowhigh', load=lambda model_dir, doc, **o: LowHigh(), needs_model=False,
        label=lambda o: 'toy'))
    self.addCleanup(separators.unregister_method, 'toy-lowhigh')
    self.real_prepare = generalization.prepare_condition
    generalization.prepare_condition = _fake_sets
    self.addCleanup(setattr, generalization, 'prepare_condition', self.real_prepare)

  def test_every_method_on_every_condition_in_one_table(self):
    out = self.create_tempdir().full_path
    config = generalization.MatrixConfig(out_dir=out, n_tracks=2,
                                         methods=('toy-lowhigh', 'IRM2'))
    lines = []
    doc = generalization.run(config, log=lines.append)
    names = [c.name for c in generalization.CONDITIONS['piano-violin']]
    self.assertEqual([c['name'] for c in doc['conditions']], names)
    by = {(r['method'], r['source']): r for r in doc['rows']}
    self.assertEqual(set(by), {(m, s) for m in ('toy', 'IRM2', 'mixture-as-estimate')
                               for s in ('piano', 'violin')})
    for r in doc['rows']:
      self.assertEqual(sorted(r['cells']), sorted(names))
      for cell in r['cells'].values():
        self.assertEqual(cell['n_tracks'], 2)
        self.assertLessEqual(cell['quartiles'][0], cell['quartiles'][1])
    toy = by[('toy', 'piano')]['cells']
    # The toy separates the seen condition near perfectly and the unseen one worse.
    self.assertGreater(toy['seen-equal']['SDRi'], toy['unseen-equal']['SDRi'] + 5)
    mixture = by[('mixture-as-estimate', 'violin')]['cells']
    self.assertAllClose(mixture['seen-natural']['SDRi'], 0.0, atol=1e-9)
    table = open(os.path.join(out, 'matrix.md'), encoding='utf-8').read()
    self.assertIn('| toy | piano |', table)
    self.assertIn('unseen timbre, natural levels', table)
    self.assertGreater(os.path.getsize(os.path.join(out, 'matrix.png')), 5000)
    page = open(os.path.join(out, 'index.html'), encoding='utf-8').read()
    self.assertIn('eval/unseen-natural/report/report.html', page)
    self.assertTrue(os.path.exists(os.path.join(out, 'eval', 'unseen-natural', 'report',
                                                'report.html')))
    with open(os.path.join(out, 'matrix.json'), encoding='utf-8') as f:
      self.assertEqual(json.load(f)['n_tracks'], 2)
    again = generalization.run(config, log=lines.append)     # resumes: same numbers
    self.assertEqual(again['rows'], doc['rows'])

  def test_bad_settings_are_named(self):
    with self.assertRaisesRegex(ParameterError, "unknown condition 'loud'"):
      generalization.MatrixConfig(out_dir='x', conditions=('loud',))
    with self.assertRaisesRegex(ParameterError, 'unknown task'):
      generalization.MatrixConfig(out_dir='x', task='drums')
    with self.assertRaisesRegex(ParameterError, 'n_tracks'):
      generalization.MatrixConfig(out_dir='x', n_tracks=0)
    self.assertEqual(generalization.MatrixConfig(out_dir='x').method_specs()[-1], 'IRM2')

  def test_the_command_prints_one_line_errors(self):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'evaluate_generalization.py'),
                           '--conditions=loud', f'--out_dir={self.create_tempdir().full_path}'],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    self.assertEqual(proc.returncode, 2, proc.stderr[-800:])
    self.assertIn("evaluate_generalization: error: unknown condition 'loud'", proc.stderr)


if __name__ == '__main__':
  tf.test.main()


def test_voice_references_sum_to_the_mixture(tmp_path):
  """The split's noise.wav is at 0 dB SNR; the reference is the noise as mixed."""
  from datagen import mixtures
  n = 8000
  voice = (0.05 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000)).astype(np.float32)
  noise = np.random.default_rng(0).standard_normal(n).astype(np.float32)
  noise *= np.std(voice) / np.std(noise)
  for i, snr in enumerate((-3.4, 5.0)):
    mixtures.write_clip(str(tmp_path / 'split' / f'{i:04d}'), voice, noise,
                        sample_rate=16000, snrs_db=(snr,), info={'index': i})
  refs = tmp_path / 'refs'
  names = generalization._references_from_voice(str(tmp_path / 'split'), str(refs), 2)
  assert names == ['0000', '0001']
  for name in names:
    m, v, z = (sf.read(str(refs / name / f'{r}.wav'), dtype='float32')[0]
               for r in ('mixture', 'voice', 'noise'))
    np.testing.assert_allclose(v + z, m, atol=1e-5)
  # An unscaled reference left by an earlier version is rewritten; a right one is kept.
  sf.write(str(refs / '0000' / 'noise.wav'), noise, 16000, subtype='FLOAT')
  before = os.path.getmtime(refs / '0001' / 'noise.wav')
  generalization._references_from_voice(str(tmp_path / 'split'), str(refs), 2)
  m, v, z = (sf.read(str(refs / '0000' / f'{r}.wav'), dtype='float32')[0]
             for r in ('mixture', 'voice', 'noise'))
  np.testing.assert_allclose(v + z, m, atol=1e-5)
  assert os.path.getmtime(refs / '0001' / 'noise.wav') == before
