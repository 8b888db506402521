"""The discriminative separators: losses, Conv-TasNet, the Jansson U-Net, training, export.

Networks are tiny (a few hundred parameters) and the data sets are written
here: two clips of tones + noise in the voice + noise layout and in the
piano + violin render layout, 16 kHz, 0.5 s.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from absl.testing import parameterized

from baselines import convtasnet, export, separation_losses, unet, waveform_training
from common.errors import ParameterError
from evaluation import audio_metrics
from experiments import separators

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 16000
TINY_UNET = (('channels', [2, 2, 2, 2, 2, 2]), ('n_fft', 128), ('hop_length', 32),
             ('patch_frames', 64))
TINY_TASNET = (('n_filters', 16), ('filter_length', 8), ('bottleneck', 4), ('hidden', 8),
               ('skip', 4), ('blocks', 2), ('repeats', 1))


def _tones(n, seed):
  rng = np.random.default_rng(seed)
  t = np.arange(n) / RATE
  a = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 400) * t)
  b = 0.1 * rng.normal(size=n)
  return a.astype(np.float32), b.astype(np.float32)


def write_speech_split(folder, n_clips=2, n=8000):
  for i in range(n_clips):
    clip = os.path.join(folder, f'{i:04d}')
    os.makedirs(clip)
    voice, noise = _tones(n, i)
    sf.write(os.path.join(clip, 'voice.wav'), voice, RATE, subtype='FLOAT')
    sf.write(os.path.join(clip, 'noise.wav'), noise, RATE, subtype='FLOAT')
    sf.write(os.path.join(clip, 'mix_snr_0.wav'), voice + noise, RATE, subtype='FLOAT')
  return folder


def write_music_split(folder, n_clips=2, n=8000):
  for i in range(n_clips):
    piano, violin = _tones(n, 10 + i)
    for name, y in (('piano', piano), ('violin', violin), ('mixture', piano + violin)):
      os.makedirs(os.path.join(folder, name), exist_ok=True)
      sf.write(os.path.join(folder, name, f'{i:05d}.wav'), y, RATE, subtype='FLOAT')
  return folder


class LossTest(tf.test.TestCase):

  def test_si_snr_matches_numpy_metric(self):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3, 2, 400)).astype(np.float32)
    est = (0.7 * ref + 0.3 * rng.normal(size=ref.shape)).astype(np.float32)
    got = separation_losses.si_snr(tf.constant(est), tf.constant(ref)).numpy()
    # eps 1e-8 on energies of ~400: far below float32 noise at these levels.
    self.assertAllClose(got, audio_metrics.si_snr(est, ref), atol=1e-3)

  def test_pit_picks_the_swapped_permutation(self):
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(2, 2, 300)).astype(np.float32)
    est = ref + 0.1 * rng.normal(size=ref.shape).astype(np.float32)
    est = est.copy()
    est[1] = est[1, ::-1]                  # example 1: outputs swapped
    best, index, means = separation_losses.pit_scores(tf.constant(est), tf.constant(ref))
    self.assertAllEqual(index, [0, 1])
    ordered = separation_losses.apply_permutation(tf.constant(est), index).numpy()
    self.assertAllClose(ordered[1], est[1, ::-1])
    fixed = separation_losses.si_snr(tf.constant(ordered), tf.constant(ref)).numpy().mean(1)
    self.assertAllClose(best, fixed, atol=1e-4)
    self.assertGreater(float(means[1, 1]), float(means[1, 0]) + 10.0)
    loss, metrics = separation_losses.separation_loss('pit_si_snr', tf.constant(est),
                                                      tf.constant(ref))
    self.assertAllClose(loss, -np.mean(fixed), atol=1e-4)
    self.assertIn('snr', metrics)

  def test_unknown_loss_is_named(self):
    with self.assertRaisesRegex(ParameterError, "got 'l2'"):
      separation_losses.separation_loss('l2', tf.zeros([1, 2, 4]), tf.zeros([1, 2, 4]))


class ConvTasNetTest(tf.test.TestCase, parameterized.TestCase):

  def test_paper_configs_have_the_published_sizes(self):
    # 5.05 M (L = 16) and 1.47 M (L = 40) parameters (Luo & Mesgarani 2019) with the
    # last block's unused residual 1x1 conv (B * H + B), which is left out here.
    for name, published in (('paper', 5050545), ('paper-small', 1472157)):
      c = convtasnet.CONFIGS[name]
      n = convtasnet.num_parameters(convtasnet.ConvTasNet(c))
      self.assertEqual(n + c.hidden * c.bottleneck + c.bottleneck, published)

  @parameterized.parameters(1, 37, 1601)
  def test_encoder_decoder_reconstruct_the_input_with_mask_one(self, n):
    model = convtasnet.ConvTasNet(convtasnet.named_config('cpu', **dict(TINY_TASNET)))
    x = tf.random.stateless_normal([2, n], [0, n])
    w, length = model.encode(x)
    # float32 rounding through two small matmuls and an overlap-add.
    self.assertAllClose(model.decode(w, length), x, atol=1e-5)
    self.assertAllClose(model.decode(w[:, None] * tf.ones([1, 2, 1, 1]), length),
                        tf.stack([x, x], 1), atol=1e-5)

  def test_shapes_and_mask_range(self):
    model = convtasnet.ConvTasNet(convtasnet.named_config('cpu', **dict(TINY_TASNET)))
    x = tf.random.stateless_normal([3, 555], [1, 2])
    self.assertEqual(model(x).shape, (3, 2, 555))
    m = model.masks(model.encode(x)[0])
    self.assertEqual(m.shape[:2], (3, 2))
    self.assertAllInRange(m, 0.0, 1.0)

  def test_one_training_step_reaches_every_weight(self):
    model = convtasnet.ConvTasNet(convtasnet.named_config('cpu', **dict(TINY_TASNET)))
    src = tf.random.stateless_normal([2, 2, 800], [5, 6])
    with tf.GradientTape() as tape:
      loss, _ = separation_losses.separation_loss('pit_si_snr', model(tf.reduce_sum(src, 1)),
                                                  src)
    grads = tape.gradient(loss, model.trainable_variables)
    self.assertTrue(all(g is not None and np.all(np.isfinite(g)) for g in grads))

  def test_bad_config_is_one_line(self):
    with self.assertRaisesRegex(ParameterError, 'filter_length must be even'):
      convtasnet.named_config('cpu', filter_length=15)
    with self.assertRaisesRegex(ParameterError, "unknown convtasnet config 'big'"):
      convtasnet.named_config('big')
    with self.assertRaisesRegex(ParameterError, r"unknown network settings \['width'\]"):
      convtasnet.named_config('cpu', width=3)


class UNetTest(tf.test.TestCase, parameterized.TestCase):

  def _tiny(self, **kw):
    return unet.UNet(unet.named_config('cpu', **dict(TINY_UNET, **kw)))

  def test_paper_config_size(self):
    # Six 5x5 convs 1->16->...->512 and six transposed convs with skips.
    self.assertEqual(unet.num_parameters(unet.UNet(unet.CONFIGS['paper'])), 9824114)

  @parameterized.parameters(5, 999, 4000)
  def test_mask_of_ones_returns_the_mixture(self, n):
    model = self._tiny()
    x = tf.random.stateless_normal([2, n], [3, n])
    spec, mag, _ = model.analyse(x)
    ones = tf.ones([2, 2, model.config.n_bins, spec.shape[1]])
    y = unet.istft(model.config, model.separate_spec(spec, ones, 'mixture'), n)
    self.assertAllClose(y, tf.stack([x, x], 1), atol=1e-5)   # float32 STFT round trip

  def test_masks_in_unit_range_and_shapes(self):
    model = self._tiny()
    x = tf.random.stateless_normal([2, 3000], [4, 5])
    _, mag, _ = model.analyse(x)
    for training in (True, False):
      m = model.masks(mag, training=training, seed=tf.constant([1, 2]))
      self.assertEqual(m.shape, (2, 2) + tuple(mag.shape[1:]))
      self.assertAllInRange(m, 0.0, 1.0)
    self.assertEqual(model(x).shape, (2, 2, 3000))

  def test_one_training_step_reaches_every_weight(self):
    model = self._tiny()
    src = tf.random.stateless_normal([2, 2, model.config.patch_samples], [8, 9])
    with tf.GradientTape() as tape:
      loss, _ = unet.l1_loss(model, tf.reduce_sum(src, 1), src, training=True,
                             seed=tf.constant([1, 2]))
    grads = tape.gradient(loss, model.trainable_variables)
    self.assertTrue(all(g is not None and np.all(np.isfinite(g)) for g in grads))
    moving = model.enc_bn[0].moving_mean.numpy()
    self.assertGreater(np.abs(moving).max(), 0.0)      # batch statistics were tracked

  def test_wiener_estimates_sum_to_the_mixture(self):
    model = self._tiny(output='wiener')
    x = tf.random.stateless_normal([1, 2000], [6, 7])
    y = model(x)
    self.assertAllClose(tf.reduce_sum(y, 1), x, atol=1e-4)

  def test_bad_config_is_one_line(self):
    with self.assertRaisesRegex(ParameterError, 'n_fft must be a multiple of 128'):
      unet.named_config('cpu', n_fft=1000)
    with self.assertRaisesRegex(ParameterError, 'channels must be 6'):
      unet.named_config('cpu', channels=[4, 4])


@pytest.mark.slow   # the training loop and an export per test: 10-30 s each on 2 cores
class TrainingTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('unet', 'speech-noise'), ('convtasnet', 'speech-noise'),
                            ('unet', 'piano-violin'), ('convtasnet', 'piano-violin'))
  def test_train_export_load_separate(self, model, task):
    tmp = self.create_tempdir().full_path
    write = write_speech_split if task == 'speech-noise' else write_music_split
    train = write(os.path.join(tmp, 'train'))
    valid = write(os.path.join(tmp, 'valid'), n_clips=1)
    config = waveform_training.SeparatorTrainConfig(
        model=model, task=task, workdir=os.path.join(tmp, 'run'), train_dir=train,
        valid_dir=valid, export_dir=os.path.join(tmp, 'export'),
        network=TINY_UNET if model == 'unet' else TINY_TASNET, steps=2, batch_size=2,
        segment_s=0.1, checkpoint_every=1, eval_every=1, log_every=1, val_clips=1,
        progress=False)
    final = waveform_training.run(config)
    self.assertEqual(final['step'], 2)
    record = final['export']
    self.assertEqual(len(record['validation']['checkpoints']), 2)
    with open(os.path.join(tmp, 'export', 'separator.json')) as f:
      doc = json.load(f)
    self.assertEqual(doc['method'], model)
    self.assertEqual(doc['task'], task)
    self.assertEqual(doc['sample_rate'], RATE)
    self.assertEqual(tuple(doc['sources']), waveform_training.TASK_SOURCES[task])
    sep = separators.load_separator(model_dir=os.path.join(tmp, 'export'), task=task,
                                    chunk_s=0.25, overlap_s=0.05)
    self.assertEqual(sep.sources, waveform_training.TASK_SOURCES[task])
    y = np.random.default_rng(0).normal(size=12345).astype(np.float32) * 0.1
    est = sep.separate(y, 22050)                       # another rate, several chunks
    for name in sep.sources:
      self.assertEqual(est[name].shape, y.shape)
      self.assertTrue(np.all(np.isfinite(est[name])))
    if model == 'convtasnet':   # scale-invariant: the seam fits the sum to the mixture
      total = sum(est.values())
      self.assertLess(np.sum((total - y) ** 2), np.sum(y ** 2))
    # Round trip: the loaded network is the exported one.
    again = separators.load_separator(model, model_dir=os.path.join(tmp, 'export'))
    self.assertEqual(again.model.identity(), sep.model.identity())

  def test_resume_continues_and_bad_data_is_named(self):
    tmp = self.create_tempdir().full_path
    train = write_speech_split(os.path.join(tmp, 'train'))
    kw = dict(model='convtasnet', task='speech-noise', workdir=os.path.join(tmp, 'run'),
              train_dir=train, valid_dir=train, network=TINY_TASNET, batch_size=2,
              segment_s=0.1, checkpoint_every=1, eval_every=5, log_every=1, progress=False)
    waveform_training.run(waveform_training.SeparatorTrainConfig(steps=1, **kw))
    final = waveform_training.run(waveform_training.SeparatorTrainConfig(steps=3, **kw))
    self.assertEqual(final['step'], 3)
    with self.assertRaisesRegex(ParameterError, 'has no piano/ folder'):
      waveform_training.list_examples(train, 'piano-violin')


class ExportErrorTest(tf.test.TestCase):

  def _export(self, tmp):
    net = convtasnet.named_config('cpu', **dict(TINY_TASNET))
    return export.write(os.path.join(tmp, 'm'), method='convtasnet', task='speech-noise',
                        sources=('voice', 'noise'), sample_rate=RATE,
                        network=dict(net.__dict__), model=convtasnet.ConvTasNet(net),
                        training={})

  def test_bad_export_folders_are_one_line_errors(self):
    tmp = self.create_tempdir().full_path
    folder = self._export(tmp)
    self.assertIsNotNone(convtasnet.load(folder))
    cases = []
    with self.assertRaisesRegex(ParameterError, 'describes a .convtasnet. model, not .unet.'):
      unet.load(folder)
    os.remove(os.path.join(folder, 'weights.index'))
    with self.assertRaisesRegex(ParameterError, 'has no weights') as ctx:
      convtasnet.load(folder)
    cases.append(ctx.exception)
    folder = self._export(tmp)
    with open(os.path.join(folder, 'config.json'), 'w') as f:
      f.write('{"model": "convtasnet", ')
    with self.assertRaisesRegex(ParameterError, 'is not readable json') as ctx:
      convtasnet.load(folder)
    cases.append(ctx.exception)
    folder = self._export(tmp)
    data = [n for n in os.listdir(folder) if n.startswith('weights.data')][0]
    with open(os.path.join(folder, data), 'wb') as f:
      f.write(b'\0' * 10)
    with self.assertRaisesRegex(ParameterError, 'cannot load the weights') as ctx:
      convtasnet.load(folder)
    cases.append(ctx.exception)
    with self.assertRaisesRegex(ParameterError, 'does not exist') as ctx:
      convtasnet.load(os.path.join(tmp, 'nowhere'))
    cases.append(ctx.exception)
    for e in cases:
      self.assertNotIn('\n', str(e))

  def test_export_refuses_a_folder_of_other_files(self):
    tmp = self.create_tempdir().full_path
    os.makedirs(os.path.join(tmp, 'm'))
    with open(os.path.join(tmp, 'm', 'notes.txt'), 'w') as f:
      f.write('mine')
    with self.assertRaisesRegex(ParameterError, 'holds other files'):
      self._export(tmp)

  @pytest.mark.slow   # a separate_audio.py process: TensorFlow's start-up
  def test_cli_bad_model_dir_is_one_line_exit_2(self):
    tmp = self.create_tempdir().full_path
    folder = os.path.join(tmp, 'm')
    os.makedirs(folder)
    with open(os.path.join(folder, 'separator.json'), 'w') as f:
      json.dump({'method': 'unet', 'task': 'speech-noise'}, f)
    wav = os.path.join(tmp, 'in.wav')
    sf.write(wav, np.zeros(1600, np.float32) + 0.1, RATE)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'separate_audio.py'), f'--input={wav}',
         f'--out_dir={tmp}/out', f'--model_dir={folder}'],
        capture_output=True, text=True, cwd=ROOT, timeout=120)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if 'has no config.json' in l]
    self.assertLen(lines, 1, proc.stderr)


if __name__ == '__main__':
  tf.test.main()
