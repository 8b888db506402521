"""The neural vocoder (inversion/vocoder.py, train_vocoder.py).

Tiny networks (16 channels) on a few short synthetic clips written by the
tests; the shipped vocoder only for the tone test (it must keep the pitch of a
pure tone). The command-line errors run the script in subprocesses (slow).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from common.errors import ParameterError
from inversion import vocoder
from pipeline.config import FeatureConfig
from pipeline.transforms import MelTransform
from training import optim

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
TINY = vocoder.VocoderConfig(channels=16, stack_layers=1)


def _voiceish(seconds, f0, seed):
  """A harmonic tone with a slow vibrato and an amplitude envelope, float32 ``[n]``."""
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * SR)) / SR
  f = f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))
  ph = 2 * np.pi * np.cumsum(f) / SR
  y = sum(np.sin(k * ph) / k for k in range(1, 6))
  env = 0.5 + 0.5 * np.sin(2 * np.pi * 1.5 * t + rng.uniform(0, 6)) ** 2
  return (0.05 * env * y).astype(np.float32)


def _write_clips(folder, n=3, seconds=1.2):
  for i in range(n):
    os.makedirs(os.path.join(folder, f'{i:04d}'))
    sf.write(os.path.join(folder, f'{i:04d}', 'voice.wav'), _voiceish(seconds, 120 + 40 * i, i),
             SR)


def _train_config(root, **kw):
  args = dict(workdir=os.path.join(root, 'run'), train_data=(os.path.join(root, 'data'),),
              network=TINY, steps=2, batch_size=2, segment_frames=4, eval_every=2,
              checkpoint_every=2, log_every=1, progress=False)
  args.update(kw)
  return vocoder.VocoderTrainConfig(**args)


def _dominant_hz(y):
  y = y * np.hanning(y.size)
  spec = np.abs(np.fft.rfft(y, 8 * y.size))
  return np.argmax(spec) * SR / (8 * y.size)


class VocoderNetworkTest(tf.test.TestCase):

  def test_default_config_shapes_and_parameter_count(self):
    model = vocoder.Vocoder()
    # Multi-band MelGAN at 384 channels, rates 4 x 4 x 8 x 4 bands = hop 512.
    self.assertEqual(vocoder.num_parameters(model), 2_042_836)
    mel = tf.fill([2, 5, 96], 1e-3)
    self.assertEqual(model(mel).shape, (2, 5 * 512))
    self.assertEqual(model.sub_bands(mel).shape, (2, 5 * 128, 4))

  def test_hifigan_v2_parameter_count(self):
    model = vocoder.Vocoder(vocoder.VocoderConfig.hifigan_v2())
    self.assertEqual(vocoder.num_parameters(model), 942_369)
    self.assertEqual(model(tf.fill([1, 3, 96], 1e-3)).shape, (1, 3 * 512))

  def test_pqmf_analysis_synthesis_reconstructs(self):
    pqmf = vocoder.PQMF()
    x = tf.random.stateless_normal([2, 4096], [1, 2])
    y = pqmf.synthesis(pqmf.analysis(x))
    err = tf.norm(y[:, 64:-64] - x[:, 64:-64]) / tf.norm(x[:, 64:-64])
    self.assertLess(float(err), 0.01)   # measured 6e-4 (-64 dB)

  def test_dilated_conv_paths_agree_and_have_gradients(self):
    conv = vocoder.Conv1D(4, 5, 3, dilation=9, seed=3)
    x = tf.random.stateless_normal([2, 40, 4], [5, 6])
    outs = []
    from common import compute  # pylint: disable=g-import-not-at-top
    for native in (True, False):
      if native and not compute.onednn_enabled():   # no native dilated gradient there
        continue
      old, vocoder.NATIVE_DILATION = vocoder.NATIVE_DILATION, native
      try:
        with tf.GradientTape() as tape:
          y = conv(x)
          loss = tf.reduce_sum(y ** 2)
        grad = tape.gradient(loss, conv.w)
        self.assertIsNotNone(grad)
        outs.append(y)
      finally:
        vocoder.NATIVE_DILATION = old
    self.assertEqual(outs[-1].shape, (2, 40, 5))
    if len(outs) == 2:   # oneDNN on: both paths ran
      self.assertAllClose(outs[0], outs[1], atol=1e-5)   # float32 rounding

  def test_raises_on_hop_mismatch_and_wrong_band_count(self):
    with self.assertRaisesRegex(ParameterError, 'hop_length 512'):
      vocoder.VocoderConfig(upsample_rates=(4, 4, 4))
    with self.assertRaisesRegex(ParameterError, r'\[batch, n_frames, 96\]'):
      vocoder.Vocoder(TINY)(tf.zeros([1, 4, 80]))

  def test_training_step_lowers_loss_and_changes_weights(self):
    model = vocoder.Vocoder(TINY)
    t = MelTransform(FeatureConfig())
    y = np.stack([_voiceish(8 * 512 / SR, 150, 0), _voiceish(8 * 512 / SR, 210, 1)])
    mel = t.spectrogram_to_mel(t.spectrogram(tf.constant(y)))[:, :8]
    wav = tf.constant(y)
    opt = optim.Adam(model.trainable_variables, optim.OptimizerConfig(learning_rate=3e-3))
    before = [v.numpy().copy() for v in model.trainable_variables]

    @tf.function
    def step():
      with tf.GradientTape() as tape:
        loss, _ = vocoder.vocoder_loss(model, mel, wav)
      opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                              model.trainable_variables))
      return loss

    losses = [float(step()) for _ in range(6)]
    self.assertLess(losses[-1], losses[0])
    changed = sum(not np.array_equal(a, v.numpy())
                  for a, v in zip(before, model.trainable_variables))
    self.assertEqual(changed, len(before))

  def test_export_load_roundtrip_gives_identical_output(self):
    root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, root)
    model = vocoder.Vocoder(TINY)
    out_dir = os.path.join(root, 'voc')
    vocoder.export_vocoder(out_dir, model, {'note': 'test'})
    loaded, meta = vocoder.load_vocoder(out_dir, features=FeatureConfig())
    self.assertEqual(meta['num_parameters'], vocoder.num_parameters(model))
    mel = tf.random.stateless_uniform([1, 6, 96], [3, 4], 1e-6, 1e-2)
    self.assertAllEqual(model(mel), loaded(mel))
    y = vocoder.mel_to_waveform(mel[0], vocoder=out_dir, length=3000)
    self.assertEqual(y.shape, (3000,))
    self.assertAllEqual(y, loaded.compiled()(mel)[0, :3000])   # the same compiled function

  def test_load_refuses_other_features_and_other_kinds(self):
    root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, root)
    out_dir = os.path.join(root, 'voc')
    vocoder.export_vocoder(out_dir, vocoder.Vocoder(TINY), {})
    other = FeatureConfig(n_mels=80, fmin=0.0, fmax=8000.0)
    with self.assertRaisesRegex(ParameterError, 'other mel features'):
      vocoder.load_vocoder(out_dir, features=other)
    with open(os.path.join(out_dir, 'config.json')) as f:
      meta = json.load(f)
    meta['kind'] = 'refiner'
    with open(os.path.join(out_dir, 'config.json'), 'w') as f:
      json.dump(meta, f)
    with self.assertRaisesRegex(ParameterError, 'not a vocoder'):
      vocoder.load_vocoder(out_dir)


class SynthesisDecoderOptionTest(tf.test.TestCase):

  def test_synthesis_decoder_vocoder_speaks_the_predicted_mel(self):
    from synthesis import decoder, encoder  # pylint: disable=g-import-not-at-top
    root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, root)
    folder = os.path.join(root, 'voc')
    vocoder.export_vocoder(folder, vocoder.Vocoder(TINY), {})
    model = encoder.SynthesisEncoder(encoder.named_config('cpu', target='mel'))
    config = decoder.DecoderConfig(decoder='vocoder', vocoder=folder)
    mixture = _voiceish(0.5, 180, 0)[None]
    out = decoder.separate(model, mixture, config)
    self.assertEqual(out.shape, (1, 2, mixture.shape[1]))
    self.assertAllClose(out[:, 0] + out[:, 1], mixture, atol=1e-6)   # noise = mixture - voice
    linear = encoder.SynthesisEncoder(encoder.named_config('cpu', target='linear'))
    with self.assertRaisesRegex(ParameterError, 'decoder=vocoder speaks a mel target'):
      decoder.separate(linear, mixture, config)
    with self.assertRaisesRegex(ParameterError, 'decoder must be one of'):
      decoder.DecoderConfig(decoder='wavenet')


class ShippedVocoderTest(tf.test.TestCase):

  # Issue 25 item 5. The shipped vocoder (about 70 min of CPU training, no discriminator)
  # does not pass: it answers a pure tone with near silence (output RMS 1-2 % of the
  # tone's, the strongest bin a 4 kHz sub-band artefact), also after 150 synthetic tone
  # clips were added to its data (docs/vocoder.md). Strict: a vocoder that passes turns
  # this into a failure, so whoever ships a better one must drop the marker (issue 25).
  @pytest.mark.xfail(reason='the shipped vocoder renders pure tones as near silence '
                            '(docs/vocoder.md)', strict=True)
  def test_shipped_vocoder_keeps_the_pitch_of_a_tone(self):
    t = MelTransform(FeatureConfig())
    for f0 in (220.0, 440.0):
      tone = (0.05 * np.sin(2 * np.pi * f0 * np.arange(2 * SR) / SR)).astype(np.float32)
      mel = t.spectrogram_to_mel(t.spectrogram(tf.constant(tone)))
      y = vocoder.mel_to_waveform(mel, length=tone.size).numpy()
      got = _dominant_hz(y[4096:-4096])   # away from the edges' padding
      self.assertAllClose(got, f0, rtol=0.03, msg=f'tone {f0} Hz came back at {got:.1f} Hz')


class VocoderTrainingTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.root)
    _write_clips(os.path.join(self.root, 'data'))

  @pytest.mark.slow   # two runs and an export: ~16 s on a loaded 2-core machine
  def test_resume_continues_from_the_last_checkpoint(self):
    vocoder.train(_train_config(self.root, steps=2))
    ckpts = os.path.join(self.root, 'run', 'checkpoints')
    self.assertEndsWith(tf.train.latest_checkpoint(ckpts), 'ckpt-2')
    final = vocoder.train(_train_config(self.root, steps=4))
    self.assertEqual(final['step'], 4)
    self.assertEndsWith(tf.train.latest_checkpoint(ckpts), 'ckpt-4')
    export = os.path.join(self.root, 'export')
    vocoder.export_run(os.path.join(self.root, 'run'), export, TINY)
    _, meta = vocoder.load_vocoder(export)
    self.assertEqual(meta['step'], 4)

  def test_bad_data_errors_name_the_flag(self):
    with self.assertRaisesRegex(ParameterError, '--train_data: .* does not exist'):
      vocoder.train(_train_config(self.root, train_data=(os.path.join(self.root, 'no'),)))
    os.makedirs(os.path.join(self.root, 'empty'))
    with self.assertRaisesRegex(ParameterError, '--train_data=.*empty.* without wav'):
      vocoder.train(_train_config(self.root, train_data=(os.path.join(self.root, 'empty'),)))
    record = os.path.join(self.root, 'mel.tfrecord')
    with tf.io.TFRecordWriter(record) as w:
      ex = tf.train.Example(features=tf.train.Features(feature={
          'patch': tf.train.Feature(float_list=tf.train.FloatList(value=[0.1, 0.2]))}))
      w.write(ex.SerializeToString())
    with self.assertRaisesRegex(ParameterError, "--train_data: .* features \\['patch'\\]"):
      vocoder.train(_train_config(self.root, train_data=(record,)))
    self.assertFalse(os.path.exists(os.path.join(self.root, 'run', 'config.json')))

  def test_waveform_tfrecords_train(self):
    record = os.path.join(self.root, 'wave.tfrecord')
    with tf.io.TFRecordWriter(record) as w:
      for i in range(2):
        ex = tf.train.Example(features=tf.train.Features(feature={
            'waveform': tf.train.Feature(float_list=tf.train.FloatList(
                value=_voiceish(0.8, 150 + 50 * i, i))),
            'sample_rate': tf.train.Feature(int64_list=tf.train.Int64List(value=[SR]))}))
        w.write(ex.SerializeToString())
    final = vocoder.train(_train_config(self.root, train_data=(record,), steps=1))
    self.assertEqual(final['step'], 1)

  def test_init_of_another_network_is_refused(self):
    other = os.path.join(self.root, 'other')
    vocoder.export_vocoder(other, vocoder.Vocoder(
        vocoder.VocoderConfig(channels=32, stack_layers=1)), {})
    with self.assertRaisesRegex(ParameterError, '--init=.* another vocoder network'):
      vocoder.train(_train_config(self.root, init=other))


def _run_script(*flags):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  return subprocess.run([sys.executable, os.path.join(REPO, 'train_vocoder.py'), *flags],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
class TrainVocoderScriptTest(tf.test.TestCase):
  """Bad input gives one line on stderr naming an existing flag, exit status 2."""

  def setUp(self):
    super().setUp()
    self.root = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.root)

  def _assert_one_line(self, proc, pattern):
    self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    self.assertLen(lines, 1, proc.stderr[-2000:])
    self.assertRegex(lines[0], pattern)

  def test_missing_data_dir(self):
    proc = _run_script(f'--workdir={self.root}/run', f'--train_data={self.root}/none')
    self._assert_one_line(proc, r'^train_vocoder: error: --train_data: .* does not exist')

  def test_wrong_schema_tfrecord(self):
    record = os.path.join(self.root, 'x.tfrecord')
    with tf.io.TFRecordWriter(record) as w:
      w.write(b'not a proto at all \xff\xfe')
    # Valid evaluation clips of its own: the default --eval_data is local data a clean
    # clone does not have (its error would come first).
    clips = os.path.join(self.root, 'clips')
    _write_clips(clips, n=2, seconds=0.8)
    proc = _run_script(f'--workdir={self.root}/run', f'--train_data={record}',
                       f'--eval_data={clips}')
    self._assert_one_line(proc, r'--train_data: .* not tf.train.Example|--train_data: .*features')

  def test_mismatched_checkpoint_and_init(self):
    data = os.path.join(self.root, 'data')
    _write_clips(data, n=2, seconds=0.8)
    common = [f'--workdir={self.root}/run', f'--train_data={data}', f'--eval_data={data}',
              '--channels=16', '--steps=1', '--batch_size=2', '--segment_frames=4',
              '--checkpoint_every=1']
    self.assertEqual(_run_script(*common).returncode, 0)
    proc = _run_script(*common[:-4], '--channels=32', '--steps=2', '--batch_size=2',
                       '--segment_frames=4')
    self._assert_one_line(proc, r'^train_vocoder: error: .*run.* different configuration')
    proc = _run_script(f'--workdir={self.root}/run2', f'--train_data={data}',
                       f'--init={self.root}/run', '--steps=1')
    self._assert_one_line(proc, r'^train_vocoder: error: --init=')
