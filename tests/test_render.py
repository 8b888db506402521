"""Tests of datagen.midi (random phrases) and datagen.render (fluidsynth).

The phrase and soundfont-lookup tests need nothing installed. The rendering
tests need the ``fluidsynth`` program (and the FluidR3_GM soundfont) and are
skipped, with the reason, only when the program is missing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import soundfile as sf

from datagen import midi
from datagen import render
from common.errors import ParameterError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_FLUIDSYNTH = shutil.which('fluidsynth') is not None
requires_fluidsynth = unittest.skipUnless(
    HAVE_FLUIDSYNTH, 'the fluidsynth program is not installed (run `make data` '
    'or `apt-get install fluidsynth fluid-soundfont-gm`)')

SR = 16000


def _envelope_slope_db_per_s(y, *, sample_rate=SR, hop=320):
  """Median frame-to-frame change of the frame energy (dB/s) where active.

  Piano notes decay after the hammer strike, so a piano phrase's energy
  mostly falls; a bowed violin holds (or swells) its notes, so it does not.
  Measured on 24 rendered clips: piano -21 to -10 dB/s, violin -3 to +16.
  """
  frames = np.lib.stride_tricks.sliding_window_view(y, 1024)[::hop]
  db = 10 * np.log10(np.sum(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
  active = db > db.max() - 30
  return float(np.median(np.diff(db)[active[1:]]) * sample_rate / hop)


def _single_note_phrase(program, pitch, *, duration_s=2.5, hold_s=2.0):
  return midi.Phrase(
      instrument='piano' if program == 0 else 'violin', program=program,
      seed=0, tempo_us=500000, tonic=0, mode='major', duration_s=duration_s,
      chord_beats=4, chords=(0,), notes=(midi.Note(pitch, 90, 0.0, hold_s),))


class PhraseTest(parameterized.TestCase):

  @parameterized.parameters('piano', 'violin')
  def test_same_seed_gives_identical_phrase_and_midi_bytes(self, instrument):
    tmp = self.create_tempdir().full_path
    a = midi.write_phrase_midi(os.path.join(tmp, 'a.mid'),
                               instrument=instrument, duration_s=4.0, seed=3)
    b = midi.write_phrase_midi(os.path.join(tmp, 'b.mid'),
                               instrument=instrument, duration_s=4.0, seed=3)
    self.assertEqual(a, b)
    with open(os.path.join(tmp, 'a.mid'), 'rb') as fa, open(
        os.path.join(tmp, 'b.mid'), 'rb') as fb:
      self.assertEqual(fa.read(), fb.read())

  @parameterized.parameters('piano', 'violin')
  def test_different_seeds_give_different_phrases(self, instrument):
    phrases = {midi.make_phrase(instrument=instrument, duration_s=4.0,
                                seed=s).notes for s in range(12)}
    self.assertLen(phrases, 12)

  @parameterized.parameters('piano', 'violin')
  def test_notes_lie_within_range_duration_and_key(self, instrument):
    spec = midi.INSTRUMENTS[instrument]
    for seed in range(40):
      phrase = midi.make_phrase(instrument=instrument, duration_s=4.0,
                                seed=seed)
      pitches = phrase.pitches()
      self.assertGreaterEqual(pitches.min(), spec.low, f'seed {seed}')
      self.assertLessEqual(pitches.max(), spec.high, f'seed {seed}')
      scale = {(phrase.tonic + d) % 12 for d in midi.SCALES[phrase.mode]}
      self.assertTrue(set(pitches % 12) <= scale, f'seed {seed}: off the key')
      for n in phrase.notes:
        self.assertLess(n.start_s, n.end_s)
        self.assertGreaterEqual(n.start_s, 0.0)
        self.assertLessEqual(n.end_s, 4.0 + 1e-9)
        self.assertBetween(n.velocity, 1, 127)

  def test_piano_plays_chords_under_a_melody(self):
    for seed in range(20):
      phrase = midi.make_phrase(instrument='piano', duration_s=4.0, seed=seed)
      self.assertGreaterEqual(phrase.max_polyphony(), 3, f'seed {seed}')
      voices = {n.voice for n in phrase.notes}
      self.assertContainsSubset({'melody', 'accompaniment'}, voices)
      left = [n.pitch for n in phrase.notes if n.voice == 'accompaniment']
      right = [n.pitch for n in phrase.notes if n.voice == 'melody']
      self.assertLess(np.mean(left), np.mean(right), f'seed {seed}')

  def test_violin_is_monophonic_legato_and_slower_than_piano(self):
    violin_beats, piano_beats = [], []
    for seed in range(30):
      phrase = midi.make_phrase(instrument='violin', duration_s=4.0, seed=seed)
      self.assertEqual(phrase.max_polyphony(), 1, f'seed {seed}')
      notes = phrase.notes
      gaps = [b.start_s - a.end_s for a, b in zip(notes, notes[1:])]
      self.assertTrue(all(g >= -1e-9 for g in gaps), f'seed {seed}: overlap')
      beat_s = 60.0 / phrase.tempo_bpm
      # Legato: most notes run into the next (a breath is an eighth at most).
      self.assertLessEqual(max(gaps, default=0.0), beat_s / 2 + 1e-6)
      violin_beats += [(n.end_s - n.start_s) / beat_s for n in notes]
      piano = midi.make_phrase(instrument='piano', duration_s=4.0, seed=seed)
      piano_beats += [(n.end_s - n.start_s) * piano.tempo_bpm / 60
                      for n in piano.notes if n.voice == 'melody']
    self.assertGreater(np.median(violin_beats), np.median(piano_beats))

  @parameterized.parameters('piano', 'violin')
  def test_melody_moves_mostly_by_step_with_some_leaps(self, instrument):
    intervals = []
    for seed in range(40):
      phrase = midi.make_phrase(instrument=instrument, duration_s=6.0,
                                seed=seed)
      line = [n.pitch for n in phrase.notes if n.voice == 'melody']
      intervals += list(np.abs(np.diff(line)))
    intervals = np.array(intervals)
    self.assertGreater(np.mean(intervals <= 2), 0.5)  # a scale step: 1-2
    self.assertGreater(np.mean(intervals >= 5), 0.03)  # leaps of a 4th or more

  def test_accompanying_phrase_shares_tempo_key_and_chords(self):
    piano = midi.make_phrase(instrument='piano', duration_s=4.0, seed=5)
    violin = midi.make_phrase(instrument='violin', duration_s=4.0, seed=9,
                              accompany=piano)
    self.assertEqual(violin.tempo_us, piano.tempo_us)
    self.assertEqual((violin.tonic, violin.mode), (piano.tonic, piano.mode))
    self.assertEqual(violin.chords, piano.chords)
    self.assertEqual(violin.program, 40)

  @parameterized.parameters(('piano', 0), ('violin', 40))
  def test_written_midi_reads_back_the_same_notes_and_program(
      self, instrument, program):
    path = os.path.join(self.create_tempdir().full_path, 'p.mid')
    phrase = midi.write_phrase_midi(path, instrument=instrument,
                                    duration_s=3.0, seed=1, tempo_bpm=97)
    self.assertAlmostEqual(phrase.tempo_bpm, 97, places=3)
    back = midi.read_midi_notes(path)
    key = lambda n: (round(n.start_s, 6), n.pitch)
    self.assertEqual(sorted([(n.pitch, n.velocity) for n in phrase.notes]),
                     sorted([(n.pitch, n.velocity) for n in back]))
    for a, b in zip(sorted(phrase.notes, key=key), sorted(back, key=key)):
      self.assertAlmostEqual(a.start_s, b.start_s, places=6)
      self.assertAlmostEqual(a.end_s, b.end_s, places=6)
    import mido  # pylint: disable=g-import-not-at-top
    programs = [m.program for t in mido.MidiFile(path).tracks for m in t
                if m.type == 'program_change']
    self.assertEqual(programs, [program])

  def test_rejects_bad_arguments_naming_the_value(self):
    with self.assertRaisesRegex(ParameterError, 'guitar'):
      midi.make_phrase(instrument='guitar', duration_s=4.0, seed=0)
    with self.assertRaisesRegex(ParameterError, 'duration_s.*0.1'):
      midi.make_phrase(instrument='piano', duration_s=0.1, seed=0)
    with self.assertRaisesRegex(ParameterError, 'seed.*-1'):
      midi.make_phrase(instrument='piano', duration_s=4.0, seed=-1)
    with self.assertRaisesRegex(ParameterError, 'tempo_bpm.*10'):
      midi.make_phrase(instrument='violin', duration_s=4.0, seed=0,
                       tempo_bpm=10)
    with self.assertRaisesRegex(ParameterError, 'nope.mid'):
      midi.read_midi_notes('/nonexistent/nope.mid')


class SoundfontAndMixingTest(parameterized.TestCase):

  def test_explicit_missing_soundfont_is_an_error_naming_it(self):
    with self.assertRaisesRegex(ParameterError, 'missing.sf2.*does not exist'):
      render.find_soundfont('/nonexistent/missing.sf2')

  def test_env_override_is_used_and_must_exist(self):
    sf2 = self.create_tempfile('mine.sf2', content='RIFF\0\0\0\0sfbk').full_path
    with mock.patch.dict(os.environ, {render.SOUNDFONT_ENV: sf2}):
      self.assertEqual(render.find_soundfont(), os.path.abspath(sf2))
    with mock.patch.dict(os.environ, {render.SOUNDFONT_ENV: '/no/such.sf2'}):
      with self.assertRaisesRegex(ParameterError,
                                  'BASIS_SOUNDFONT=.*/no/such.sf2'):
        render.find_soundfont()

  def test_no_soundfont_installed_says_how_to_install_one(self):
    env = {k: v for k, v in os.environ.items() if k != render.SOUNDFONT_ENV}
    with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(
        render, 'SOUNDFONT_CANDIDATES', ('/nonexistent/FluidR3_GM.sf2',)):
      with self.assertRaisesRegex(
          render.RenderDependencyError,
          r'make data.*apt-get install fluidsynth fluid-soundfont-gm'):
        render.find_soundfont()

  def test_missing_fluidsynth_says_how_to_install_it(self):
    path = os.path.join(self.create_tempdir().full_path, 'p.mid')
    midi.write_phrase_midi(path, instrument='piano', duration_s=1.0, seed=0)
    with mock.patch.object(render.shutil, 'which', return_value=None):
      with self.assertRaisesRegex(render.RenderDependencyError,
                                  'fluidsynth.*not installed.*make data'):
        render.synthesize_midi(path, duration_s=1.0)

  @parameterized.parameters(-6.0, 0.0, 4.5)
  def test_mix_sources_sets_the_ratio_and_sums_exactly(self, ratio_db):
    rng = np.random.default_rng(0)
    piano = rng.normal(0, 0.3, 8000).astype(np.float32)
    violin = np.sin(np.arange(8000) * 0.1).astype(np.float32)
    p, v, mix = render.mix_sources(piano, violin, ratio_db=ratio_db, peak=0.9)
    # float64 scaling then one float32 rounding: far below 0.01 dB.
    self.assertAlmostEqual(
        20 * np.log10(render.rms(v) / render.rms(p)), ratio_db, places=4)
    np.testing.assert_array_equal(mix, p + v)
    self.assertAlmostEqual(
        max(np.abs(mix).max(), np.abs(p).max(), np.abs(v).max()), 0.9,
        places=6)

  def test_mix_sources_rejects_a_silent_source(self):
    with self.assertRaisesRegex(ParameterError, 'silent source'):
      render.mix_sources(np.ones(10), np.zeros(10), ratio_db=0.0)

  def test_clip_seeds_do_not_depend_on_the_number_of_clips(self):
    self.assertEqual(render.clip_seeds(3, 7), render.clip_seeds(3, 7))
    self.assertNotEqual(render.clip_seeds(3, 7), render.clip_seeds(3, 8))
    self.assertNotEqual(render.clip_seeds(3, 7), render.clip_seeds(4, 7))


@requires_fluidsynth
class RenderTest(parameterized.TestCase):
  """Renders two small data sets once (about 2 s) and checks them."""

  DURATION_S = 3.0
  RATIO_DB = -4.5

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='test_render_')
    cls.out = os.path.join(cls.tmp, 'float')
    cls.manifest = render.render_dataset(
        cls.out, n_clips=2, duration_s=cls.DURATION_S, seed=7,
        mix_ratio_db=cls.RATIO_DB, keep_midi=True, progress=False)
    cls.out16 = os.path.join(cls.tmp, 'pcm16')
    cls.manifest16 = render.render_dataset(
        cls.out16, n_clips=1, duration_s=2.0, seed=8, mix_ratio_db=3.0,
        subtype='PCM_16', duet=False, progress=False)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _read(self, out, rel):
    y, sr = sf.read(os.path.join(out, rel), dtype='float32')
    return y, sr

  def test_clips_have_the_exact_length_and_sample_rate(self):
    for out, m in ((self.out, self.manifest), (self.out16, self.manifest16)):
      for clip in m['clips']:
        for rel in clip['files'].values():
          if rel.endswith('.wav'):
            y, sr = self._read(out, rel)
            self.assertEqual(sr, SR)
            self.assertEqual(y.shape, (int(round(m['duration_s'] * SR)),))

  def test_sources_are_audible_and_nothing_clips(self):
    for clip in self.manifest['clips']:
      for inst in ('piano', 'violin', 'mixture'):
        y, _ = self._read(self.out, clip['files'][inst])
        self.assertGreater(render.rms(y), 0.01, f'{inst} is (nearly) silent')
        self.assertLessEqual(np.abs(y).max(), 0.9 + 1e-6)
        # Sound throughout, not a blip: most 0.1 s blocks within 40 dB of peak.
        blocks = y[:len(y) // 1600 * 1600].reshape(-1, 1600)
        block_db = 10 * np.log10(np.mean(blocks ** 2, axis=1) + 1e-12)
        self.assertGreater(np.mean(block_db > block_db.max() - 40), 0.8)

  def test_mixture_equals_the_sum_of_the_saved_sources(self):
    clip = self.manifest['clips'][0]
    p, _ = self._read(self.out, clip['files']['piano'])
    v, _ = self._read(self.out, clip['files']['violin'])
    mix, _ = self._read(self.out, clip['files']['mixture'])
    np.testing.assert_array_equal(mix, p + v)  # FLOAT wavs: exact
    clip = self.manifest16['clips'][0]
    p, _ = self._read(self.out16, clip['files']['piano'])
    v, _ = self._read(self.out16, clip['files']['violin'])
    mix, _ = self._read(self.out16, clip['files']['mixture'])
    # Three independent 16-bit roundings: at most 1.5 LSB apart.
    np.testing.assert_allclose(mix, p + v, rtol=0, atol=1.5 / 32768 + 1e-9)

  def test_level_ratio_is_respected_within_half_a_db(self):
    for out, m in ((self.out, self.manifest), (self.out16, self.manifest16)):
      for clip in m['clips']:
        p, _ = self._read(out, clip['files']['piano'])
        v, _ = self._read(out, clip['files']['violin'])
        ratio = 20 * np.log10(render.rms(v) / render.rms(p))
        self.assertLess(abs(ratio - m['mix_ratio_db']), 0.5)
        self.assertAlmostEqual(clip['ratio_db'], m['mix_ratio_db'], places=3)

  def test_manifest_describes_every_clip(self):
    with open(os.path.join(self.out, 'manifest.json'), encoding='utf-8') as f:
      m = json.load(f)
    self.assertEqual(m['n_clips'], 2)
    self.assertLen(m['clips'], 2)
    self.assertEqual((m['sample_rate'], m['duration_s'], m['mix_ratio_db']),
                     (SR, self.DURATION_S, self.RATIO_DB))
    self.assertEqual(m['n_samples'], int(self.DURATION_S * SR))
    self.assertEqual(m['instruments']['piano']['program'], 0)
    self.assertEqual(m['instruments']['violin']['program'], 40)
    self.assertTrue(os.path.isfile(m['synth']['soundfont']['path']))
    self.assertRegex(m['synth']['fluidsynth_version'], r'^\d+\.\d+')
    for i, clip in enumerate(m['clips']):
      self.assertEqual(clip['seeds'], render.clip_seeds(7, i))
      self.assertEqual((clip['piano']['program'], clip['violin']['program']),
                       (0, 40))
      for rel in clip['files'].values():
        self.assertTrue(os.path.isfile(os.path.join(self.out, rel)), rel)
      for inst in ('piano', 'violin', 'mixture'):
        self.assertGreater(clip[inst]['rms'], 0)

  def test_rendering_is_reproducible_and_clips_independent_of_n_clips(self):
    out = os.path.join(self.tmp, 'again')
    render.render_dataset(out, n_clips=1, duration_s=self.DURATION_S, seed=7,
                          mix_ratio_db=self.RATIO_DB, progress=False)
    for inst in ('piano', 'violin', 'mixture'):
      a, _ = self._read(self.out, f'{inst}/00000.wav')
      b, _ = self._read(out, f'{inst}/00000.wav')
      np.testing.assert_array_equal(a, b)

  def test_existing_data_set_is_reused_and_a_different_one_refused(self):
    again = render.render_dataset(
        self.out, n_clips=2, duration_s=self.DURATION_S, seed=7,
        mix_ratio_db=self.RATIO_DB, keep_midi=True, progress=False)
    self.assertEqual(again['created_utc'], self.manifest['created_utc'])
    with self.assertRaisesRegex(ParameterError, 'n_clips.*overwrite'):
      render.render_dataset(self.out, n_clips=3, duration_s=self.DURATION_S,
                            seed=7, mix_ratio_db=self.RATIO_DB, progress=False)

  def test_piano_note_decays_while_violin_note_sustains(self):
    tmp = self.create_tempdir().full_path
    change_db = {}
    for program in (0, 40):
      path = os.path.join(tmp, f'{program}.mid')
      midi.write_midi(path, _single_note_phrase(program, 67))
      y = render.synthesize_midi(path, duration_s=2.5, peak=None)
      late = render.rms(y[int(1.5 * SR):int(1.9 * SR)])
      early = render.rms(y[int(0.1 * SR):int(0.4 * SR)])
      change_db[program] = 20 * np.log10(late / early)
    # Measured: piano -21 dB, violin +1.5 dB over 1.5 s.
    self.assertLess(change_db[0], -10.0)
    self.assertGreater(change_db[40], -5.0)

  def test_piano_phrases_decay_and_violin_phrases_sustain(self):
    for clip in self.manifest['clips']:
      p, _ = self._read(self.out, clip['files']['piano'])
      v, _ = self._read(self.out, clip['files']['violin'])
      # Thresholds midway between the measured ranges (see the helper).
      self.assertLess(_envelope_slope_db_per_s(p), -6.5)
      self.assertGreater(_envelope_slope_db_per_s(v), -6.5)

  def test_rendered_pitches_follow_the_midi_notes(self):
    import librosa  # pylint: disable=g-import-not-at-top
    clip = self.manifest['clips'][0]
    v, _ = self._read(self.out, clip['files']['violin'])
    notes = midi.read_midi_notes(os.path.join(self.out, clip['files'][
        'violin_midi']))
    f0, voiced, _ = librosa.pyin(v, fmin=180, fmax=1400, sr=SR,
                                 frame_length=1024, hop_length=256)
    t = librosa.times_like(f0, sr=SR, hop_length=256)
    checked = 0
    for n in notes:
      inside = (t > n.start_s + 0.08) & (t < n.end_s - 0.05) & voiced
      if inside.sum() >= 3:
        self.assertAlmostEqual(
            np.median(librosa.hz_to_midi(f0[inside])), n.pitch, delta=0.5)
        checked += 1
    self.assertGreater(checked, 0)

  def test_render_midi_writes_a_peak_normalised_wav(self):
    tmp = self.create_tempdir().full_path
    mid = os.path.join(tmp, 'p.mid')
    midi.write_phrase_midi(mid, instrument='piano', duration_s=1.5, seed=2)
    wav = os.path.join(tmp, 'sub', 'p.wav')
    y = render.render_midi(mid, wav, sample_rate=SR, duration_s=1.5,
                           peak=0.5)
    back, sr = sf.read(wav, dtype='float32')
    self.assertEqual((sr, back.shape), (SR, (int(1.5 * SR),)))
    self.assertAlmostEqual(np.abs(back).max(), 0.5, delta=1e-3)
    np.testing.assert_allclose(back, y, atol=1 / 32768)
    self.assertEqual(os.listdir(os.path.dirname(wav)), ['p.wav'])  # no tmp

  def test_render_rejects_missing_inputs(self):
    with self.assertRaisesRegex(ParameterError, 'nope.mid'):
      render.synthesize_midi('/nonexistent/nope.mid', duration_s=1.0)
    mid = os.path.join(self.create_tempdir().full_path, 'p.mid')
    midi.write_phrase_midi(mid, instrument='violin', duration_s=1.0, seed=0)
    with self.assertRaisesRegex(ParameterError, 'missing.sf2'):
      render.synthesize_midi(mid, duration_s=1.0,
                             soundfont='/nonexistent/missing.sf2')

  def test_script_renders_a_data_set(self):
    out = os.path.join(self.tmp, 'script')
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, 'render_instruments.py'),
         f'--out_dir={out}', '--n_clips=1', '--duration_s=1.0',
         '--mix_ratio_db=2.0'],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO))
    self.assertEqual(proc.returncode, 0, proc.stderr)
    m = render.load_manifest(out)
    self.assertEqual((m['n_clips'], m['mix_ratio_db']), (1, 2.0))
    for inst in ('piano', 'violin', 'mixture'):
      self.assertTrue(os.path.isfile(os.path.join(out, inst, '00000.wav')))


if __name__ == '__main__':
  absltest.main()
