"""Tests of the training sets of issue 22: datagen.recorded (G.722), datagen.pieces
(music21), datagen.music_set and datagen.voice_noise, and their commands.

What needs a program or package is skipped, with the reason, only when it is
missing: fluidsynth + TimGM6mb (``timgm6mb-soundfont``), ffmpeg, the French
Asterisk prompts (``asterisk-core-sounds-fr-g722``), espeak-ng, flite and the
music21 package (``make system-test-deps`` and ``pip install .[dev]`` install
them all). Nothing here may reach the network: the builds run with sockets
refused.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from absl.testing import absltest
import numpy as np
import soundfile as sf

from common.errors import ParameterError
from datagen import music_set, pieces, recorded, soundfonts, voice_noise, voices
from pipeline import waveform_pairs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
TIM = soundfonts.SOUNDFONTS['timgm6mb'].path
FR = os.path.join(recorded.ASTERISK_SOUNDS, 'fr_CA_f_June')
try:
  import music21  # pylint: disable=g-import-not-at-top,unused-import
  HAVE_MUSIC21 = True
except ImportError:
  HAVE_MUSIC21 = False
requires_music21 = unittest.skipUnless(
    HAVE_MUSIC21, 'music21 is not installed (make install, or pip install -c '
    'requirements/constraints.txt -e .[dev]; constraints-py312.txt on Python 3.12 / 3.13)')
requires_render = unittest.skipUnless(
    shutil.which('fluidsynth') and os.path.isfile(TIM),
    'fluidsynth or the TimGM6mb soundfont is missing (make system-test-deps)')
requires_ffmpeg = unittest.skipUnless(shutil.which('ffmpeg'),
                                      'ffmpeg is not installed (make system-test-deps)')
requires_prompts = unittest.skipUnless(
    shutil.which('ffmpeg') and os.path.isdir(FR),
    'ffmpeg or asterisk-core-sounds-fr-g722 is missing (make system-test-deps)')
requires_speech = unittest.skipUnless(
    shutil.which('espeak-ng') and shutil.which('flite'),
    'espeak-ng or flite is missing (make system-test-deps)')
# A tiny catalogue: six fiddle tunes and six chorales (both roles, ensembles).
TINY = (pieces.CatalogueEntry(r'^ryansMammoth/.*\.abc$', 'ryans_mammoth', 'tune', 6),
        pieces.CatalogueEntry(r'^bach/bwv.*\.mxl$', 'bach_chorales', 'chorale', 6))


@contextlib.contextmanager
def no_network():
  """Refuses every socket connection and name lookup inside the block."""
  def refuse(*args, **kwargs):
    raise OSError(f'network access attempted: {args[:2]}')
  with mock.patch.object(socket.socket, 'connect', refuse), \
       mock.patch.object(socket, 'getaddrinfo', refuse), \
       mock.patch.object(socket, 'create_connection', refuse):
    yield


def _dominant_hz(y):
  spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
  return np.fft.rfftfreq(len(y), 1 / SR)[int(np.argmax(spec))]


class G722Test(absltest.TestCase):

  @requires_ffmpeg
  def test_decodes_what_ffmpeg_encoded(self):
    tmp = self.create_tempdir().full_path
    path = os.path.join(tmp, 'tone.g722')
    subprocess.run(['ffmpeg', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i',
                    'sine=frequency=440:sample_rate=16000:duration=1', '-ac', '1',
                    '-c:a', 'g722', '-f', 'g722', path], check=True)
    with no_network():
      y = recorded.decode_g722(path)
    self.assertEqual(y.dtype, np.float32)
    self.assertAlmostEqual(len(y) / SR, 1.0, delta=0.02)       # G.722 frames: a few ms
    self.assertAlmostEqual(_dominant_hz(y[1600:-1600]), 440, delta=3)
    y8 = recorded.decode_g722(path, sample_rate=8000)
    self.assertAlmostEqual(len(y8) / 8000, 1.0, delta=0.02)

  @requires_prompts
  def test_decodes_a_recorded_prompt_as_speech(self):
    files = recorded.prompt_files('fr_CA_f_June')
    self.assertGreater(len(files), 500)
    self.assertFalse(any('silence/' in f or 'tone' in os.path.basename(f) for f in files))
    y = recorded.load_recording(files[0])
    self.assertGreater(len(y), SR // 4)
    self.assertGreater(voices.trim_leading_silence(y, sample_rate=SR).size, SR // 4)
    rms_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    self.assertBetween(rms_db, -45, -6)
    self.assertLess(np.max(np.abs(y)), 1.0)

  def test_missing_ffmpeg_says_how_to_install(self):
    tmp = self.create_tempdir().full_path
    path = os.path.join(tmp, 'x.g722')
    with open(path, 'wb') as f:
      f.write(b'\0' * 100)
    with mock.patch.object(recorded.shutil, 'which', return_value=None):
      with self.assertRaisesRegex(recorded.RecordedDependencyError, 'apt-get install ffmpeg'):
        recorded.decode_g722(path)

  @requires_ffmpeg
  def test_undecodable_file_is_named(self):
    with self.assertRaisesRegex(ParameterError, 'does not exist'):
      recorded.decode_g722('/nonexistent/x.g722')


class DistributionsTest(absltest.TestCase):

  def test_level_balance_covers_plus_minus_15_db_with_equal_clips(self):
    config = music_set.MusicSetConfig(out_dir='unused')
    rng = np.random.default_rng(0)
    draws = [music_set.draw_levels(config, rng) for _ in range(4000)]
    equal = np.array([d[0] for d in draws])
    ratios = np.array([d[1] for d in draws if not d[0]])
    peaks = np.array([d[2] for d in draws])
    self.assertAlmostEqual(equal.mean(), 0.2, delta=0.025)     # 4000 draws: sd 0.006
    self.assertTrue(all(d[1] == 0.0 for d in draws if d[0]))
    self.assertLess(ratios.min(), -15)
    self.assertGreater(ratios.max(), 15)
    self.assertTrue(np.all(np.abs(ratios) <= 18))
    np.testing.assert_allclose(np.percentile(ratios, [25, 50, 75]), [-9, 0, 9], atol=1.0)
    self.assertTrue(np.all((peaks >= 0.15) & (peaks <= 0.45)))

  def test_snr_is_uniform_in_minus_5_to_5_db_on_a_plain_grid(self):
    config = voice_noise.VoiceNoiseConfig(out_dir='unused')
    rng = np.random.default_rng(1)
    snrs = np.array([voice_noise.draw_snr(config, rng) for _ in range(4000)])
    self.assertTrue(np.all((snrs >= -5) & (snrs <= 5)))
    np.testing.assert_allclose(snrs * 10, np.round(snrs * 10), atol=1e-6)
    hist, _ = np.histogram(snrs, bins=10, range=(-5, 5))
    np.testing.assert_allclose(hist / len(snrs), 0.1, atol=0.02)   # sd of a share 0.005
    names = {waveform_pairs.mixture_name(s) for s in snrs}
    self.assertTrue(all(waveform_pairs.parse_mixture_name(n) is not None for n in names))
    other = voice_noise.VoiceNoiseConfig(out_dir='unused', snr_range_db=(0, 10))
    snrs = [voice_noise.draw_snr(other, rng) for _ in range(500)]
    self.assertBetween(min(snrs), 0, 0.5)
    self.assertBetween(max(snrs), 9.5, 10)

  def test_bad_settings_are_named(self):
    for kwargs, pattern in (({'snr_range_db': (5, -5)}, 'snr_range_db'),
                            ({'splits': ('train:1',)}, 'name:seed:n_clips'),
                            ({'splits': ('dev:1:2',)}, 'name must be one of'),
                            ({'noise_weights': (('rain', 1.0),)}, 'noise_weights')):
      with self.assertRaisesRegex(ParameterError, pattern):
        voice_noise.VoiceNoiseConfig(out_dir='x', **kwargs)
    for kwargs, pattern in (({'ratio_range_db': (10, -10)}, 'ratio_range_db'),
                            ({'equal_share': 1.5}, 'equal_share'),
                            ({'splits': ('train:1:2:nosuchfont',)}, 'unknown soundfont')):
      with self.assertRaisesRegex(ParameterError, pattern):
        music_set.MusicSetConfig(out_dir='x', **kwargs)


class SplitsTest(absltest.TestCase):

  def test_validation_and_test_timbres_and_voices_are_unseen_in_training(self):
    train = set(soundfonts.DEFAULT_SPLIT_SOUNDFONTS['train'])
    self.assertEqual(soundfonts.DEFAULT_SPLIT_SOUNDFONTS['validation'], ('musescore_general',))
    self.assertFalse(train & set(soundfonts.DEFAULT_SPLIT_SOUNDFONTS['validation']))
    self.assertFalse(train & set(soundfonts.DEFAULT_SPLIT_SOUNDFONTS['test']))
    speakers = {s: {recorded.SPEAKERS[f][0] for f, _ in p.prompts} | set(p.espeak) | set(p.flite)
                for s, p in voice_noise.VOICE_SPLITS.items()}
    self.assertFalse(speakers['train'] & speakers['validation'])
    self.assertFalse(speakers['train'] & speakers['test'])
    self.assertIn('June', speakers['validation'])

  def test_works_split_by_piece_id_in_the_stated_shares(self):
    ids = [f'ryansMammoth/tune{i}.abc' for i in range(3000)]
    splits = [pieces.split_of(i, music_set.PIECE_FRACTIONS) for i in ids]
    self.assertEqual(splits, [pieces.split_of(i, music_set.PIECE_FRACTIONS) for i in ids])
    self.assertAlmostEqual(splits.count('train') / 3000, 0.8, delta=0.03)
    self.assertAlmostEqual(splits.count('validation') / 3000, 0.1, delta=0.02)


@requires_music21
class PieceTest(absltest.TestCase):

  def test_music21_corpus_ships_in_the_package(self):
    with no_network():
      files = pieces.corpus_files()
    self.assertGreater(len(files), 3000)
    root = os.path.dirname(music21.__file__)
    self.assertTrue(os.path.isfile(os.path.join(root, 'corpus', 'bach', 'bwv66.6.mxl')))

  def test_segment_plays_the_notes_of_the_score(self):
    with no_network():
      score = music21.corpus.parse('bach/bwv66.6.mxl').stripTies()
      got = pieces.parse_file('bach/bwv66.6.mxl', TINY[1])
    soprano = [p for p in score.parts if 'soprano' in (p.partName or '').lower()][0]
    truth = [(float(n.offset), float(n.quarterLength), int(n.pitch.midi))
             for n in soprano.flatten().notes]
    violin = [p for p in got if p.role == 'violin'][0]
    self.assertEqual([(o, p) for o, _, p in violin.notes], [(o, p) for o, _, p in truth])
    piano = [p for p in got if p.role == 'piano'][0]
    # every note of the four voices, a unison of two voices played once
    chord = {(float(n.offset), float(n.quarterLength), int(p.midi))
             for part in score.parts for n in part.flatten().notes for p in n.pitches}
    self.assertEqual(set(piano.notes), chord)
    # at 60 quarter notes a minute a quarter note is a second: onsets in seconds
    seg = pieces.segment_notes(violin, duration_s=8.0, tempo_qpm=60.0,
                               rng=np.random.default_rng(0), transpose=0, start_ql=0.0)
    expect = [(o, p) for o, _, p in truth if o < 8.0]
    self.assertEqual([(n.start_s, n.pitch) for n in seg.notes], expect)
    shifted = pieces.segment_notes(violin, duration_s=8.0, tempo_qpm=120.0,
                                   rng=np.random.default_rng(0), transpose=-3, start_ql=0.0)
    self.assertEqual([n.pitch for n in shifted.notes],
                     [p - 3 for o, _, p in truth if o < 16.0])

  @requires_render
  def test_rendered_piece_sounds_the_pitches_of_its_score(self):
    import librosa  # pylint: disable=g-import-not-at-top
    from datagen import midi, render  # pylint: disable=g-import-not-at-top
    violin = [p for p in pieces.parse_file('bach/bwv66.6.mxl', TINY[1]) if p.role == 'violin'][0]
    seg = pieces.segment_notes(violin, duration_s=6.0, tempo_qpm=50.0,
                               rng=np.random.default_rng(0), transpose=0, start_ql=0.0)
    tmp = self.create_tempdir().full_path
    path = os.path.join(tmp, 'v.mid')
    midi.write_midi(path, pieces.segment_phrase(seg, role='violin', duration_s=6.0, seed=0))
    back = midi.read_midi_notes(path)
    self.assertEqual([n.pitch for n in back], [n.pitch for n in seg.notes])
    np.testing.assert_allclose([n.start_s for n in back], [n.start_s for n in seg.notes],
                               atol=2e-3)   # MIDI ticks: 480 per beat
    y = render.synthesize_midi(path, duration_s=6.0, soundfont=TIM)
    f0, voiced, _ = librosa.pyin(y, fmin=180, fmax=1400, sr=SR, frame_length=1024,
                                 hop_length=256)
    t = librosa.times_like(f0, sr=SR, hop_length=256)
    checked = 0
    for n in seg.notes:
      inside = (t > n.start_s + 0.1) & (t < n.end_s - 0.05) & voiced
      if inside.sum() >= 3:
        self.assertAlmostEqual(np.median(librosa.hz_to_midi(f0[inside])), n.pitch, delta=0.5)
        checked += 1
    self.assertGreater(checked, 3)


@requires_music21
@requires_render
class MusicSetTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    cls.config = music_set.MusicSetConfig(
        out_dir=cls.dir, splits=('train:5:6:timgm6mb',), duration_s=2.04, catalogue=TINY,
        piece_share=0.8)
    with no_network():
      cls.manifest = music_set.build(cls.config, progress=False)['train']

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.dir)
    super().tearDownClass()

  def _read(self, rel):
    y, sr = sf.read(os.path.join(self.dir, 'train', rel), dtype='float32')
    self.assertEqual(sr, SR)
    return y

  def test_mixture_is_the_sum_at_the_drawn_balance(self):
    for clip in self.manifest['clips']:
      p, v, m = (self._read(clip['files'][k]) for k in ('piano', 'violin', 'mixture'))
      self.assertEqual(len(m), int(2.04 * SR))
      np.testing.assert_array_equal(m, p + v)
      self.assertAlmostEqual(clip['ratio_db'], clip['ratio_db_drawn'], delta=0.01)
      self.assertAlmostEqual(float(np.max(np.abs(m))), clip['mixture_peak'], places=5)

  def test_manifest_records_soundfont_piece_gains_and_seed(self):
    materials = set()
    for clip in self.manifest['clips']:
      materials.add(clip['material'])
      self.assertEqual(clip['seed_sequence'][:2], [5, clip['index']])
      self.assertIn('room', clip)
      for inst in ('piano', 'violin'):
        info = clip[inst]
        self.assertEqual(info['soundfont'], 'timgm6mb')
        for key in ('gain_db', 'rms_dbfs', 'tempo_qpm', 'transpose', 'eq', 'pitch_range'):
          self.assertIn(key, info)
        self.assertIn('piece_id' if info['source'] == 'piece' else 'seed', info)
    self.assertIn('piece', {m.replace('ensemble', 'piece') for m in materials})
    self.assertEqual(self.manifest['soundfonts']['timgm6mb']['package'], 'timgm6mb-soundfont')
    self.assertEqual(self.manifest['summary']['n_clips'], 6)

  def test_rerun_keeps_finished_clips_and_other_settings_are_refused(self):
    path = os.path.join(self.dir, 'train', 'piano', '00000.wav')
    before = os.stat(path).st_mtime_ns
    music_set.build(self.config, progress=False)
    self.assertEqual(os.stat(path).st_mtime_ns, before)
    other = music_set.MusicSetConfig(
        out_dir=self.dir, splits=('train:5:6:timgm6mb',), duration_s=2.04, catalogue=TINY,
        piece_share=0.5)
    with self.assertRaisesRegex(ParameterError, 'made with other settings'):
      music_set.build(other, progress=False)


@requires_prompts
@requires_speech
class VoiceNoiseTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    cls.config = voice_noise.VoiceNoiseConfig(
        out_dir=cls.dir, splits=('validation:3:4',), duration_s=2.04, recorded_share=0.75,
        noise_weights=(('white', 1.0), ('pink', 1.0)))
    with no_network():
      cls.manifest = voice_noise.build(cls.config, progress=False)
      cls.meta = voice_noise.write_source_patches(
          os.path.join(cls.dir, 'validation'), os.path.join(cls.dir, 'tfr', 'voice'),
          source='voice', progress=False)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.dir)
    super().tearDownClass()

  def test_layout_reads_back_at_the_drawn_snr(self):
    split = os.path.join(self.dir, 'validation')
    clips = waveform_pairs.read_split(split)
    self.assertLen(clips, 4)
    for clip, info in zip(clips, self.manifest['splits']['validation']['clips']):
      self.assertEqual(clip.snrs_db, (info['snr_db'],))
      self.assertBetween(info['snr_db'], -5, 5)
      voice, noise = clip.sources(info['snr_db'])
      self.assertAlmostEqual(waveform_pairs.snr_db(voice, noise), info['snr_db'], delta=0.01)
      self.assertEqual(set(os.listdir(clip.folder)),
                       {'voice.wav', 'noise.wav', 'clip.json', waveform_pairs.mixture_name(
                           info['snr_db'])})

  def test_validation_voices_are_the_unseen_ones(self):
    for clip in self.manifest['splits']['validation']['clips']:
      v = clip['voice']
      if v['kind'] == 'recorded':
        self.assertEqual((v['speaker'], v['language']), ('June', 'fr'))
      else:
        pool = voice_noise.VOICE_SPLITS['validation']
        self.assertIn(v['voice'], pool.espeak + pool.flite)
    hours = self.manifest['splits']['validation']['summary']['hours']
    self.assertAlmostEqual(hours, 4 * 2.04 / 3600, places=4)

  def test_voice_patches_are_written_per_source(self):
    self.assertEqual(self.meta['count'], 4)          # one 2.04 s patch per clip
    self.assertEqual(tuple(self.meta['patch_shape']), (96, 64, 1))

  def test_rerun_keeps_finished_clips(self):
    path = os.path.join(self.dir, 'validation', '0000', 'voice.wav')
    before = os.stat(path).st_mtime_ns
    voice_noise.build(self.config, progress=False)
    self.assertEqual(os.stat(path).st_mtime_ns, before)


class CommandsTest(absltest.TestCase):

  def _run(self, script, *args):
    proc = subprocess.run([sys.executable, os.path.join(REPO, script), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    return proc.returncode, proc.stderr.strip().splitlines()

  def test_bad_flags_give_one_line_and_exit_2(self):
    tmp = self.create_tempdir().full_path
    for script, args, pattern in (
        ('render_music.py', [f'--out_dir={tmp}/m', '--splits=train:x:2'], 'seed and n_clips'),
        ('render_music.py', [f'--out_dir={tmp}/m', '--ratio_range_db=5'], 'ratio_range_db'),
        ('make_voice_noise.py', [f'--out_dir={tmp}/v', '--snr_range_db=5,-5'], 'snr_range_db')):
      code, err = self._run(script, *args)
      self.assertEqual(code, 2, (script, err))
      self.assertLen([l for l in err if 'error:' in l], 1)
      self.assertRegex(err[-1], f'^{script[:-3]}: error: .*{pattern}')


if __name__ == '__main__':
  absltest.main()
