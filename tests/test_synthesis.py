"""Separation by synthesis (issue 25): the encoder, its target, the decoder, the methods.

Networks are tiny (a few thousand parameters, most of them the per-frame projection of
the 1,025 bins); the voice is a harmonic tone with vibrato (a stand-in for a talker's
pitch track), the noise white.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from baselines import export, waveform_training
from common.errors import ParameterError
from evaluation import audio_metrics
from experiments import separators
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform
from synthesis import decoder, encoder
import synthesis.training  # pylint: disable=unused-import  (registers the two models)
from tests.test_baselines import write_music_split, write_speech_split

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
TINY = (('frame_channels', 8), ('hourglass_channels', [8, 8]), ('gru_units', 4),
        ('head_units', 8))


def _voice(n, seed=0, f0=140.0):
  """A harmonic tone (10 partials, 1/k amplitudes) with 5 Hz vibrato, float32 ``[n]``."""
  rng = np.random.default_rng(seed)
  t = np.arange(n) / RATE
  phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / RATE
  y = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 11))
  return (0.05 * y * np.hanning(n) ** 0.1).astype(np.float32)


def _config(target='mel'):
  return encoder.named_config('cpu', target=target, **dict(TINY))


class EncoderTest(tf.test.TestCase):

  def test_shapes_and_output_domain(self):
    for target, n_out in (('mel', 96), ('linear', 1025)):
      model = encoder.SynthesisEncoder(_config(target))
      x = tf.random.stateless_normal([2, 16000], seed=[1, 2]) * 0.05
      unit, gain = model.predict(x)
      self.assertEqual(unit.shape, (2, 1 + 16000 // 512, n_out))   # centred frames
      self.assertEqual(gain.shape, (2,))
      self.assertAllInRange(unit, 0.0, 1.0)
      out = model(x)
      self.assertEqual(out.shape, (2, 2, 16000))

  def test_untrained_encoder_returns_the_mixture_features(self):
    # The last layer starts at zero: the prediction is the mixture's own features.
    model = encoder.SynthesisEncoder(_config('mel'))
    x = tf.constant(_voice(16000)[None] + 0.01 * np.random.default_rng(0).normal(
        size=(1, 16000)).astype(np.float32))
    unit, gain = model.predict(x)
    expect = model.features.target(x * gain[:, None])
    self.assertAllClose(unit, tf.clip_by_value(expect, 0.0, 1.0), atol=1e-5)

  def test_target_is_the_priors_mel_of_the_clean_voice(self):
    config = _config('mel')
    # The same FeatureConfig as the shipped priors and the voice + noise patches.
    with open(os.path.join(ROOT, 'assets', 'priors', 'ncsn_piano', 'config.json')) as f:
      prior_features = json.load(f)['dataset']['features']
    self.assertEqual(config.feature_config, FeatureConfig(**prior_features))
    self.assertEqual(config.feature_config, FeatureConfig())
    voice = _voice(32640)
    model = encoder.SynthesisEncoder(config)
    target = model.features.target(tf.constant(voice[None]))
    t = MelTransform(FeatureConfig())
    priors = t.image_to_mel(t.waveform_to_unit(voice))          # [frames, 96] in [0, 1]
    self.assertAllClose(target[0], priors, atol=1e-6)
    # In the loss the target is the voice at the mixture's working level: a mixture
    # already at level_db has gain 1, so the target is the priors' mel of the voice.
    noise = 0.01 * np.random.default_rng(1).normal(size=32640).astype(np.float32)
    mix = voice + noise
    gain = 10 ** (config.level_db / 20) / np.sqrt(np.mean(mix.astype(np.float64) ** 2))
    scaled, g = encoder.normalise(tf.constant((mix * gain)[None]), config.level_db)
    self.assertAllClose(g, [1.0], atol=1e-5)
    self.assertAllClose(model.features.target(tf.constant((voice * gain)[None]))[0],
                        t.image_to_mel(t.waveform_to_unit(voice * gain)), atol=1e-6)

  def test_one_training_step_reaches_every_weight(self):
    model = encoder.SynthesisEncoder(_config('mel'))
    opt = tf.optimizers.Adam(1e-2)
    voice = _voice(16000)[None]
    noise = 0.02 * np.random.default_rng(0).normal(size=(1, 16000)).astype(np.float32)
    mix, src = tf.constant(voice + noise), tf.constant(np.stack([voice, noise], 1))
    losses = []
    for _ in range(3):   # the output layer starts at zero: the rest moves from step 2
      with tf.GradientTape() as tape:
        loss, metrics = encoder.feature_loss(model, mix, src)
      grads = tape.gradient(loss, model.trainable_variables)
      opt.apply_gradients(zip(grads, model.trainable_variables))
      losses.append(float(loss))
    self.assertIn('error_pct', metrics)
    for v, g in zip(model.trainable_variables, grads):
      self.assertIsNotNone(g, v.name)
      self.assertGreater(float(tf.reduce_max(tf.abs(g))), 0.0, v.name)
    self.assertLess(losses[-1], losses[0])

  def test_bad_config_is_one_line(self):
    with self.assertRaisesRegex(ParameterError, 'target must be one of'):
      encoder.named_config('cpu', target='wav')
    with self.assertRaisesRegex(ParameterError, 'unknown synthesis config'):
      encoder.named_config('gpu')
    with self.assertRaisesRegex(ParameterError, 'kernel must be odd'):
      encoder.named_config('cpu', kernel=4)
    with self.assertRaisesRegex(ParameterError, 'phase must be one of'):
      decoder.DecoderConfig(phase='misi')


class DecoderTest(tf.test.TestCase):

  def _true(self, target, n=32640):
    voice = _voice(n)
    noise = 0.03 * np.random.default_rng(3).normal(size=n).astype(np.float32)
    model = encoder.SynthesisEncoder(_config(target))
    mix = tf.constant((voice + noise)[None])
    scaled, gain = encoder.normalise(mix, model.config.level_db)
    unit = model.features.target(tf.constant(voice[None]) * gain[:, None])
    return model, voice, mix, scaled, gain, unit

  def test_b1_with_the_true_magnitude_reconstructs_the_voice(self):
    model, voice, _, scaled, gain, unit = self._true('linear')
    config = decoder.DecoderConfig(n_iter=32)
    mags = decoder.magnitude(model, unit, config)
    est = decoder.voice_from_magnitude(model, mags, scaled, config) / gain[:, None]
    # Measured 23.9 dB (fast Griffin-Lim from the mixture's phase, 32 iterations, the
    # input SNR about 0 dB); the bound leaves room for other CPUs' rounding.
    self.assertGreater(float(audio_metrics.si_sdr(est.numpy()[0], voice)), 15.0)
    # From a random phase (the paper's Griffin-Lim) the waveform is another one.
    rnd = decoder.DecoderConfig(n_iter=32, init='random')
    est = decoder.voice_from_magnitude(model, mags, scaled, rnd) / gain[:, None]
    self.assertLess(float(audio_metrics.si_sdr(est.numpy()[0], voice)), 10.0)

  def test_mel_with_the_true_features_speaks_the_voice(self):
    model, voice, _, scaled, gain, unit = self._true('mel')
    config = decoder.DecoderConfig()   # the refiner on the mixture's phase
    mags = decoder.magnitude(model, unit, config)     # the shipped refiner
    est = decoder.voice_from_magnitude(model, mags, scaled, config) / gain[:, None]
    # Measured 9.7 dB (a test-split voice: 9.9): 96 mel bands lose the harmonics'
    # fine structure, which the refiner guesses.
    self.assertGreater(float(audio_metrics.si_sdr(est.numpy()[0], voice)), 7.0)

  def test_noise_is_the_mixture_minus_the_voice(self):
    model = encoder.SynthesisEncoder(_config('mel'))
    x = tf.constant(_voice(12000)[None] + 0.01)
    out = decoder.separate(model, x, decoder.DecoderConfig(n_iter=4)).numpy()
    self.assertAllClose(out[:, 0] + out[:, 1], x.numpy(), atol=1e-6)


def _export(tmp, target):
  net = _config(target)
  model = encoder.SynthesisEncoder(net)
  return export.write(os.path.join(tmp, target), method=net.method, task='speech-noise',
                      sources=('voice', 'noise'), sample_rate=RATE,
                      network=dict(net.__dict__), model=model, training={})


class MethodTest(tf.test.TestCase):

  def test_registered_methods_separate_a_short_clip(self):
    tmp = self.create_tempdir().full_path
    y = (_voice(11025 * 3 // 2, f0=180.0) +
         0.01 * np.random.default_rng(0).normal(size=11025 * 3 // 2)).astype(np.float32)
    for target in encoder.TARGETS:
      folder = _export(tmp, target)
      method = encoder.METHODS[target]
      self.assertIn(method, separators.methods())
      sep = separators.load_separator(model_dir=folder, task='speech-noise', n_iter=4)
      self.assertEqual(sep.sources, ('voice', 'noise'))
      est = sep.separate(y, 11025)                     # another rate: the seam resamples
      for name in sep.sources:
        self.assertEqual(est[name].shape, y.shape)
        self.assertTrue(np.all(np.isfinite(est[name])))
      # noise = mixture - voice (up to the seam's resampling there and back)
      self.assertLess(np.sum((est['voice'] + est['noise'] - y) ** 2), 1e-3 * np.sum(y ** 2))
      again = separators.load_separator(method, model_dir=folder, n_iter=4)
      self.assertEqual(again.model.identity(), sep.model.identity())

  def test_bad_options_and_folders_are_one_line(self):
    tmp = self.create_tempdir().full_path
    folder = _export(tmp, 'mel')
    with self.assertRaisesRegex(ParameterError, 'unknown synthesis options'):
      separators.load_separator(model_dir=folder, output='wiener')
    with self.assertRaisesRegex(ParameterError, 'holds a synthesis model, not synthesis-linear'):
      separators.load_separator('synthesis-linear', model_dir=folder)
    os.remove(os.path.join(folder, 'weights.index'))
    with self.assertRaisesRegex(ParameterError, 'has no weights'):
      separators.load_separator(model_dir=folder)


def _train_config(tmp, model='synthesis', **kw):
  args = dict(model=model, task='speech-noise', workdir=os.path.join(tmp, 'run'),
              train_dir=kw.pop('train_dir', None), valid_dir=kw.pop('valid_dir', None),
              network=TINY, batch_size=2, checkpoint_every=1, eval_every=1, log_every=1,
              val_clips=1, progress=False)
  args.update(kw)
  return waveform_training.SeparatorTrainConfig(**args)


@pytest.mark.slow   # the training loop (with the refiner in the export's scoring): 20-40 s
class TrainingTest(tf.test.TestCase):

  def test_train_export_load_separate(self):
    tmp = self.create_tempdir().full_path
    train = write_speech_split(os.path.join(tmp, 'train'))
    valid = write_speech_split(os.path.join(tmp, 'valid'), n_clips=1)
    final = waveform_training.run(_train_config(
        tmp, 'synthesis-linear', train_dir=train, valid_dir=valid, steps=2,
        export_dir=os.path.join(tmp, 'export')))
    self.assertEqual(final['step'], 2)
    self.assertEqual(len(final['export']['validation']['checkpoints']), 2)
    with open(os.path.join(tmp, 'export', 'separator.json')) as f:
      self.assertEqual(json.load(f)['method'], 'synthesis-linear')
    sep = separators.load_separator(model_dir=os.path.join(tmp, 'export'), n_iter=2)
    est = sep.separate(np.zeros(4000, np.float32) + 0.01, RATE)
    self.assertEqual(est['voice'].shape, (4000,))

  def test_resume_and_bad_inputs(self):
    tmp = self.create_tempdir().full_path
    train = write_speech_split(os.path.join(tmp, 'train'))
    # Resume: a second run of the same command goes on from the checkpoint.
    waveform_training.run(_train_config(tmp, train_dir=train, valid_dir=train, steps=1))
    final = waveform_training.run(_train_config(tmp, train_dir=train, valid_dir=train,
                                                steps=3))
    self.assertEqual(final['step'], 3)
    # Another network in the same workdir is refused.
    with self.assertRaisesRegex(ParameterError, 'different configuration'):
      waveform_training.run(_train_config(tmp, 'synthesis-linear', train_dir=train,
                                          valid_dir=train, steps=4))
    # A missing data folder, and a folder of another layout (piano + violin).
    with self.assertRaisesRegex(ParameterError, 'nowhere'):
      waveform_training.run(_train_config(tmp, train_dir=os.path.join(tmp, 'nowhere'),
                                          valid_dir=train, workdir=os.path.join(tmp, 'r2')))
    music = write_music_split(os.path.join(tmp, 'music'))
    with self.assertRaisesRegex(ParameterError, 'music'):
      waveform_training.run(_train_config(tmp, train_dir=music, valid_dir=train,
                                          workdir=os.path.join(tmp, 'r3')))
    # The synthesis encoders train on voice + noise only.
    with self.assertRaisesRegex(ParameterError, 'trains on --task'):
      _train_config(tmp, task='piano-violin', train_dir=music, valid_dir=music)
    # An export folder holding other files is refused before any training.
    os.makedirs(os.path.join(tmp, 'mine'))
    with open(os.path.join(tmp, 'mine', 'notes.txt'), 'w') as f:
      f.write('mine')
    with self.assertRaisesRegex(ParameterError, 'holds other files'):
      waveform_training.run(_train_config(tmp, train_dir=train, valid_dir=train, steps=5,
                                          export_dir=os.path.join(tmp, 'mine')))
    self.assertEqual(os.listdir(os.path.join(tmp, 'mine')), ['notes.txt'])

  def test_cli_missing_data_is_one_line_exit_2(self):
    tmp = self.create_tempdir().full_path
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_separator.py'), '--model=synthesis',
         '--task=speech-noise', f'--workdir={tmp}/run', f'--train_dir={tmp}/nowhere',
         f'--valid_dir={tmp}/nowhere', '--steps=1'],
        capture_output=True, text=True, cwd=ROOT, timeout=180)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if 'nowhere' in l]
    self.assertLen(lines, 1, proc.stderr)


if __name__ == '__main__':
  tf.test.main()
