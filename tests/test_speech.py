"""Tests of datagen.speech (espeak-ng speech + noise mixtures) and make_speech_noise.py.

Sentences, noise, mixture names, writing and reading the layout need nothing
installed. Speaking needs the ``espeak-ng`` program and is skipped, with the
reason, only when it is missing; instrument noise also needs fluidsynth.
"""

import json
import os
import shutil
import subprocess
import sys
import unittest
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import soundfile as sf

from datagen import speech
from common.errors import ParameterError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
HAVE_ESPEAK = shutil.which('espeak-ng') is not None
requires_espeak = unittest.skipUnless(
    HAVE_ESPEAK, 'the espeak-ng program is not installed (run `make '
    'system-speech-deps` or `apt-get install espeak-ng`)')
requires_fluidsynth = unittest.skipUnless(
    shutil.which('fluidsynth') is not None,
    'the fluidsynth program is not installed (run `make system-render-deps`)')


def _signals(n=SR // 2, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(n) / SR
  voice = (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
  noise = rng.standard_normal(n)
  noise = (noise * (speech.rms(voice) / speech.rms(noise))).astype(np.float32)
  return voice, noise   # noise at 0 dB SNR, as noise.wav holds it


def _band_db(y, lo, hi):
  spec = np.abs(np.fft.rfft(y)) ** 2
  f = np.fft.rfftfreq(y.shape[0], 1 / SR)
  return 10 * np.log10(np.mean(spec[(f >= lo) & (f < hi)]))


class SentenceAndNoiseTest(parameterized.TestCase):

  def test_sentences_are_seeded_and_use_only_the_word_list(self):
    a = [speech.make_sentence(np.random.default_rng(5)) for _ in range(3)]
    b = [speech.make_sentence(np.random.default_rng(5)) for _ in range(3)]
    self.assertEqual(a, b)
    rng = np.random.default_rng(6)
    many = [speech.make_sentence(rng) for _ in range(200)]
    self.assertGreater(len(set(many)), 190)   # 8 templates x thousands of fillings
    vocabulary = set(speech.sentence_words())
    for s in many:
      self.assertTrue(s[0].isupper() and s[-1] in '.?', s)
      words = s.lower().replace(',', ' ').replace('.', ' ').replace('?', ' ').split()
      self.assertEqual(set(words) - vocabulary, set(), s)

  def test_pink_noise_falls_3_db_per_octave_and_white_is_flat(self):
    pink = speech.pink_noise(4 * SR, seed=1)
    white = speech.white_noise(4 * SR, seed=1)
    self.assertAlmostEqual(float(np.std(pink)), 1.0, places=5)
    # Mean power per bin, 250-500 Hz vs 2-4 kHz (three octaves): -9 dB for 1/f;
    # 4 s of noise averages thousands of bins, so +-1 dB is ample.
    self.assertAlmostEqual(_band_db(pink, 2000, 4000) - _band_db(pink, 250, 500),
                           -9.0, delta=1.0)
    self.assertAlmostEqual(_band_db(white, 2000, 4000) - _band_db(white, 250, 500),
                           0.0, delta=1.0)
    np.testing.assert_array_equal(pink, speech.pink_noise(4 * SR, seed=1))

  def test_unknown_noise_kind_is_named(self):
    with self.assertRaisesRegex(ParameterError, r"unknown noise kind 'traffic'"):
      speech.make_noise('traffic', 100, seed=0)

  @parameterized.parameters((10, 'mix_snr_10.wav'), (0, 'mix_snr_0.wav'),
                            (-10, 'mix_snr_-10.wav'), (-0.0, 'mix_snr_0.wav'),
                            (2.5, 'mix_snr_2.5.wav'), (-7.25, 'mix_snr_-7.25.wav'))
  def test_mixture_names_round_trip(self, snr, name):
    self.assertEqual(speech.mixture_name(snr), name)
    self.assertEqual(speech.parse_mixture_name(name), float(snr))

  def test_mixture_name_rejects_snrs_without_a_plain_name(self):
    with self.assertRaisesRegex(ParameterError, r'snr_db=1e-05'):
      speech.mixture_name(1e-5)
    with self.assertRaisesRegex(ParameterError, r'snr_db.*nan'):
      speech.mixture_name(float('nan'))
    self.assertIsNone(speech.parse_mixture_name('mix_snr_+10.wav'))

  def test_mixtures_have_the_requested_snr(self):
    voice, noise = _signals()
    for snr, mix in speech.make_mixtures(voice, noise, (10, 0, -10, 3.5)).items():
      self.assertAlmostEqual(speech.snr_db(voice, mix - voice), snr, places=4)

  def test_clip_seeds_do_not_depend_on_n_clips_or_collide_with_render(self):
    from datagen import render  # pylint: disable=g-import-not-at-top
    self.assertEqual(speech.clip_seeds(100, 3), speech.clip_seeds(100, 3))
    self.assertNotEqual(speech.clip_seeds(100, 3), speech.clip_seeds(100, 4))
    self.assertNotEqual(sorted(speech.clip_seeds(1000, 0).values()),
                        sorted(render.clip_seeds(1000, 0).values()))


class ConfigTest(parameterized.TestCase):

  def test_splits_parse_from_strings(self):
    c = speech.SpeechNoiseConfig(out_dir='x', splits=('train:1:5', 'test:2:3'))
    self.assertEqual(c.splits, (('train', 1, 5), ('test', 2, 3)))
    self.assertEqual(c.n_samples, 48000)

  @parameterized.parameters(
      (dict(splits=('train:1',)), r"split 'train:1' must be name:seed:n_clips"),
      (dict(splits=('train:1:5', 'train:2:5')), r"split names must differ"),
      (dict(splits=('train:1:0',)), r"split 'train' n_clips must be an int in \[1, "),
      (dict(snrs_db=(10, 10.0)), r'snrs_db must differ'),
      (dict(snrs_db=(99,)), r'snr_db must be .* got 99'),
      (dict(noise_kinds=('white', 'rain')), r"noise_kinds \('white', 'rain'\)"),
      (dict(duration_s=0.1), r'duration_s must be .* got 0.1'),
      (dict(pitch_range=(60, 40)), r'pitch_range\[1\] must be an int in \[60, 99\], got 40'),
  )
  def test_bad_settings_are_named(self, kwargs, pattern):
    with self.assertRaisesRegex(ParameterError, pattern):
      speech.SpeechNoiseConfig(out_dir='x', **kwargs)

  def test_missing_espeak_says_how_to_install(self):
    with mock.patch.object(speech.shutil, 'which', return_value=None):
      with self.assertRaisesRegex(speech.SpeechDependencyError,
                                  r'espeak-ng .*not installed.*system-speech-deps'):
        speech.synthesize_speech('hello')
      self.assertFalse(speech.have_espeak())


class ReaderTest(parameterized.TestCase):

  def _clip(self, snrs=(10, 0, -10)):
    folder = os.path.join(self.create_tempdir().full_path, '0000')
    voice, noise = _signals()
    speech.write_clip(folder, voice, noise, sample_rate=SR, snrs_db=snrs,
                      info={'index': 0})
    return folder, voice, noise

  def test_written_clip_reads_back_exactly(self):
    folder, voice, noise = self._clip()
    self.assertEqual(sorted(os.listdir(folder)),
                     ['clip.json', 'mix_snr_-10.wav', 'mix_snr_0.wav',
                      'mix_snr_10.wav', 'noise.wav', 'voice.wav'])
    self.assertEqual(sf.info(os.path.join(folder, 'voice.wav')).subtype, 'FLOAT')
    clip = speech.read_clip(folder)
    self.assertEqual(clip.snrs_db, (10.0, 0.0, -10.0))
    np.testing.assert_array_equal(clip.voice, voice)
    np.testing.assert_array_equal(clip.noise, noise)
    np.testing.assert_array_equal(clip.sources(-10).sum(axis=0), clip.mixture(-10))
    np.testing.assert_array_equal(clip.noise_at(-10), np.float32(10 ** 0.5) * noise)
    with self.assertRaisesRegex(ParameterError, r'no mixture at 5 dB \(mix_snr_5.wav\)'):
      clip.mixture(5)
    with open(os.path.join(folder, 'clip.json')) as f:
      self.assertEqual(json.load(f)['files']['-10'], 'mix_snr_-10.wav')

  def test_write_clip_leaves_no_partial_folder_on_error(self):
    parent = self.create_tempdir().full_path
    voice, _ = _signals()
    with self.assertRaises(ParameterError):
      speech.write_clip(os.path.join(parent, '0000'), voice, voice[:-1],
                        sample_rate=SR, snrs_db=(0,))
    self.assertEqual(os.listdir(parent), [])

  def test_rejects_missing_file(self):
    folder, _, _ = self._clip()
    os.remove(os.path.join(folder, 'noise.wav'))
    with self.assertRaisesRegex(ParameterError, r"clip folder '.*0000': noise.wav is missing"):
      speech.read_clip(folder)

  def test_rejects_missing_requested_mixture(self):
    folder, _, _ = self._clip(snrs=(10, 0))
    with self.assertRaisesRegex(ParameterError, r'0000.*mix_snr_-10.wav is missing'):
      speech.read_clip(folder, snrs_db=(10, 0, -10))

  def test_rejects_wrong_sample_rate(self):
    folder, voice, _ = self._clip()
    sf.write(os.path.join(folder, 'voice.wav'), voice, 22050, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError,
                                r'0000.*voice.wav has sample rate 22050 Hz, expected 16000'):
      speech.read_clip(folder)

  def test_rejects_stereo(self):
    folder, voice, _ = self._clip()
    sf.write(os.path.join(folder, 'voice.wav'), np.stack([voice] * 2, 1), SR)
    with self.assertRaisesRegex(ParameterError, r'voice.wav has 2 channels, expected mono'):
      speech.read_clip(folder)

  def test_rejects_length_mismatch(self):
    folder, voice, noise = self._clip()
    mix = voice + noise
    sf.write(os.path.join(folder, 'mix_snr_0.wav'), mix[:-10], SR, subtype='FLOAT')
    with self.assertRaisesRegex(ParameterError,
                                r'0000.*mix_snr_0.wav has 7990 samples, voice.wav has 8000'):
      speech.read_clip(folder)

  def test_rejects_mixture_that_is_not_voice_plus_scaled_noise(self):
    folder, voice, noise = self._clip()
    # The 10 dB mixture written under the 0 dB name.
    sf.write(os.path.join(folder, 'mix_snr_0.wav'),
             voice + np.float32(10 ** -0.5) * noise, SR, subtype='FLOAT')
    with self.assertRaisesRegex(
        ParameterError, r"0000': mix_snr_0.wav is not voice.wav \+ 10 \*\* \(-0 / 20\) "
        r'\* noise.wav .*measured SNR of the residual noise 10.00 dB'):
      speech.read_clip(folder)

  def test_rejects_unreadable_wav(self):
    folder, _, _ = self._clip()
    with open(os.path.join(folder, 'mix_snr_10.wav'), 'wb') as f:
      f.write(b'not a wav file')
    with self.assertRaisesRegex(ParameterError, r'mix_snr_10.wav is not a readable audio'):
      speech.read_clip(folder)

  def test_split_listing_skips_hidden_and_rejects_strays(self):
    folder, _, _ = self._clip()
    split = os.path.dirname(folder)
    os.makedirs(os.path.join(split, '.0001.partial-1234'))
    self.assertEqual(speech.list_clips(split), [folder])
    self.assertLen(speech.read_split(split), 1)
    os.makedirs(os.path.join(split, 'extra'))
    with self.assertRaisesRegex(ParameterError, r"holds 'extra', which is not a clip folder"):
      speech.list_clips(split)
    with self.assertRaisesRegex(ParameterError, r"split folder '/nonexistent' does not exist"):
      speech.list_clips('/nonexistent')


@requires_espeak
class EspeakTest(absltest.TestCase):

  def test_speaks_at_the_requested_rate_and_is_deterministic(self):
    y = speech.synthesize_speech('The small house near the river.', voice='en-us+f2',
                                 rate_wpm=150, pitch=40, sample_rate=SR)
    self.assertEqual(y.dtype, np.float32)
    self.assertBetween(y.shape[0] / SR, 1.0, 4.0)   # 6 words at 150 wpm, plus pauses
    self.assertGreater(speech.rms(y), 0.01)
    np.testing.assert_array_equal(y, speech.synthesize_speech(
        'The small house near the river.', voice='en-us+f2', rate_wpm=150, pitch=40))

  def test_every_voice_sounds_different(self):
    # espeak-ng 1.51 ignores the variant of 'en-gb+f4' (same samples as 'en-gb');
    # every voice in VOICES must give its own waveform.
    waves = {v: speech.synthesize_speech('Hello there.', voice=v)
             for v in speech.VOICES}
    keys = {v: (w.shape[0], round(float(speech.rms(w)), 7)) for v, w in waves.items()}
    self.assertLen(set(keys.values()), len(speech.VOICES), keys)

  def test_unknown_voice_is_named(self):
    with self.assertRaisesRegex(ParameterError, r"espeak-ng has no voice 'xx-nope'"):
      speech.synthesize_speech('hello', voice='xx-nope')

  def test_utterance_fills_the_clip_from_its_seed(self):
    a = speech.make_utterance(7, n_samples=2 * SR)
    self.assertEqual(a.waveform.shape, (2 * SR,))
    self.assertIn(a.voice, speech.VOICES)
    self.assertBetween(a.rate_wpm, 130, 190)
    self.assertBetween(a.pitch, 30, 70)
    # Speech reaches the end: the last half second is not silent.
    self.assertGreater(speech.rms(a.waveform[-SR // 2:]), 1e-3)
    np.testing.assert_array_equal(a.waveform,
                                  speech.make_utterance(7, n_samples=2 * SR).waveform)

  def test_babble_is_unit_rms_and_names_its_talkers(self):
    y, talkers = speech.babble_noise(SR, seed=3, n_talkers=3)
    self.assertAlmostEqual(speech.rms(y), 1.0, places=5)
    self.assertLen(talkers, 3)
    self.assertLen({t['seed'] for t in talkers}, 3)


@requires_espeak
class RunTest(absltest.TestCase):

  def _config(self, out_dir, **kwargs):
    kwargs.setdefault('noise_kinds', ('white', 'pink', 'babble'))
    return speech.SpeechNoiseConfig(
        out_dir=out_dir, splits=('train:1:3', 'test:3:1'), duration_s=1.0,
        n_babble_talkers=2, n_workers=1, **kwargs)

  def test_writes_layout_and_manifest_and_resumes(self):
    out = self.create_tempdir().full_path
    manifest = speech.run(self._config(out), progress=False)
    self.assertEqual(sorted(os.listdir(out)), ['manifest.json', 'test', 'train'])
    self.assertEqual(sorted(os.listdir(os.path.join(out, 'train'))), ['0000', '0001', '0002'])
    clips = speech.read_split(os.path.join(out, 'train'), snrs_db=(10, 0, -10))
    for clip in clips:
      self.assertEqual(clip.voice.shape, (SR,))
      self.assertAlmostEqual(20 * np.log10(speech.rms(clip.voice)), -26.0, delta=0.5)
      self.assertAlmostEqual(speech.snr_db(clip.voice, clip.noise_at(-10)), -10, places=3)
    with open(os.path.join(out, 'manifest.json')) as f:
      self.assertEqual(json.load(f), manifest)
    self.assertEqual(manifest['espeak_ng_version'], speech.espeak_version())
    entry = manifest['splits']['train']['clips'][2]
    self.assertEqual(entry['noise_kind'], 'babble')     # round-robin over the index
    self.assertEqual(entry['folder'], 'train/0002')
    for key in ('voice', 'rate_wpm', 'pitch', 'text', 'seed'):
      self.assertIn(key, entry['voice'])
    self.assertEqual(entry['snrs_db'], [10.0, 0.0, -10.0])

    # Resume: finished folders are kept (same inode), a removed one is remade
    # identically, and a leftover partial folder is cleaned up.
    keep = os.stat(os.path.join(out, 'train', '0000', 'voice.wav')).st_ino
    old, _ = sf.read(os.path.join(out, 'train', '0001', 'mix_snr_0.wav'))
    shutil.rmtree(os.path.join(out, 'train', '0001'))
    os.makedirs(os.path.join(out, 'train', '.0001.partial-dead'))
    speech.run(self._config(out), progress=False)
    self.assertEqual(os.stat(os.path.join(out, 'train', '0000', 'voice.wav')).st_ino, keep)
    # Same samples (the bytes differ: libsndfile stamps a PEAK chunk with the time).
    np.testing.assert_array_equal(
        sf.read(os.path.join(out, 'train', '0001', 'mix_snr_0.wav'))[0], old)
    self.assertEqual(sorted(os.listdir(os.path.join(out, 'train'))), ['0000', '0001', '0002'])

    # Other settings on the same folders: an error unless overwrite.
    with self.assertRaisesRegex(ParameterError, r"0000' was made with other settings"):
      speech.run(self._config(out, snrs_db=(5,)), progress=False)
    speech.run(self._config(out, snrs_db=(5,), overwrite=True), progress=False)
    self.assertEqual(speech.read_clip(os.path.join(out, 'test', '0000')).snrs_db, (5.0,))

  @requires_fluidsynth
  def test_instrument_noise(self):
    y, info = speech.make_noise('instrument', SR, seed=2)
    self.assertAlmostEqual(speech.rms(y), 1.0, places=5)
    self.assertIn(info['instrument'], ('piano', 'violin'))

  def test_script_makes_a_split(self):
    out = self.create_tempdir().full_path
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, 'make_speech_noise.py'), f'--out_dir={out}',
         '--splits=validation:2:1', '--duration_s=1', '--snrs_db=5,-5',
         '--noise_kinds=pink', '--n_workers=1'],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    clip = speech.read_clip(os.path.join(out, 'validation', '0000'))
    self.assertEqual(clip.snrs_db, (5.0, -5.0))
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, 'make_speech_noise.py'), f'--out_dir={out}',
         '--splits=validation:2', '--noise_kinds=pink'],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    self.assertEqual(proc.returncode, 1)
    self.assertIn("split 'validation:2' must be name:seed:n_clips", proc.stderr)


if __name__ == '__main__':
  absltest.main()
