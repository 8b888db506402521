"""The comparison report and the two commands, on tiny folders rendered by numpy."""

import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile as sf
from absl.testing import absltest

from evaluation import folders
from evaluation import report
from pipeline import ParameterError
from pipeline.audio import write_wav

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 8000
SOURCES = ('piano', 'violin')
# Short BSS Eval settings keep the test fast (filters fitted once per track).
FAST = dict(window_s=0.5, hop_s=0.5, filters_len=64)


def _render(root, *, n_tracks=2, seconds=1.5, n_channels=1):
  """Two harmonic sources per track + their mixture, as PCM wavs."""
  n = int(seconds * SR)
  t = np.arange(n) / SR
  for i in range(n_tracks):
    rng = np.random.RandomState(i)
    signals = {}
    for name, f0 in zip(SOURCES, (rng.uniform(180, 260), rng.uniform(500, 700))):
      env = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
      y = 0.2 * env * sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 5))
      y = y + 0.005 * rng.standard_normal(n)
      signals[name] = np.stack([y * g for g in (1.0, 0.6)[:n_channels]]).astype(np.float32)
    signals['mixture'] = sum(signals.values())
    for name, y in signals.items():
      write_wav(os.path.join(root, f'track{i}', f'{name}.wav'), y, SR, subtype='FLOAT')


def _estimates(refs_dir, out_dir, *, leak=0.1, swap=False):
  """Estimates = source + leak * other source (optionally written swapped)."""
  for track in folders.list_tracks(refs_dir):
    t = folders.load_track(refs_dir, track)
    s = t.stacked_sources()
    est = s + leak * s[::-1]
    if swap:
      est = est[::-1]
    for name, y in zip(t.source_names, est):
      write_wav(os.path.join(out_dir, track, f'{name}.wav'), y, SR, subtype='FLOAT')


class _PageParser(html.parser.HTMLParser):
  """Collects linked files and checks that every element is closed in order."""
  VOID = {'meta', 'img', 'br', 'hr', 'link', 'input', 'source'}

  def __init__(self):
    super().__init__()
    self.links, self.stack, self.errors, self.tags = [], [], [], {}

  def handle_starttag(self, tag, attrs):
    self.tags[tag] = self.tags.get(tag, 0) + 1
    for key, value in attrs:
      if key in ('src', 'href'):
        self.links.append(value)
    if tag not in self.VOID:
      self.stack.append(tag)

  def handle_endtag(self, tag):
    if not self.stack or self.stack[-1] != tag:
      self.errors.append(f'unexpected </{tag}>, open: {self.stack[-3:]}')
    else:
      self.stack.pop()


class ReportTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='report_test_')
    cls.refs = os.path.join(cls.root, 'refs')
    _render(cls.refs)
    cls.good = os.path.join(cls.root, 'good')
    _estimates(cls.refs, cls.good, leak=0.1)
    cls.bad = os.path.join(cls.root, 'bad')
    _estimates(cls.refs, cls.bad, leak=0.5)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def _config(self, out, estimates=None, **kwargs):
    estimates = estimates or (('good', self.good), ('bad', self.bad))
    return report.ReportConfig(references_dir=self.refs, estimates=estimates, out_dir=out,
                               **{**FAST, **kwargs})

  def test_tables_plots_and_page(self):
    out = self.create_tempdir().full_path
    result = report.run(self._config(out))
    self.assertEqual(result['computed'], 4)
    for name in ('results.md', 'results.csv', 'results.json', 'report.html',
                 'boxplot_SDR.png', 'boxplot_SI-SDRi.png'):
      self.assertTrue(os.path.exists(os.path.join(out, name)), name)
    rows = {(r['method'], r['source']): r for r in result['rows']}
    self.assertLen(rows, 4)
    for source in SOURCES:
      # Leakage 0.1 vs 0.5: about 20 dB vs 6 dB SIR.
      self.assertGreater(rows['good', source]['SIR'], rows['bad', source]['SIR'] + 8)
      self.assertGreater(rows['good', source]['SI-SDRi'], 5.0)
      self.assertEqual(rows['good', source]['n_tracks'], 2)
    with open(os.path.join(out, 'results.json'), encoding='utf-8') as f:
      self.assertLen(json.load(f)['rows'], 4)
    with open(os.path.join(out, 'results.md'), encoding='utf-8') as f:
      self.assertIn('| good | piano |', f.read())

  def test_html_links_only_existing_files_and_parses(self):
    out = self.create_tempdir().full_path
    path = report.run(self._config(out))['paths']['html']
    parser = _PageParser()
    with open(path, encoding='utf-8') as f:
      parser.feed(f.read())
    parser.close()
    self.assertEqual(parser.errors, [])
    self.assertEqual(parser.stack, [])                  # every element closed
    # 2 tracks x (mixture + 2 references + 2 methods x 2 sources) players.
    self.assertEqual(parser.tags.get('audio'), 2 * (1 + 2 + 4))
    self.assertGreaterEqual(parser.tags.get('img'), 2 * 7 + 6)
    for link in parser.links:
      self.assertNotIn('://', link)                     # nothing from the network
      self.assertFalse(os.path.isabs(link), link)
      self.assertTrue(os.path.exists(os.path.join(out, link)), link)

  def test_rerun_skips_finished_tracks_and_redoes_changed_ones(self):
    out = self.create_tempdir().full_path
    first = report.run(self._config(out, media=False))
    again = report.run(self._config(out, media=False))
    self.assertEqual((again['computed'], again['cached']), (0, 4))
    self.assertEqual(json.dumps(first['rows']), json.dumps(again['rows']))
    changed = self.create_tempdir().full_path
    shutil.copytree(self.good, changed, dirs_exist_ok=True)
    config = self._config(out, estimates=(('good', changed), ('bad', self.bad)), media=False)
    report.run(config)
    y, _ = sf.read(os.path.join(changed, 'track1', 'piano.wav'))
    sf.write(os.path.join(changed, 'track1', 'piano.wav'), 0.9 * y, SR, subtype='FLOAT')
    third = report.run(config)
    self.assertEqual((third['computed'], third['cached']), (1, 3))

  def test_silent_estimates_score_the_worst_and_the_report_says_what_was_dropped(self):
    # Issue 29 item 5: all-zero estimates printed SI-SDR inf, BSS Eval nan, and
    # the medians dropped the NaN tracks without a word.
    out = self.create_tempdir().full_path
    silent = self.create_tempdir().full_path
    _estimates(self.refs, silent, leak=0.1)
    y, _ = sf.read(os.path.join(silent, 'track1', 'piano.wav'))
    sf.write(os.path.join(silent, 'track1', 'piano.wav'), 0 * y, SR, subtype='FLOAT')
    result = report.run(self._config(out, estimates=(('quiet', silent),), media=False))
    rows = {r['source']: r for r in result['rows']}
    piano, violin = rows['piano'], rows['violin']
    self.assertEqual(piano['silent_estimates'], ['track1'])
    self.assertEqual(piano['scored']['SI-SDR'], 2)      # -inf counts, as the worst
    self.assertEqual(piano['scored']['SDR'], 2)
    self.assertEqual(piano['scored']['SIR'], 1)
    self.assertEqual(piano['dropped']['SIR'], {'track1': 'silent estimate'})
    self.assertIn('no window scored', violin['dropped']['SIR']['track1'])
    self.assertLess(piano['SI-SDR'], rows['violin']['SI-SDR'])
    cached = report.run(self._config(out, estimates=(('quiet', silent),), media=False))
    self.assertEqual(json.dumps(cached['rows']), json.dumps(result['rows']))
    table = report.table_markdown(result['rows'])
    self.assertRegex(table, r'- quiet / piano: silent estimate in 1 of 2 track\(s\) '
                     r'\(track1\): SDR, SI-SDR and SI-SDRi score it -inf \(the worst\); '
                     r'SIR, SAR, ISR cover 1 of 2 track\(s\), dropped track1: silent estimate')
    self.assertRegex(table, r'- quiet / violin: SDR, SIR, SAR, ISR cover 1 of 2')
    with open(os.path.join(out, 'results.md'), encoding='utf-8') as f:
      self.assertIn('silent estimate in 1 of 2', f.read())
    with open(os.path.join(out, 'results.json'), encoding='utf-8') as f:
      self.assertLen(json.load(f)['notes'], 2)

  def test_perfect_estimates_score_very_high(self):
    out = self.create_tempdir().full_path
    perfect = self.create_tempdir().full_path
    _estimates(self.refs, perfect, leak=0.0)
    rows = report.run(self._config(out, estimates=(('perfect', perfect),),
                                   media=False))['rows']
    for r in rows:
      self.assertGreater(r['SDR'], 60.0)                # float32 files, exact copies
      self.assertGreater(r['SI-SDR'], 60.0)

  def test_errors_name_the_file(self):
    out = self.create_tempdir().full_path
    cases = []
    # wrong length
    short = self.create_tempdir().full_path
    shutil.copytree(self.good, short, dirs_exist_ok=True)
    y, _ = sf.read(os.path.join(short, 'track0', 'violin.wav'))
    sf.write(os.path.join(short, 'track0', 'violin.wav'), y[:-10], SR, subtype='FLOAT')
    cases.append((short, r"violin.wav' has 11990 samples, expected 12000"))
    # wrong sample rate
    rate = self.create_tempdir().full_path
    shutil.copytree(self.good, rate, dirs_exist_ok=True)
    sf.write(os.path.join(rate, 'track1', 'piano.wav'), y, 16000, subtype='FLOAT')
    cases.append((rate, r"piano.wav' has sample rate 16000 Hz, expected 8000 Hz"))
    # wrong channel count
    chans = self.create_tempdir().full_path
    shutil.copytree(self.good, chans, dirs_exist_ok=True)
    sf.write(os.path.join(chans, 'track0', 'piano.wav'), np.stack([y, y], 1), SR)
    cases.append((chans, r"piano.wav' has 2 channel\(s\), expected 1"))
    # missing source and missing track
    missing = self.create_tempdir().full_path
    shutil.copytree(self.good, missing, dirs_exist_ok=True)
    os.remove(os.path.join(missing, 'track1', 'violin.wav'))
    cases.append((missing, r"misses source\(s\) \['violin'\] of track 'track1'"))
    no_track = self.create_tempdir().full_path
    shutil.copytree(os.path.join(self.good, 'track0'), os.path.join(no_track, 'track0'))
    cases.append((no_track, r"has no folder for track 'track1'"))
    for folder, pattern in cases:
      with self.assertRaisesRegex(ParameterError, pattern):
        report.run(self._config(out, estimates=(('m', folder),), media=False))
    # museval's behaviour on request: pad / cut instead of failing.
    rows = report.run(self._config(out, estimates=(('m', short),), media=False,
                                   pad_or_truncate=True))['rows']
    self.assertLen(rows, 2)
    with self.assertRaisesRegex(ParameterError, 'must be NAME=DIR'):
      report.parse_estimates(['nodir'])
    with self.assertRaisesRegex(ParameterError, "estimates folder '/nonexistent'"):
      self._config(out, estimates=(('m', '/nonexistent'),))
    with self.assertRaisesRegex(ParameterError, 'references folder'):
      report.run(report.ReportConfig(references_dir=os.path.join(self.root, 'nope'),
                                     estimates=(('m', self.good),), out_dir=out))

  def test_stereo_oracles_and_report(self):
    from baselines import oracles  # pylint: disable=g-import-not-at-top
    refs = self.create_tempdir().full_path
    _render(refs, n_tracks=1, n_channels=2)
    out = self.create_tempdir().full_path
    run = oracles.OracleRunConfig(
        references_dir=refs, out_dir=os.path.join(out, 'oracles'),
        oracles=(oracles.parse_method('MWF', n_fft=512, hop_length=256),
                 oracles.parse_method('IBM1', n_fft=512, hop_length=256)))
    folders_by_name = oracles.run(run)
    y, rate = sf.read(os.path.join(folders_by_name['MWF'], 'track0', 'piano.wav'))
    self.assertEqual((y.shape[1], rate), (2, SR))
    stamp = os.path.getmtime(os.path.join(folders_by_name['MWF'], 'track0', 'piano.wav'))
    oracles.run(run)                                    # finished tracks are skipped
    self.assertEqual(
        os.path.getmtime(os.path.join(folders_by_name['MWF'], 'track0', 'piano.wav')), stamp)
    result = report.run(report.ReportConfig(
        references_dir=refs, estimates=tuple(folders_by_name.items()),
        out_dir=os.path.join(out, 'report'), **FAST))
    rows = {(r['method'], r['source']): r for r in result['rows']}
    self.assertGreater(rows['MWF', 'piano']['SDR'], 10.0)
    self.assertTrue(np.isfinite(rows['IBM1', 'violin']['ISR']))

  @pytest.mark.slow
  def test_the_two_commands_end_to_end(self):
    out = self.create_tempdir().full_path
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
    oracles_dir = os.path.join(out, 'oracles')
    subprocess.run(
        [sys.executable, os.path.join(ROOT, 'oracle_systems.py'), f'--references={self.refs}',
         f'--out_dir={oracles_dir}', '--methods=IBM1,IRM2,IRM2-mel',
         '--n_fft=512', '--hop_length=256', f'--mel_sample_rate={SR}', '--mel_n_fft=512',
         '--mel_hop_length=128', '--n_mels=40', '--fmin=0', f'--fmax={SR // 2}'],
        check=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    for method in ('IBM1', 'IRM2', 'IRM2-mel'):
      for source in SOURCES:
        self.assertTrue(os.path.exists(os.path.join(oracles_dir, method, 'track1',
                                                    f'{source}.wav')))
    report_dir = os.path.join(out, 'report')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'evaluate_separation.py'),
         f'--references={self.refs}', f'--estimates=IRM2={oracles_dir}/IRM2',
         f'--estimates=IBM1={oracles_dir}/IBM1', f'--estimates=leaky={self.bad}',
         f'--out_dir={report_dir}', '--window_s=0.5', '--hop_s=0.5', '--filters_len=64'],
        check=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    self.assertIn('| IRM2 | piano |', proc.stdout)
    self.assertTrue(os.path.exists(os.path.join(report_dir, 'report.html')))
    with open(os.path.join(report_dir, 'results.json'), encoding='utf-8') as f:
      rows = {(r['method'], r['source']): r for r in json.load(f)['rows']}
    self.assertGreater(rows['IRM2', 'piano']['SDR'], 10.0)   # the oracle separates


if __name__ == '__main__':
  absltest.main()
