"""UNetScoreNetwork: interface, dtypes, conditioning, errors, training, export.

Models are tiny (ngf 4, two resolutions, 8 x 12 x 2 images: height, width and
channels all differ so that an axis mix-up shows). The zero-initialised output
conv makes a fresh network's score exactly 0, so the value tests first give
it a random output conv (``_randomize_head``).
"""

import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from ncsn import schedules, train_lib
from ncsn.losses import dsm_loss
from ncsn.model import ScoreNetConfig, ScoreNetwork, build_score_network
from ncsn.unet import UNetScoreNetwork
from common.errors import ParameterError
from training import loop, optim, prior_io

SIGMAS = np.geomspace(1.0, 0.01, 4)
SHAPE = (8, 12, 2)
LABELS = tf.constant([0, 1, 2, 3])
CONFIG = ScoreNetConfig(arch='unet', ngf=4, channel_mult=(1, 2), num_res_blocks=1)


def _x(seed=0, batch=4):
  return tf.random.stateless_uniform((batch,) + SHAPE, [seed, 1])


def _randomize_head(model, seed=0):
  kernel = model.end.kernel
  model.end.kernel.assign(
      0.3 * tf.random.stateless_normal(kernel.shape, [seed, 2]))
  return model


def _net(config=CONFIG, **kwargs):
  return _randomize_head(build_score_network(config, SIGMAS, SHAPE, **kwargs))


class UNetTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    v2 = dataclasses.replace(CONFIG, conditional=False)
    cls.models = {'v1': _net(), 'v1_bf16': _net(compute_dtype='bfloat16'),
                  'v2': _net(v2), 'v2_bf16': _net(v2, compute_dtype='bfloat16')}

  @parameterized.parameters('v1', 'v1_bf16', 'v2', 'v2_bf16')
  def test_output_is_float32_with_the_input_shape(self, name):
    model = self.models[name]
    self.assertIsInstance(model, UNetScoreNetwork)
    out = model(_x(), LABELS)
    self.assertEqual(out.shape, (4,) + SHAPE)
    self.assertEqual(out.dtype, tf.float32)
    self.assertAllEqual(tf.math.is_finite(out), tf.ones_like(out, tf.bool))
    self.assertGreater(float(tf.reduce_max(tf.abs(out))), 0.0)

  def test_fresh_network_scores_zero(self):
    # Zero-initialised output conv: DSM starts from the loss of a zero score.
    model = build_score_network(CONFIG, SIGMAS, SHAPE)
    self.assertAllEqual(model(_x(), LABELS), tf.zeros((4,) + SHAPE))

  def test_accepts_float64_input_and_int64_labels(self):
    model = self.models['v1']
    out = model(tf.cast(_x(), tf.float64), tf.cast(LABELS, tf.int64))
    self.assertEqual(out.dtype, tf.float32)
    self.assertAllClose(out, model(_x(), LABELS), rtol=1e-6, atol=1e-6)

  @parameterized.parameters('v1', 'v2')
  def test_bfloat16_compute_approximates_float32(self, name):
    # Same seed, same weights; only the compute dtype differs. bfloat16 keeps
    # 8 bits of mantissa (0.4% per rounding) through ~10 convolutions; the
    # relative L2 error seen is 0.5-4% (inputs of seeds 0-2), so 10% leaves room.
    x = _x(seed=3)
    ref = self.models[name](x, LABELS).numpy()
    low = self.models[name + '_bf16'](x, LABELS).numpy()
    self.assertLess(np.linalg.norm(low - ref) / np.linalg.norm(ref), 0.10)

  def test_labels_change_the_output_beyond_the_sigma_scaling(self):
    x = tf.repeat(_x(batch=1), 4, axis=0)      # the same image at every level
    out = self.models['v1'](x, LABELS).numpy()
    # v1 predicts sigma * s with level-conditional norms: sigma * s differs
    # between levels (by a few percent at initialisation, gamma ~ N(1, 0.02)).
    for i in range(1, 4):
      self.assertGreater(np.abs(out[i] * SIGMAS[i] - out[0] * SIGMAS[0]).max(), 1e-4)
    # ... and the score itself by the 1 / sigma scaling: 100x from level 0 to 3.
    self.assertAllClose(np.median(np.abs(out[3])) / np.median(np.abs(out[0])),
                        SIGMAS[0] / SIGMAS[3], rtol=0.5)

  def test_v2_output_scales_as_one_over_sigma(self):
    x = tf.repeat(_x(batch=1), 4, axis=0)
    out = self.models['v2'](x, LABELS).numpy()
    # Unconditional body: only the division differs (float32 rounding).
    for i in range(1, 4):
      self.assertAllClose(out[i] * SIGMAS[i], out[0] * SIGMAS[0], rtol=1e-5, atol=1e-6)

  def test_examples_are_independent_of_each_other(self):
    model = self.models['v1']
    x = _x(batch=4)
    # Instance norm: no statistic crosses the batch. float32: 1e-5.
    self.assertAllClose(model(x, LABELS)[2:3], model(x[2:3], LABELS[2:3]),
                        rtol=1e-5, atol=1e-5)

  def test_fused_norm_matches_the_plain_form(self):
    model = self.models['v1']
    x = _x(seed=7)
    fused = model(x, LABELS).numpy()
    try:
      model.set_fused_norm(False)
      plain = model(x, LABELS).numpy()
    finally:
      model.set_fused_norm(True)
    # The same map in float32, written differently: rounding only.
    self.assertAllClose(fused / np.abs(plain).max(), plain / np.abs(plain).max(), atol=1e-5)

  def test_interface_matches_score_network(self):
    model = self.models['v1']
    self.assertEqual(model.image_shape, SHAPE)
    self.assertEqual(model.num_levels, 4)
    self.assertEqual(model.compute_dtype, tf.float32)
    self.assertEqual(self.models['v1_bf16'].compute_dtype, tf.bfloat16)
    self.assertIs(model.config, CONFIG)
    self.assertAllClose(model.sigmas, SIGMAS, rtol=1e-6)
    self.assertEqual(model.level_index(np.float32(SIGMAS[2])), 2)
    with self.assertRaisesRegex(ParameterError, 'sigma=0.5 is not a noise level'):
      model.level_index(0.5)
    self.assertEqual(model.num_parameters(),
                     sum(int(np.prod(v.shape)) for v in model.trainable_variables))
    # bfloat16 compute keeps float32 variables (same checkpoint).
    self.assertEqual({v.dtype for v in self.models['v1_bf16'].trainable_variables},
                     {tf.float32})

  def test_same_seed_same_weights(self):
    a = build_score_network(CONFIG, SIGMAS, SHAPE)
    b = build_score_network(CONFIG, SIGMAS, SHAPE)
    c = build_score_network(CONFIG, SIGMAS, SHAPE, seed=1)
    for u, v in zip(a.trainable_variables, b.trainable_variables):
      self.assertAllEqual(u, v)
    self.assertNotAllClose(a.stem.kernel, c.stem.kernel)

  @parameterized.named_parameters(
      ('height', (6, 12, 2), CONFIG),
      ('width', (8, 10, 2), CONFIG),
      ('deeper', (8, 12, 2), dataclasses.replace(CONFIG, channel_mult=(1, 2, 2))),
  )
  def test_raises_on_a_shape_not_divisible_by_the_downsampling(self, shape, config):
    factor = 2 ** len(config.channel_mult)
    with self.assertRaisesRegex(
        ParameterError, f'divisible by {factor} .*got {re.escape(str(shape))}'):
      build_score_network(config, SIGMAS, shape)

  @parameterized.named_parameters(
      ('negative_sigma', dict(sigmas=[1.0, -0.1]), 'positive 1-D'),
      ('bad_dtype', dict(compute_dtype='float16'), "got 'float16'"),
      ('refinenet_config', dict(config=ScoreNetConfig(ngf=4)), "needs arch='unet'"),
  )
  def test_raises_on_bad_arguments(self, kwargs, regex):
    args = dict(config=CONFIG, sigmas=SIGMAS, image_shape=SHAPE)
    args.update(kwargs)
    with self.assertRaisesRegex(ParameterError, regex):
      UNetScoreNetwork(args.pop('config'), args.pop('sigmas'), args.pop('image_shape'),
                       **args)

  @parameterized.named_parameters(
      ('arch', dict(arch='resnet'), "arch must be one of .*got 'resnet'"),
      ('empty_mult', dict(arch='unet', channel_mult=()), 'channel_mult must be'),
      ('zero_mult', dict(arch='unet', channel_mult=(1, 0)), 'channel_mult must be'),
      ('blocks', dict(arch='unet', num_res_blocks=0), 'num_res_blocks must be .*got 0'),
      ('unet_field_on_refinenet', dict(num_res_blocks=2),
       "num_res_blocks applies to arch='unet' only"),
  )
  def test_config_raises_on_bad_fields(self, kwargs, regex):
    with self.assertRaisesRegex(ParameterError, regex):
      ScoreNetConfig(**kwargs)

  def test_config_dict_roundtrip_through_json(self):
    config = ScoreNetConfig(arch='unet', ngf=8, channel_mult=(1, 2, 4), num_res_blocks=2)
    d = json.loads(json.dumps(config.to_dict()))        # tuples come back as lists
    self.assertEqual(ScoreNetConfig.from_dict(d), config)
    # A RefineNet's dict is what it was before the U-Net (runs still resume).
    self.assertEqual(ScoreNetConfig(ngf=8).to_dict(),
                     {'ngf': 8, 'conditional': True, 'centered': True})

  def test_builder_picks_the_refinenet_by_default(self):
    model = build_score_network(ScoreNetConfig(ngf=4), SIGMAS, SHAPE)
    self.assertIsInstance(model, ScoreNetwork)

  def test_dsm_training_reduces_the_loss_on_a_fixed_batch(self):
    model = build_score_network(CONFIG, SIGMAS, SHAPE, seed=3)
    variables = model.trainable_variables
    opt = optim.Adam(variables, optim.OptimizerConfig('adam', 3e-3))
    sigmas = model.sigmas
    x = _x(seed=11, batch=8)
    seed = tf.constant([5, 6])        # the same levels and noise every step

    @tf.function
    def step():
      with tf.GradientTape() as tape:
        loss, _ = dsm_loss(lambda x, l: model(x, l, training=True), x, sigmas, seed)
      opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return loss

    losses = [float(step()) for _ in range(40)]
    # Zero score at init: loss = 1/2 |z|^2 = D / 2 = 96 per example on
    # average. Fitting a fixed noise draw, 40 Adam steps bring it from 98 to 59.
    self.assertAllClose(losses[0], 96.0, rtol=0.2)
    self.assertLess(losses[-1], 0.8 * losses[0])
    self.assertLess(np.mean(losses[-5:]), np.mean(losses[:5]))

  def test_export_and_load_roundtrip_gives_identical_outputs(self):
    tmp = self.get_temp_dir()
    workdir, prior_dir = os.path.join(tmp, 'run'), os.path.join(tmp, 'prior')
    config = train_lib.NCSNTrainConfig(
        net=CONFIG, schedule=schedules.NoiseSchedule(1.0, 0.01, 4), image_shape=SHAPE,
        n_grid=0, dataset={'name': 'random'})
    data = tf.data.Dataset.from_tensor_slices(_x(seed=2, batch=16)).batch(
        8, drop_remainder=True).repeat()
    loop.train(lambda: train_lib.make_task(config), data,
               loop.LoopConfig(workdir=workdir, total_steps=3, log_every=1,
                               eval_every=100, ema_decay=0.5, progress=False))
    train_lib.export_prior(workdir, prior_dir)
    with open(os.path.join(prior_dir, 'config.json')) as f:
      self.assertEqual(json.load(f)['net']['arch'], 'unet')
    loaded = train_lib.load_score_model(prior_dir)
    self.assertIsInstance(loaded, UNetScoreNetwork)
    self.assertEqual(loaded.config, CONFIG)
    reference = train_lib.build_model(config)
    prior_io.load_ema_weights(workdir, reference)
    x = _x(seed=9)
    self.assertAllEqual(loaded(x, LABELS), reference(x, LABELS))
    self.assertGreater(float(tf.reduce_max(tf.abs(loaded(x, LABELS)))), 0.0)   # trained
    bf16 = train_lib.load_score_model(prior_dir, compute_dtype='bfloat16')
    self.assertEqual(bf16.compute_dtype, tf.bfloat16)

  def test_shipped_refinenet_prior_still_loads(self):
    prior = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         'assets', 'priors', 'ncsn_mnist')
    model = train_lib.load_score_model(prior)
    self.assertIsInstance(model, ScoreNetwork)
    self.assertEqual(model.config.arch, 'refinenet')
    self.assertEqual(model.num_parameters(), 1964865)
    # Its description is unchanged by the new fields.
    self.assertEqual(model.config.to_dict(), model.prior_metadata['net'])
    out = model(tf.fill([1, 28, 28, 1], 0.5), tf.constant([9]))
    self.assertEqual(out.dtype, tf.float32)
    self.assertTrue(np.all(np.isfinite(out.numpy())))


if __name__ == '__main__':
  tf.test.main()
