"""The trainable refiner and Deep Griffin-Lim block: identities, training, shipped weights."""

import json
import os

import numpy as np
import tensorflow as tf

from inversion import mel_to_linear
from inversion import nets
from inversion import net_training
from inversion import phase
from inversion import stft as stft_lib
from pipeline import audio
from common import assets
from common.errors import ParameterError
from training import optim
from tests import inversion_fixtures as fx

SMALL = nets.StftSettings(sample_rate=16000, n_fft=512, hop_length=128)


def small_transform():
  return stft_lib.stft_transform(n_fft=512, hop_length=128)


def randomize(model, seed=3, scale=0.05):
  """Gives every variable (the zero-initialised last layer too) random values."""
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0.0, scale, v.shape).astype(np.float32))


class RefinerTest(tf.test.TestCase):

  def test_untrained_refiner_is_the_clipped_pseudo_inverse(self):
    # The last layer starts at zero, so the log correction is 0; what is left
    # is the -80 dB floor: relu(V - 1e-4 peak).
    base = np.abs(np.random.default_rng(0).normal(size=(2, 9, 257))).astype(np.float32)
    base[0, :, 200:] = 0.0
    out = nets.Refiner(nets.RefinerConfig(channels=4, levels=2, stft=SMALL))(base).numpy()
    peak = base.reshape(2, -1).max(axis=1)[:, None, None]
    self.assertAllClose(out, np.maximum(base - nets.LOG_FLOOR * peak, 0.0), atol=1e-5)

  def test_refiner_is_gain_equivariant_and_non_negative(self):
    model = nets.Refiner(nets.RefinerConfig(channels=4, levels=2, stft=SMALL))
    randomize(model)
    base = np.abs(np.random.default_rng(1).normal(size=(1, 9, 257))).astype(np.float32)
    a, b = model(base).numpy(), model(1e-3 * base).numpy()
    self.assertGreaterEqual(a.min(), 0.0)
    self.assertAllClose(b, 1e-3 * a, rtol=1e-4, atol=1e-9)
    self.assertGreater(np.abs(a - np.maximum(base - 1e-4 * base.max(), 0)).max(), 1e-3)

  def test_odd_bin_counts_keep_their_shape(self):
    model = nets.Refiner(nets.RefinerConfig(channels=4, levels=3, stft=SMALL))
    for bins in (257, 1025, 33):
      self.assertEqual(model(tf.ones([1, 5, bins])).shape, (1, 5, bins))

  def test_mel_to_magnitude_refiner_batches_any_leading_axes(self):
    t = small_transform()
    folder = self.create_tempdir().full_path
    model = nets.Refiner(nets.RefinerConfig(channels=4, levels=2, stft=SMALL))
    randomize(model)
    nets.export_net(folder, 'refiner', model, {'note': 'test'})
    y = fx.sources(4096)
    mel = t.spectrogram_to_mel(t.spectrogram(y)).numpy()          # [2, frames, 40]
    both = mel_to_linear.mel_to_magnitude(mel, method='refiner', transform=t, refiner=folder)
    one = mel_to_linear.mel_to_magnitude(mel[1], method='refiner', transform=t, refiner=folder)
    self.assertEqual(both.shape, (2, mel.shape[1], 257))
    self.assertAllClose(both[1], one, rtol=1e-5, atol=1e-7)


class DeGLITest(tf.test.TestCase):

  def test_untrained_block_is_griffin_lim(self):
    # With F = 0 a block is X <- P_C(P_mag(X)): exactly Griffin-Lim.
    t = small_transform()
    folder = self.create_tempdir().full_path
    nets.export_net(folder, 'degli', nets.DeGLINet(nets.DeGLIConfig(channels=4, stft=SMALL)), {})
    mags = np.abs(t.stft(fx.sources(4096)).numpy())
    ours = phase.deep_griffin_lim(mags, n_iter=5, momentum=0.0, transform=t, degli=folder,
                                  seed=2)
    gla = phase.griffin_lim(mags, n_iter=5, transform=t, seed=2)
    self.assertAllClose(ours.waveform, gla.waveform, atol=1e-5)
    # ... and with momentum, fast Griffin-Lim.
    ours = phase.deep_griffin_lim(mags, n_iter=5, momentum=0.9, transform=t, degli=folder)
    fgla = phase.fast_griffin_lim(mags, n_iter=5, momentum=0.9, transform=t)
    self.assertAllClose(ours.waveform, fgla.waveform, atol=1e-5)

  def test_network_is_gain_equivariant(self):
    net = nets.DeGLINet(nets.DeGLIConfig(channels=4, stft=SMALL))
    randomize(net, seed=5)
    rng = np.random.default_rng(0)
    z = [tf.complex(rng.normal(size=(1, 6, 257)).astype(np.float32),
                    rng.normal(size=(1, 6, 257)).astype(np.float32)) for _ in range(3)]
    amp = tf.abs(z[1])
    a = net(*z, amp).numpy()
    b = net(*[x * 1e-2 for x in z], amp * 1e-2).numpy()
    self.assertAllClose(b, 1e-2 * a, rtol=1e-4, atol=1e-9)

  def test_registry_runs_degli_in_a_tf_function_from_the_mixture_phase(self):
    t = small_transform()
    folder = self.create_tempdir().full_path
    net = nets.DeGLINet(nets.DeGLIConfig(channels=4, stft=SMALL))
    randomize(net, scale=0.01)
    nets.export_net(folder, 'degli', net, {})
    s = fx.sources(4096)
    mags = np.abs(t.stft(s).numpy())
    x = t.stft(s.sum(0))
    nets.load_net(folder, 'degli', transform=t)   # variables made eagerly
    fn = tf.function(lambda m, x: phase.reconstruct('degli', m, x, transform=t, n_iter=3,
                                                    degli=folder))
    rec = fn(mags, x)
    self.assertEqual(rec.waveform.shape, (2, 4096 // 128 * 128))
    self.assertTrue(np.all(np.isfinite(rec.waveform.numpy())))


class FolderErrorTest(tf.test.TestCase):

  def test_other_stft_is_refused_naming_both(self):
    folder = self.create_tempdir().full_path
    nets.export_net(folder, 'degli', nets.DeGLINet(nets.DeGLIConfig(channels=4, stft=SMALL)), {})
    with self.assertRaisesRegex(ParameterError, r'n_fft: trained 512, given 2048'):
      phase.deep_griffin_lim(np.ones((5, 1025), np.float32), n_iter=1, degli=folder)

  def test_missing_folder_and_wrong_kind_are_named(self):
    with self.assertRaisesRegex(ParameterError, r'refiner config .*nowhere.* does not exist'):
      nets.load_net('/nowhere', 'refiner')
    folder = self.create_tempdir().full_path
    nets.export_net(folder, 'degli', nets.DeGLINet(nets.DeGLIConfig(channels=4, stft=SMALL)), {})
    with self.assertRaisesRegex(ParameterError, r"holds a 'degli' network, not a 'refiner'"):
      nets.load_net(folder, 'refiner')

  def test_damaged_weights_are_named(self):
    folder = self.create_tempdir().full_path
    nets.export_net(folder, 'refiner', nets.Refiner(nets.RefinerConfig(channels=4, stft=SMALL)),
                    {})
    data = [f for f in os.listdir(folder) if f.startswith('weights.data')][0]
    with open(os.path.join(folder, data), 'r+b') as f:
      f.truncate(100)
    with self.assertRaisesRegex(ParameterError, r'cannot load refiner weights'):
      nets.load_net(folder, 'refiner')

  def test_refiner_option_only_with_the_refiner(self):
    with self.assertRaisesRegex(ParameterError, r"only for method 'refiner'"):
      mel_to_linear.mel_to_magnitude(np.ones((3, 96), np.float32), method='nnls', refiner='x')


class TrainingTest(tf.test.TestCase):
  """The real loop on tiny networks and a few rendered clips: it trains, resumes, exports."""

  def _clips(self):
    d = self.create_tempdir().full_path
    for i in range(3):
      s = fx.sources(16000) * (0.5 + 0.2 * i)
      audio.write_wav(os.path.join(d, f'clip{i}.wav'), s[i % 2], 16000)
    return os.path.join(d, '*.wav')

  def _run(self, kind, workdir, export, steps, data):
    return net_training.run(net_training.NetTrainConfig(
        kind=kind, workdir=workdir, export_dir=export, train_data=(data,), eval_data=(data,),
        steps=steps, batch_size=2, crop_frames=8, channels=4, stft=SMALL, eval_every=2,
        checkpoint_every=2, log_every=1, progress=False))

  def test_refiner_and_degli_train_resume_and_export(self):
    data = self._clips()
    for kind in nets.KINDS:
      work = self.create_tempdir().full_path
      export = os.path.join(self.create_tempdir().full_path, kind)
      first = self._run(kind, work, export, 2, data)
      self.assertTrue(np.isfinite(first['train_loss']) and np.isfinite(first['eval_loss']))
      again = self._run(kind, work, export, 3, data)   # resumes at step 2
      self.assertEqual(again['step'], 3)
      model, meta = nets.load_net(export, kind)
      self.assertEqual(meta['step'], 3)
      self.assertEqual(meta['kind'], kind)
      self.assertEqual(model.config.stft, SMALL)

  def test_a_training_step_lowers_the_loss_on_a_fixed_batch(self):
    t = small_transform()
    batch = tf.constant(fx.sources(8 * 128)[:, :7 * 128])
    seed = tf.constant([1, 2], tf.int32)
    fbs, pinvs, steps = net_training.mel_banks(SMALL)
    for kind in nets.KINDS:
      cfg = (nets.RefinerConfig if kind == 'refiner' else nets.DeGLIConfig)(channels=4, stft=SMALL)
      model = nets.build(kind, cfg)
      if kind == 'refiner':
        loss_fn = lambda: net_training.refiner_loss(model, batch, seed, transform=t, fbs=fbs,
                                                    pinvs=pinvs, steps=steps)[0]
      else:
        loss_fn = lambda: net_training.degli_loss(model, batch, seed, transform=t,
                                                  snr_db=(0.0, 6.0))[0]
      before = float(loss_fn())
      # Adam, as in training: the log-L1 loss has kinks (bins at the -80 dB
      # floor in both estimate and target), too sharp for plain descent.
      opt = optim.Adam(model.trainable_variables, optim.OptimizerConfig(learning_rate=1e-3))
      for _ in range(10):
        with tf.GradientTape() as tape:
          loss = loss_fn()
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                model.trainable_variables))
      self.assertLess(float(loss_fn()), before, kind)

  def test_training_base_is_the_nnls_that_inference_runs(self):
    # One bank per item in training, MelTransform.mel_to_spectrogram at inference:
    # the same FISTA from the clipped pseudo-inverse.
    from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
    from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
    fbs, pinvs, steps = net_training.mel_banks(SMALL)
    t = small_transform()
    power = tf.square(tf.abs(t.stft(fx.sources(4096))))             # [2, frames, 257]
    idx = [1, 3]
    base = net_training.base_magnitude(power, tf.gather(fbs, idx), tf.gather(pinvs, idx),
                                       tf.gather(steps, idx), 20).numpy()
    for item, k in enumerate(idx):
      n_mels, fmin, fmax = net_training.MEL_BANKS[k]
      mt = MelTransform(FeatureConfig(n_fft=512, hop_length=128, n_mels=n_mels, fmin=fmin,
                                      fmax=fmax, patch_frames=8, patch_samples=7 * 128))
      want = np.sqrt(mt.mel_to_spectrogram(mt.spectrogram_to_mel(power[item]), n_iter=20))
      self.assertAllClose(base[item], want, rtol=1e-3, atol=1e-4 * want.max())

  def test_bad_settings_are_named(self):
    with self.assertRaisesRegex(ParameterError, r'no file matches .*nothing'):
      net_training.list_files(['/nothing/*.wav'], 10)
    with self.assertRaisesRegex(ParameterError, r'--batch_size must be a positive int, got 0'):
      net_training.NetTrainConfig(kind='refiner', workdir='/tmp/x', train_data=('a',),
                                  batch_size=0)


class ShippedTest(tf.test.TestCase):
  """The shipped weights load from a clean clone and do what they are for (held-out clip)."""

  def setUp(self):
    super().setUp()
    y, _ = audio.load(os.path.join(assets.demo_dir(), 'violin.wav'),
                      sample_rate=16000)
    self.y = y[:4 * 16000]
    self.t = stft_lib.as_transform(None)   # the reference STFT, 2048 / 512
    self.mags = np.abs(self.t.stft(self.y).numpy())

  def test_shipped_folders_describe_their_training(self):
    for kind in nets.KINDS:
      with open(os.path.join(nets.default_dir(kind), 'config.json')) as f:
        meta = json.load(f)
      self.assertEqual(meta['kind'], kind)
      self.assertGreaterEqual(meta['step'], 1000)
      self.assertEqual(meta['network']['stft']['n_fft'], 2048)
      self.assertIn('train_inversion_net.py', meta['command'])

  def test_chunked_refiner_equals_the_whole_input_computation(self):
    model, _ = nets.load_net(None, 'refiner', transform=self.t)
    self.assertLessEqual(model.margin_frames, 32)
    base = np.concatenate([self.mags] * 3)[None].astype(np.float32)   # 375 frames
    whole = model(base, chunk_frames=10_000).numpy()
    for chunk in (64, 100, 256):
      chunked = model(base, chunk_frames=chunk).numpy()
      # The margin covers the receptive field: the same sums in the same order
      # up to float32 rounding of the convolution tiling (observed: 0 or 1 ulp).
      self.assertAllClose(chunked, whole, rtol=1e-5, atol=1e-7 * float(whole.max()))

  def test_compiled_per_item_refine_equals_the_batched_whole_input(self):
    model, _ = nets.load_net(None, 'refiner', transform=self.t)
    base = np.stack([np.concatenate([self.mags] * 3), 0.5 * np.concatenate([self.mags] * 3)])
    whole = model(base.astype(np.float32), chunk_frames=10_000).numpy()
    refined = mel_to_linear.refine(base, transform=self.t).numpy()   # compiled, 128 frames
    # float32 rounding of other kernels and tilings (observed 2e-7 relative).
    self.assertAllClose(refined, whole, rtol=1e-5, atol=1e-6 * float(whole.max()))
    model.compiled_correction()(tf.zeros([1, 40, base.shape[-1], 1]))
    self.assertEqual(model.compiled_correction().experimental_get_tracing_count(), 1)

  def test_auto_is_the_refiner_where_it_fits_and_nnls_elsewhere(self):
    self.assertEqual(mel_to_linear.resolve_method('auto', None), 'refiner')
    self.assertEqual(mel_to_linear.resolve_method('auto', small_transform()), 'nnls')
    self.assertEqual(mel_to_linear.resolve_method('pinv', None), 'pinv')
    t = small_transform()
    mel = t.spectrogram_to_mel(t.spectrogram(fx.sources(4096)))
    self.assertAllClose(mel_to_linear.mel_to_magnitude(mel, method='auto', transform=t),
                        mel_to_linear.mel_to_magnitude(mel, method='nnls', transform=t))

  def test_shipped_refiner_beats_the_pseudo_inverse_on_80_bands(self):
    from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
    t = stft_lib.as_transform(FeatureConfig(n_mels=80, fmin=0.0, fmax=8000.0))
    mel = t.spectrogram_to_mel(self.mags ** 2)
    sc = {m: float(stft_lib.spectral_convergence(
        self.mags, mel_to_linear.mel_to_magnitude(mel, method=m, transform=t)))
          for m in ('pinv', 'refiner')}
    self.assertLess(sc['refiner'], sc['pinv'] - 3.0, sc)   # measured -10.4 vs -1.5 dB

  def test_shipped_degli_is_more_consistent_than_griffin_lim(self):
    # The paper's DeGLI (no momentum) against GLA, and with momentum against
    # fast GLA, at equal iterations (validation medians at 32 iterations:
    # -19.8 vs -17.1 dB and -26.5 vs -24.3 dB).
    kw = dict(n_iter=32, transform=self.t, seed=0)
    sc = lambda r: float(stft_lib.spectral_convergence(self.mags, self.t.stft(r.waveform)))
    gla, fgla = phase.griffin_lim(self.mags, **kw), phase.fast_griffin_lim(self.mags, **kw)
    paper = phase.deep_griffin_lim(self.mags, momentum=0.0, **kw)
    ours = phase.deep_griffin_lim(self.mags, **kw)
    self.assertLess(sc(paper), sc(gla), (sc(paper), sc(gla)))
    self.assertLess(sc(ours), sc(fgla), (sc(ours), sc(fgla)))
    self.assertLess(float(stft_lib.inconsistency(ours.stft, transform=self.t)),
                    float(stft_lib.inconsistency(gla.stft, transform=self.t)))


class MelTableTest(tf.test.TestCase):
  """The table runs end to end on tiny clips, beside librosa, and names missing data."""

  def test_table_rows_scores_and_files(self):
    from experiments.studies import mel_table  # pylint: disable=g-import-not-at-top
    d = self.create_tempdir().full_path
    s = fx.sources(16000)
    for g, y in (('a', s[0]), ('b', s[1])):
      audio.write_wav(os.path.join(d, f'{g}.wav'), y, 16000)
    out = os.path.join(d, 'out')
    res = mel_table.run(mel_table.MelTableConfig(
        out_dir=out, groups=(('a', os.path.join(d, 'a.wav')), ('b', os.path.join(d, 'b.wav'))),
        n_per_group=1, duration_s=0.5, n_mels=40, n_fft=512, hop_length=128,
        magnitudes=('pinv', 'nnls', 'exact'), phases=('gla', 'fgla', 'fgla@0'),
        n_iters=(2, 8)), log=lambda _: None)
    self.assertLen(res['rows'], 3 * 3 * 2 + 2)
    by = {(r['magnitude'], r['phase'], r['n_iter']): r for r in res['rows']}
    # More iterations and NNLS both lower the spectral convergence (median of 2 clips).
    med = lambda k: float(np.median(by[k]['sc_db']))
    self.assertLess(med(('nnls', 'fgla', 8)), med(('nnls', 'fgla', 2)))
    self.assertLess(med(('nnls', 'fgla', 8)), med(('pinv', 'fgla', 8)))
    self.assertIn(('librosa nnls (L-BFGS-B)', 'librosa fgla', 8), by)
    # With exact magnitudes Griffin-Lim's inconsistency falls with iterations.
    inc = lambda k: float(np.median(by[k]['inconsistency_db']))
    self.assertLess(inc(('exact', 'gla', 8)), inc(('exact', 'gla', 2)))
    self.assertIsNone(by[('exact', 'gla', 8)]['magnitude_sc_db'])
    # 'fgla@0' is fast Griffin-Lim without momentum: Griffin-Lim itself.
    self.assertAllClose(by[('exact', 'fgla@0', 8)]['sc_db'], by[('exact', 'gla', 8)]['sc_db'],
                        atol=1e-3)
    for f in ('table.json', 'table.md', 'a_exact_fgla8.wav', 'b_exact_fgla8.wav'):
      self.assertTrue(os.path.exists(os.path.join(out, f)), f)
    with open(os.path.join(out, 'table.md')) as f:
      self.assertIn('| nnls | fgla | 8 |', f.read())

  def test_phase_specs_parse_and_bad_ones_are_named(self):
    from experiments.studies import mel_table  # pylint: disable=g-import-not-at-top
    self.assertEqual(mel_table.parse_phase('degli@0.9'), ('degli', 0.9))
    self.assertEqual(mel_table.parse_phase('gla'), ('gla', None))
    with self.assertRaisesRegex(ParameterError, r"'fgla@x': the momentum after @"):
      mel_table.parse_phase('fgla@x')
    with self.assertRaisesRegex(ParameterError, r"split must be 'test' or 'validation'"):
      mel_table.split_groups('train')

  def test_too_few_clips_are_named(self):
    from experiments.studies import mel_table  # pylint: disable=g-import-not-at-top
    with self.assertRaisesRegex(ParameterError, r"group 'x': .*matches 0 files, need 6"):
      mel_table.load_clips(mel_table.MelTableConfig(out_dir='/tmp/o',
                                                    groups=(('x', '/nothing/*.wav'),)))
