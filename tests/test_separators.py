"""The separator seam: what every method shares, the registry, files and folders, the CLI."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from absl.testing import parameterized

from common.errors import ParameterError
from experiments import evaluate_tracks
from experiments import separate_files
from experiments import separators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class HalfSplit:
  """A toy separator: 'low' and 'high' halves of the spectrum (exact: they sum to the input)."""

  sources = ('low', 'high')
  sample_rate = 8000

  def __init__(self, *, gain_low=1.0, gain_high=1.0, scale_invariant=False, input_peak=None):
    self.gains = (gain_low, gain_high)
    self.scale_invariant = scale_invariant
    self.input_peak = input_peak
    self.calls = []

  def separate(self, audio, sample_rate):
    assert sample_rate == self.sample_rate
    self.calls.append(len(audio))
    spec = np.fft.rfft(audio)
    cut = len(spec) // 4
    low = np.fft.irfft(np.where(np.arange(len(spec)) < cut, spec, 0), n=len(audio))
    return {'low': self.gains[0] * low, 'high': self.gains[1] * (audio - low)}

  def identity(self):
    return {'toy': 'half', 'gains': list(self.gains)}


class Scaler:
  """A linear toy: each source is a fixed share of the mixture."""

  sources = ('a', 'b')
  sample_rate = 16000
  chunk_s = 1.0
  overlap_s = 0.25

  def separate(self, audio, sample_rate):
    return {'a': 0.25 * audio, 'b': 0.75 * audio}


def _noise(seconds, rate, seed=0, channels=None):
  rng = np.random.default_rng(seed)
  shape = (int(seconds * rate),) if channels is None else (channels, int(seconds * rate))
  return (0.1 * rng.standard_normal(shape)).astype(np.float32)


class SeparationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((100, 40, 10), (1000, 300, 50), (301, 100, 99), (90, 100, 10),
                            (60, 30, 1), (61, 30, 1))
  def test_chunks_are_equal_cover_the_input_and_overlap_about_as_asked(self, n, chunk, overlap):
    length, starts = separators.chunk_layout(n, chunk, overlap)
    self.assertLessEqual(length, chunk)
    self.assertEqual(int(starts[0]), 0)
    self.assertEqual(int(starts[-1]) + length, n)
    gaps = np.diff(starts)
    self.assertTrue(np.all(gaps <= length - overlap))          # overlaps >= overlap
    if len(starts) > 1:                                         # and not much more
      self.assertTrue(np.all(length - gaps <= overlap + 1))
    # 60 s in 30 s chunks with 1 s overlaps: 3 chunks of 20.7 s, not 3 of 30 s.
    self.assertEqual(separators.chunk_layout(60, 30, 1)[0], 21)

  def test_chunked_overlap_add_of_a_linear_separator_is_exact(self):
    sep = separators.Separation(Scaler(), label='scaler')
    y = _noise(5.3, 16000)
    out = sep.separate(y, 16000)
    self.assertEqual(sep.stats['chunks'], 7)             # <= 1 s chunks, 0.25 s overlaps
    # Linear ramps that sum to one: exact to float32 rounding.
    self.assertAllClose(out['a'], 0.25 * y, atol=1e-6)
    self.assertAllClose(out['b'], 0.75 * y, atol=1e-6)

  def test_resampling_there_and_back_keeps_the_band_the_model_sees(self):
    # A 44.1 kHz stereo input, a separator at 8 kHz: the mid is separated; the
    # sum of the estimates is the mixture's mid, band-limited to 4 kHz.
    rate = 44100
    t = np.arange(int(2.0 * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)
    stereo = np.stack([tone, 0.5 * tone]).astype(np.float32)
    out = separators.Separation(HalfSplit(), label='half').separate(stereo, rate)
    self.assertEqual(out['low'].shape, (len(t),))
    total = out['low'] + out['high']
    mid = stereo.mean(axis=0)
    inner = slice(rate // 10, -rate // 10)             # resampling filters' edges aside
    self.assertLess(np.max(np.abs(total - mid)[inner]), 0.01)

  def test_each_channel_mode_returns_the_input_channels(self):
    y = _noise(1.0, 16000, channels=2)
    out = separators.Separation(Scaler(), label='s', channels='each').separate(y, 16000)
    self.assertEqual(out['a'].shape, (2, 16000))
    self.assertAllClose(out['a'][1], 0.25 * y[1], atol=1e-6)

  def test_input_level_is_normalised_and_restored(self):
    y = 0.02 * _noise(1.0, 8000)
    model = HalfSplit(input_peak=0.5)
    out = separators.Separation(model, label='half', chunk_s=0).separate(y, 8000)
    self.assertAllClose(out['low'] + out['high'], y, atol=1e-6)

  def test_scale_invariant_outputs_are_fitted_to_the_mixture(self):
    y = _noise(1.0, 8000)
    model = HalfSplit(gain_low=30.0, gain_high=0.01, scale_invariant=True)
    out = separators.Separation(model, label='half', chunk_s=0).separate(y, 8000)
    self.assertAllClose(out['low'] + out['high'], y, atol=1e-4)
    # Without the flag the arbitrary scale would stay.
    raw = separators.Separation(HalfSplit(gain_low=30.0), label='h', chunk_s=0).separate(y, 8000)
    self.assertGreater(np.max(np.abs(raw['low'] + raw['high'] - y)), 1.0)

  def test_finished_chunks_are_reused_from_the_cache(self):
    cache = self.create_tempdir().full_path
    y = _noise(3.0, 8000)
    model = HalfSplit()
    first = separators.Separation(model, label='half', chunk_s=1.0, overlap_s=0.2,
                                  cache_dir=cache).separate(y, 8000)
    n_calls = len(model.calls)
    again = separators.Separation(model, label='half', chunk_s=1.0, overlap_s=0.2,
                                  cache_dir=cache)
    second = again.separate(y, 8000)
    self.assertLen(model.calls, n_calls)                  # nothing computed again
    self.assertEqual(again.stats['chunks_resumed'], n_calls)
    self.assertAllClose(first['low'], second['low'])

  def test_bad_audio_and_settings_are_refused(self):
    sep = separators.Separation(Scaler(), label='s')
    with self.assertRaisesRegex(ParameterError, 'non-finite'):
      sep.separate(np.array([0.0, np.nan, 1.0], np.float32), 16000)
    with self.assertRaisesRegex(ParameterError, 'empty'):
      sep.separate(np.zeros(0, np.float32), 16000)
    with self.assertRaisesRegex(ParameterError, 'sample_rate'):
      sep.separate(np.zeros(10, np.float32), 0)
    with self.assertRaisesRegex(ParameterError, 'channels'):
      separators.Separation(Scaler(), label='s', channels='left')
    with self.assertRaisesRegex(ParameterError, 'is not a separator'):
      separators.Separation(object(), label='x')


class RegistryTest(tf.test.TestCase):

  def test_unknown_method_and_task_list_what_exists(self):
    with self.assertRaisesRegex(ParameterError, r"unknown method 'nope'; registered .*basis"):
      separators.load_separator('nope')
    with self.assertRaisesRegex(ParameterError, r"unknown task 'drums'; tasks: .*piano-violin"):
      separators.load_separator('basis', task='drums')

  def test_a_method_without_a_shipped_model_lists_the_shipped_ones(self):
    with self.assertRaisesRegex(ParameterError, 'no shipped synthesis model for '
                                '--task=piano-violin; shipped: --task=piano-violin --method=basis'):
      separators.load_separator('synthesis', task='piano-violin')

  def test_an_oracle_needs_the_true_sources(self):
    with self.assertRaisesRegex(ParameterError, 'IRM2 is an oracle'):
      separators.load_separator('IRM2')
    refs = {'a': _noise(1.0, 16000, 1), 'b': _noise(1.0, 16000, 2)}
    out = separators.oracle_separator('IRM2', refs, 16000).separate(refs['a'] + refs['b'],
                                                                    16000)
    self.assertAllClose(out['a'] + out['b'], refs['a'] + refs['b'], atol=1e-4)

  def test_a_model_folder_names_its_method(self):
    tmp = self.create_tempdir().full_path
    with self.assertRaisesRegex(ParameterError, 'no separator.json'):
      separators.load_separator(model_dir=tmp)
    with open(os.path.join(tmp, 'separator.json'), 'w') as f:
      json.dump({'method': 'toy-half'}, f)
    separators.register_method(separators.Method(
        name='toy-half', load=lambda model_dir, doc, **o: HalfSplit()))
    try:
      sep = separators.load_separator(model_dir=tmp)
      self.assertEqual(sep.sources, ('low', 'high'))
      with self.assertRaisesRegex(ParameterError, 'holds a toy-half model, not basis'):
        separators.load_separator('basis', model_dir=tmp)
    finally:
      separators.unregister_method('toy-half')

  def test_source_names_must_be_identifiers(self):
    class Bad(HalfSplit):
      sources = ('../x', 'y')
    separators.register_method(separators.Method(name='toy-bad', load=lambda *a, **o: Bad(),
                                                 needs_model=False))
    try:
      with self.assertRaisesRegex(ParameterError, "source name '../x' is not an identifier"):
        separators.load_separator('toy-bad')
    finally:
      separators.unregister_method('toy-bad')


class MethodSpecTest(tf.test.TestCase):
  """``NAME[:key=value,...]``: one parser for evaluate_separation and separate_audio."""

  def test_spec_values_are_converted(self):
    self.assertEqual(separators.parse_spec('basis'), ('basis', {}))
    self.assertEqual(
        separators.parse_spec('synthesis:decoder=vocoder, n_iter=3,seed=1.5,refiner=none,'
                              'check_step=false'),
        ('synthesis', {'decoder': 'vocoder', 'n_iter': 3, 'seed': 1.5, 'refiner': None,
                       'check_step': False}))

  def test_malformed_specs_are_refused_naming_them(self):
    with self.assertRaisesRegex(ParameterError, "unknown method 'nope'; registered"):
      separators.parse_spec('nope:phase=misi')
    with self.assertRaisesRegex(ParameterError, "method spec 'basis:phase': options are "
                                "key=value, got 'phase'"):
      separators.parse_spec('basis:phase')
    with self.assertRaisesRegex(ParameterError, "options are key=value, got '=misi'"):
      separators.parse_spec('basis:=misi')
    with self.assertRaisesRegex(ParameterError, "option 'phase' is given twice"):
      separators.parse_spec('basis:phase=misi,phase=wiener')

  def test_an_option_given_twice_names_both_places(self):
    with self.assertRaisesRegex(ParameterError, "option 'phase' is given twice: in the method "
                                "spec 'basis:phase=misi' and as --phase; give it once"):
      separators.merge_options('basis:phase=misi', {'phase': 'misi'},
                               given_as={'phase': '--phase'})
    with self.assertRaisesRegex(ParameterError, 'and in method_options'):
      separators.merge_options('basis:phase=misi', {'phase': 'wiener'})
    # A default (not in given_as) is overridden by the spec; other options are kept.
    self.assertEqual(
        separators.merge_options('basis:precision=float32',
                                 {'precision': 'auto', 'sampler': 'paper'},
                                 given_as={'sampler': '--sampler'}),
        ('basis', {'precision': 'float32', 'sampler': 'paper'}))

  def test_unknown_option_keys_list_the_methods_options(self):
    with self.assertRaisesRegex(ParameterError, r"unknown basis options \['bogus'\] \(it takes "
                                r'prior_dirs, names, .*sampler'):
      separators.load_separator('basis', prior_dirs=('a', 'b'),
                                **separators.parse_spec('basis:bogus=1')[1])
    with self.assertRaisesRegex(ParameterError, r"unknown synthesis options \['colour'\] \(it "
                                'takes chunk_s, .*decoder, vocoder'):
      separators.load_separator('synthesis', task='speech-noise', colour='red')

  def test_a_bad_option_value_is_refused_by_the_method(self):
    _, options = separators.parse_spec('synthesis:decoder=banana')
    with self.assertRaisesRegex(ParameterError, "synthesis decoder must be one of "
                                r"\['inversion', 'vocoder'\], got 'banana'"):
      separators.load_separator('synthesis', task='speech-noise', **options)


class ToyMethodTest(tf.test.TestCase):
  """A separator registered here shows up in the evaluation table with no edit elsewhere."""

  def setUp(self):
    super().setUp()
    separators.register_method(separators.Method(
        name='toy-half', load=lambda model_dir, doc, **o: HalfSplit(**o), needs_model=False,
        label=lambda o: 'toy' + ('-loud' if o.get('gain_low', 1) != 1 else '')))
    self.addCleanup(separators.unregister_method, 'toy-half')

  def _references(self, root, n_tracks=2):
    for i in range(n_tracks):
      t = np.arange(8000) / 8000
      low = (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
      high = (0.1 * np.sin(2 * np.pi * 3000 * t + i)).astype(np.float32)
      folder = os.path.join(root, f'track{i}')
      os.makedirs(folder)
      for name, y in (('low', low), ('high', high), ('mixture', low + high)):
        sf.write(os.path.join(folder, f'{name}.wav'), y, 8000, subtype='FLOAT')
    return root

  def test_toy_method_is_scored_beside_an_oracle(self):
    tmp = self.create_tempdir().full_path
    refs = self._references(os.path.join(tmp, 'refs'))
    config = evaluate_tracks.TrackEvalConfig(
        references_dir=refs, out_dir=os.path.join(tmp, 'out'),
        methods=('toy-half', 'toy-half:gain_low=2', 'IRM2'))
    summary = evaluate_tracks.run(config, log=lambda s: None)
    by = {(r['method'], r['source']): r for r in summary['rows']}
    self.assertEqual({m for m, _ in by},
                     {'toy', 'toy-loud', 'IRM2', 'mixture-as-estimate'})
    # The exact split beats the mixture by far; doubling a source costs SDR.
    self.assertGreater(by[('toy', 'low')]['SDR'], by[('mixture-as-estimate', 'low')]['SDR'] + 20)
    self.assertLess(by[('toy-loud', 'low')]['SDR'], by[('toy', 'low')]['SDR'])
    html = open(summary['report_html'], encoding='utf-8').read()
    self.assertIn('toy-loud', html)
    lines = []
    evaluate_tracks.run(config, log=lines.append)
    self.assertLen([l for l in lines if 'done in an earlier run' in l], 2)

  def test_a_folder_of_three_files_resumes_and_survives_a_bad_file(self):
    tmp = self.create_tempdir().full_path
    inputs = os.path.join(tmp, 'in')
    os.makedirs(os.path.join(inputs, 'sub'))
    for i, name in enumerate(('a.wav', 'b.flac', 'sub/c.wav')):
      sf.write(os.path.join(inputs, name), _noise(0.5, 8000, i), 8000)
    with open(os.path.join(inputs, 'broken.wav'), 'w') as f:
      f.write('not audio')
    out = os.path.join(tmp, 'out')
    config = separate_files.SeparateFilesConfig(input=inputs, out_dir=out, method='toy-half',
                                                figure=False)
    with self.assertRaisesRegex(ParameterError, r'1 of 4 files failed .*broken.wav'):
      separate_files.run(config, log=lambda s: None)
    for stem in ('a', 'b', 'sub/c'):
      for source in ('low', 'high'):
        self.assertTrue(os.path.exists(os.path.join(out, stem, f'{source}.wav')), stem)
      self.assertTrue(os.path.exists(os.path.join(out, stem, 'separation.json')))
    os.remove(os.path.join(inputs, 'broken.wav'))
    lines = []
    summary = separate_files.run(config, log=lines.append)
    self.assertEqual(summary['n_files'], 3)
    self.assertLen([l for l in lines if 'done in an earlier run' in l], 3)
    self.assertFalse(os.path.exists(os.path.join(out, '.cache')))

  def test_spec_options_are_recorded_and_a_rerun_with_others_separates_again(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _noise(0.5, 8000), 8000, subtype='FLOAT')
    out = os.path.join(tmp, 'out')
    loud = separate_files.SeparateFilesConfig(input=mix, out_dir=out,
                                              method='toy-half:gain_low=2', figure=False)
    record = separate_files.run(loud, log=lambda s: None)['records']['mix.wav']
    self.assertEqual(record['method_options'], {'gain_low': 2})
    self.assertEqual(record['method'], 'toy-loud')
    low_loud = sf.read(os.path.join(out, 'low.wav'))[0]
    # Other options: separated again, not resumed from the first run's outputs.
    lines = []
    plain = dataclass_replace(loud, method='toy-half')
    record = separate_files.run(plain, log=lines.append)['records']['mix.wav']
    self.assertEqual(record['method_options'], {})
    self.assertTrue(any('other settings or options; separating again' in l for l in lines))
    self.assertFalse(record.get('resumed'))
    self.assertAllClose(sf.read(os.path.join(out, 'low.wav'))[0], low_loud / 2, atol=1e-6)
    # The same options: resumed.
    lines = []
    self.assertTrue(separate_files.run(plain, log=lines.append)['records']['mix.wav']['resumed'])
    # An option in the spec and in method_options.
    with self.assertRaisesRegex(ParameterError, "option 'gain_low' is given twice"):
      separate_files.run(loud, method_options={'gain_low': 3}, log=lambda s: None)
    with self.assertRaisesRegex(ParameterError, "method spec 'toy-half:gain_low'"):
      separate_files.SeparateFilesConfig(input=mix, out_dir=out, method='toy-half:gain_low')

  def test_each_files_record_holds_its_own_model_stats(self):
    class Counting(HalfSplit):
      def reset_stats(self):
        self.stats = {'calls': 0}
      def separate(self, audio, sample_rate):
        self.stats['calls'] += 1
        return super().separate(audio, sample_rate)
    separators.register_method(separators.Method(
        name='toy-count', load=lambda *a, **o: Counting(), needs_model=False))
    self.addCleanup(separators.unregister_method, 'toy-count')
    tmp = self.create_tempdir().full_path
    for i, name in enumerate(('a.wav', 'b.wav')):   # different audio: no chunk is reused
      sf.write(os.path.join(tmp, name), _noise(0.5, 8000, seed=i), 8000)
    out = os.path.join(self.create_tempdir().full_path, 'out')
    summary = separate_files.run(separate_files.SeparateFilesConfig(
        input=tmp, out_dir=out, method='toy-count', figure=False), log=lambda s: None)
    self.assertEqual([r['model_stats']['calls'] for r in summary['records'].values()], [1, 1])

  def test_outputs_never_overwrite_the_input_or_a_users_file(self):
    tmp = self.create_tempdir().full_path
    song = os.path.join(tmp, 'song')
    os.makedirs(song)
    mine = os.path.join(song, 'low.wav')
    sf.write(mine, _noise(0.5, 8000), 8000)
    config = separate_files.SeparateFilesConfig(input=mine, out_dir=song, method='toy-half',
                                                figure=False)
    with self.assertRaisesRegex(ParameterError, 'would overwrite the input'):
      separate_files.run(config, log=lambda s: None)
    other = os.path.join(tmp, 'mix.wav')
    sf.write(other, _noise(0.5, 8000), 8000)
    with self.assertRaisesRegex(ParameterError, 'low.wav exists and was not written by an '
                                'earlier separation'):
      separate_files.run(dataclass_replace(config, input=other), log=lambda s: None)
    self.assertEqual(sf.read(mine)[0].shape, (4000,))     # untouched
    # Its own earlier outputs are replaced.
    out = os.path.join(tmp, 'out')
    separate_files.run(dataclass_replace(config, input=other, out_dir=out), log=lambda s: None)
    separate_files.run(dataclass_replace(config, input=other, out_dir=out, resume=False),
                       log=lambda s: None)

  def test_a_crash_mid_write_leaves_no_record_beside_mixed_outputs(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _noise(0.5, 8000), 8000)
    out = os.path.join(tmp, 'out')
    config = separate_files.SeparateFilesConfig(input=mix, out_dir=out, method='toy-half',
                                                figure=False)
    separate_files.run(config, log=lambda s: None)
    old = sf.read(os.path.join(out, 'low.wav'))[0]
    real_write = separate_files.audio.write_wav
    calls = []

    def failing_write(path, *args, **kwargs):
      calls.append(path)
      if len(calls) == 2:
        raise KeyboardInterrupt              # killed between the two sources
      return real_write(path, *args, **kwargs)

    sf.write(mix, _noise(0.5, 8000, seed=5), 8000)         # new input
    separate_files.audio.write_wav = failing_write
    try:
      with self.assertRaises(KeyboardInterrupt):
        separate_files.run(config, log=lambda s: None)
    finally:
      separate_files.audio.write_wav = real_write
    # Nothing was published: the old set is intact and still recorded.
    self.assertAllClose(sf.read(os.path.join(out, 'low.wav'))[0], old)
    self.assertTrue(os.path.exists(os.path.join(out, 'separation.json')))
    self.assertEqual([f for f in os.listdir(out) if 'partial' in f], [])


def dataclass_replace(config, **changes):
  import dataclasses  # pylint: disable=g-import-not-at-top
  return dataclasses.replace(config, **changes)


@pytest.mark.slow
class CommandLineTest(tf.test.TestCase):

  def _run(self, *args, cwd=ROOT):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    return subprocess.run([sys.executable, os.path.join(ROOT, 'separate_audio.py'), *args],
                          capture_output=True, text=True, env=env, timeout=300, cwd=cwd)

  def test_method_and_task_errors_are_one_line(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _noise(1.0, 16000), 16000)
    cases = [
        (['--method=nope'], "unknown method 'nope'; registered methods:"),
        (['--method=synthesis'], 'no shipped synthesis model for --task=piano-violin; '
                                 'shipped: --task=piano-violin --method=basis'),
        (['--method=IRM2'], 'IRM2 is an oracle'),
        (['--method=IRM2', '--phase=misi'], '--phase applies to --method=basis only'),
        (['--names=a,b'], '--names goes with --prior_dir'),
        (['--method=basis:phase=misi', '--phase=misi'], "option 'phase' is given twice: in "
         "the method spec 'basis:phase=misi' and as --phase; give it once"),
        (['--method=basis:precision=float32', '--bfloat16'], "option 'precision' is given "
         "twice: in the method spec 'basis:precision=float32' and as --bfloat16"),
        (['--method=basis:phase'], "method spec 'basis:phase': options are key=value"),
        (['--method=synthesis:colour=red', '--task=speech-noise'],
         "unknown synthesis options ['colour'] (it takes chunk_s, magnitude, phase"),
        (['--method=synthesis:decoder=banana', '--task=speech-noise'],
         "synthesis decoder must be one of ['inversion', 'vocoder'], got 'banana'"),
        (['--guide=nonesuch'], "guide='nonesuch' is neither a model folder nor a registered "
                               'method'),
        (['--guide=off', '--magnitude=guide'], "magnitude='guide' takes the guide's STFT "
                                               'magnitudes: give a guide'),
        (['--level_normalise=estimate'], "guide='unet' and level_normalise='estimate' "
                                         'exclude each other'),
        (['--guide=unet', '--method=unet'], '--guide applies to --method=basis only'),
    ]
    for args, message in cases:
      proc = self._run(f'--input={mix}', f'--out_dir={tmp}/o', *args)
      self.assertEqual(proc.returncode, 2, (args, proc.stderr[-500:]))
      self.assertIn(f'separate_audio: error: {message}', proc.stderr)
      self.assertNotIn('Traceback', proc.stderr)

  def test_a_method_spec_runs_synthesis_with_the_vocoder_end_to_end(self):
    tmp = self.create_tempdir().full_path
    mix = os.path.join(tmp, 'mix.wav')
    sf.write(mix, _noise(1.5, 16000), 16000)
    out = os.path.join(tmp, 'out')
    args = (f'--input={mix}', f'--out_dir={out}', '--task=speech-noise', '--nofigure')

    def record():
      with open(os.path.join(out, 'separation.json'), encoding='utf-8') as f:
        return json.load(f)

    proc = self._run(*args, '--method=synthesis:decoder=vocoder')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    doc = record()
    self.assertEqual(doc['method_options'], {'decoder': 'vocoder'})
    self.assertEqual(doc['identity']['model']['decoder'], 'vocoder')
    self.assertEqual(doc['settings']['decoder'], 'vocoder')
    for name in ('voice', 'noise'):
      y, rate = sf.read(os.path.join(out, f'{name}.wav'))
      self.assertEqual((rate, y.shape), (16000, (24000,)))
      self.assertTrue(np.all(np.isfinite(y)))
    vocoded = sf.read(os.path.join(out, 'voice.wav'))[0]
    # The default decoder into the same folder: separated again, not resumed.
    proc = self._run(*args, '--method=synthesis')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn('other settings or options; separating again', proc.stdout + proc.stderr)
    doc = record()
    self.assertEqual(doc['method_options'], {})
    self.assertNotIn('decoder', doc['identity']['model'])       # the inversion decoder
    self.assertGreater(np.max(np.abs(sf.read(os.path.join(out, 'voice.wav'))[0] - vocoded)),
                       1e-3)

  def test_arrays_api_works_from_a_script_outside_the_checkout(self):
    code = textwrap.dedent('''
        import numpy as np
        from experiments.separators import load_separator
        sep = load_separator('basis', task='piano-violin', steps_per_sigma=1, check_step=False)
        t = np.arange(32000) / 16000
        y = (0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t))
        out = sep.separate(y.astype(np.float32), 16000)
        assert sorted(out) == ['piano', 'violin'], sorted(out)
        assert all(v.shape == y.shape and np.isfinite(v).all() for v in out.values())
        print('ok')
    ''')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    env.pop('PYTHONPATH', None)
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=self.create_tempdir().full_path)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertEqual(proc.stdout.strip().splitlines()[-1], 'ok')


if __name__ == '__main__':
  tf.test.main()


@pytest.mark.slow
class ShippedModelsTest(tf.test.TestCase):

  def test_every_shipped_model_loads_and_separates(self):
    """Each (task, method) under assets/separators runs through the seam (BASIS with one
    Langevin step per level, to stay quick; its shipped chains and priors still load)."""
    shipped = separators.shipped_models()
    self.assertIn(('speech-noise', 'basis'), shipped)
    self.assertIn(('piano-violin', 'basis'), shipped)
    y = _noise(1.5, 22050, seed=3)
    for (task, method) in sorted(shipped):
      options = {'steps_per_sigma': 1, 'check_step': False} if method == 'basis' else {}
      sep = separators.load_separator(method, task=task, **options)
      out = sep.separate(y, 22050)
      self.assertEqual(tuple(out), separators.check_task(task), (task, method))
      for name, est in out.items():
        self.assertEqual(est.shape, y.shape, (task, method, name))
        self.assertTrue(np.all(np.isfinite(est)), (task, method, name))
