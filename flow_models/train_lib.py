"""Flow training glue: the Task the shared loop trains, and noise-conditioned
fine-tuning of a family of flows.

``make_task`` builds a Glow or RealNVP flow, initialises its ActNorms on a
data batch, and supplies the loss (bits per dimension, every Jacobian
counted), an evaluation function and tempered sample grids to
:func:`training.loop.train`. The run config (:class:`FlowTrainConfig`),
export and loading of prior folders live in :mod:`flow_models.export` (which
imports no trainer); their names are re-exported here for older callers.

``finetune_noise`` makes the family BASIS needs: one flow per noise level,
each fine-tuned on data + ``N(0, sigma^2)`` noise, serially from the
smallest sigma upward (each level starts from the previous one; fine-tuning
a high-noise model straight from the clean one breaks invertibility). Each
level is a normal training run with its own workdir and export; the family
folder's ``family.json`` lists the levels (see ``flow_models.family``).
"""

import dataclasses
import os
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from flow_models import family as family_lib
from flow_models import model as model_lib
from flow_models import preprocessing
from flow_models.export import (PRIOR_CONFIG, FlowTrainConfig, build_model,
                                config_from_description, export_prior, load_weights)
# Their old home: flow_models.export is where they live now.
from flow_models.export import (MODELS, PRIOR_WEIGHTS, FlowConfig,  # pylint: disable=unused-import
                                flow_config, load_flow)
from common import atomic
from common.errors import ParameterError
from training import loop
from training import optim
from training.prior_io import read_json as _read_json


def make_objective(distribution, config: FlowTrainConfig, *, training: bool) -> Callable:
  """``(batch, seed) -> (loss, metrics)``: mean bits per dimension (+ score matching).

  ``batch`` is float32 ``[batch, height, width, channels]`` in data units;
  with ``config.noise_sigma > 0`` the function adds ``sigma z``, ``z ~ N(0, I)``
  drawn from ``seed``. With ``config.score_matching_weight = w > 0`` the loss
  is ``bits/dim + w * mean((z + sigma grad_x log p(x))^2)``: denoising score
  matching (Vincent 2011) in the scale of Tweedie's ``MSE / sigma^2``
  (``basis.denoising_error``), reported as ``denoising_mse_ratio``; its
  gradient goes through ``grad_x log p`` (a second-order tape). ``training``
  selects batch statistics in the coupling networks' batch norms.
  """
  d = model_lib.num_dims(distribution)
  sigma = float(config.noise_sigma)
  weight = float(config.score_matching_weight)

  def objective(batch, seed):
    x = tf.cast(batch, distribution.dtype)
    z = None
    if sigma > 0:
      z = tf.random.stateless_normal(tf.shape(x), seed, dtype=x.dtype)
      x = x + sigma * z
    with model_lib.training_mode(distribution, training):
      if weight > 0:
        with tf.GradientTape() as tape:
          tape.watch(x)
          log_prob = distribution.log_prob(x)
        score = tape.gradient(log_prob, x)
      else:
        log_prob = distribution.log_prob(x)
    bpd = tf.reduce_mean(preprocessing.bits_per_dim(log_prob, d, num_bins=config.num_bins))
    nll = -tf.reduce_mean(log_prob) / d
    metrics = {'bits_per_dim': tf.cast(bpd, tf.float32),
               'nll_nats_per_dim': tf.cast(nll, tf.float32)}
    loss = bpd
    if weight > 0:
      dsm = tf.reduce_mean(tf.square(z + sigma * score))
      metrics['denoising_mse_ratio'] = tf.cast(dsm, tf.float32)
      loss = bpd + weight * dsm
    return tf.cast(loss, tf.float32), metrics

  return objective


def make_task(config: FlowTrainConfig, *, init_batch=None, colormap: Optional[str] = None,
              init_from: Optional[str] = None, continue_steps: bool = True) -> loop.Task:
  """Builds the flow :class:`training.loop.Task` (call inside the strategy scope).

  Args:
    config: a :class:`FlowTrainConfig`.
    init_batch: float ``[batch, height, width, channels]`` data for the
      data-dependent ActNorm init (ignored with ``init_from``; a restored
      checkpoint overwrites it anyway).
    colormap: colour map of preview grids ('magma' for spectrograms).
    init_from: an exported prior folder whose weights start the run (used
      only when the workdir has no checkpoint: the loop's restore wins). Its
      noise level may differ (fine-tuning); its architecture may not.
    continue_steps: start the step counter at the exported prior's step
      (True) or at 0 (False: a fine-tuning run counts its own steps).

  Raises:
    ParameterError: neither ``init_batch`` nor ``init_from``, or a prior
      that does not match.
  """
  distribution = build_model(config)
  initial_step, initial_elapsed = 0, 0.0
  if init_from:
    meta = load_weights(distribution, init_from, config, allow_other_sigma=True)
    if continue_steps:
      initial_step = int(meta.get('step', 0))
      initial_elapsed = float(meta.get('elapsed_s', 0.0))
  elif init_batch is not None:
    model_lib.initialize(distribution, init_batch)
  else:
    raise ParameterError('make_task needs init_batch (data-dependent ActNorm init) or '
                         'init_from (an exported prior)')
  # After the data-dependent init: every variable exists now.
  optimizer = optim.Adam(distribution.trainable_variables, optim.OptimizerConfig(
      config.optimizer, config.learning_rate, warmup_steps=config.warmup_steps))
  sample_fn = None  # set below when a preview grid is wanted
  if config.n_grid > 0:
    forward = tf.function(distribution.bijector.forward)
    shape = (config.n_grid, model_lib.num_dims(distribution))

    def sample_fn(seed):
      z = config.temperature * tf.random.stateless_normal(shape, [seed, 7],
                                                          dtype=distribution.dtype)
      x = forward(z).numpy()
      return np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0)

  return loop.Task(model=distribution, optimizer=optimizer,
                   loss_fn=make_objective(distribution, config, training=True),
                   eval_fn=make_objective(distribution, config, training=False),
                   sample_fn=sample_fn, colormap=colormap, description=config.description(),
                   initial_step=initial_step, initial_elapsed_s=initial_elapsed)


def add_bits_per_dim(workdir: str, metrics: Dict[str, Any]) -> Dict[str, Any]:
  """Names the loop's losses by what they are and rewrites ``metrics.json``.

  The loss is bits/dim, so ``train_loss`` -> ``train_bits_per_dim`` (mean
  over the last logging window) and ``eval_loss`` -> ``test_bits_per_dim``
  (EMA weights, the loop's evaluation batches of the test split).
  """
  metrics = dict(metrics)
  if 'train_loss' in metrics:
    metrics['train_bits_per_dim'] = metrics['train_loss']
  if 'eval_loss' in metrics:
    metrics['test_bits_per_dim'] = metrics['eval_loss']
  atomic.write_json_atomic(os.path.join(workdir, 'metrics.json'), metrics)
  return metrics


# ------------------------------------------------------- noise fine-tuning
def finetune_noise(base_prior: str, family_dir: str, sigmas: Sequence[float], *,
                   train_data: tf.data.Dataset, loop_config: loop.LoopConfig,
                   eval_data: Optional[tf.data.Dataset] = None,
                   learning_rate: Optional[float] = None, warmup_steps: Optional[int] = None,
                   score_matching_weight: float = 0.0, init_family: Optional[str] = None,
                   n_grid: int = 36, temperature: float = 0.7,
                   colormap: Optional[str] = None,
                   strategy: Optional[tf.distribute.Strategy] = None,
                   extra: Optional[Dict[str, Any]] = None,
                   log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Fine-tunes one flow per noise level, serially from the smallest sigma up.

  Level ``i`` (sigmas ascending) trains ``loop_config.total_steps`` steps on
  ``x + N(0, sigma_i^2)`` starting from level ``i - 1``'s export (level 0
  from ``base_prior``), in ``family_dir/runs/sigma_<i>``, and is exported to
  ``family_dir/sigma_<i>``; ``family.json`` is rewritten after every level,
  so an interrupted family resumes where it stopped (rerun the same call).

  Args:
    base_prior: exported prior folder of the clean (or lowest-noise) flow.
    family_dir: output folder.
    sigmas: noise levels > 0 (any order; run ascending), data units.
    train_data: repeated dataset of clean batches (noise is added per step).
    loop_config: cadence of each level's run; ``workdir`` is replaced per
      level and ``total_steps`` is the number of steps per level.
    eval_data: clean test batches (noisy at the level's sigma in evaluation).
    learning_rate, warmup_steps: override the base prior's optimiser
      settings (None: Adamax at 1e-3 / the base's, no warm-up).
    score_matching_weight: weight of the denoising score-matching loss added
      to the bits/dim (:func:`make_objective`; 0: likelihood only).
    init_family: a family folder; each level starts from its member of the
      same sigma (it must have every level asked for) instead of the level
      below. With ``score_matching_weight`` this refines a likelihood-trained
      family into one whose scores denoise.
    n_grid, temperature, colormap: preview grids.
    strategy: a ``tf.distribute.Strategy``.
    extra: json-able additions to every export's config.
    log: progress messages.

  Returns:
    The family description (also ``family_dir/family.json``).

  Raises:
    ParameterError: bad sigmas, a base prior with logit preprocessing, a
      family folder holding a different family, or an ``init_family``
      without the levels asked for.
  """
  sig = np.asarray(sigmas, np.float64).reshape(-1)
  if len(sig) < 1 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
    raise ParameterError(f'sigmas must be finite and > 0, got {sigmas!r}')
  if len(np.unique(sig)) != len(sig):
    raise ParameterError(f'sigmas must be distinct, got {sigmas!r}')
  sig = np.sort(sig)
  base_meta = _read_json(os.path.join(base_prior, PRIOR_CONFIG), 'prior config')
  base = config_from_description(base_meta)
  os.makedirs(family_dir, exist_ok=True)
  previous = family_lib.read_family(family_dir, missing_ok=True)
  if previous is not None and not np.allclose(previous['sigmas'], sig, rtol=1e-9):
    raise ParameterError(f'{family_dir} holds a family for sigmas {previous["sigmas"]}, '
                         f'not {sig.tolist()}; use another folder')
  starts = _init_family_members(init_family, sig) if init_family else None
  entries = []
  source = os.path.abspath(base_prior)
  for i, sigma in enumerate(sig):
    if starts is not None:
      source = starts[i]
    name = f'sigma_{i:02d}'
    out = os.path.join(family_dir, name)
    done = os.path.exists(os.path.join(out, PRIOR_CONFIG)) and _finished(
        out, sigma, loop_config.total_steps)
    if done:
      log(f'[{i + 1}/{len(sig)}] sigma={sigma:.4g}: already exported in {out}')
    else:
      config = dataclasses.replace(
          base, noise_sigma=float(sigma), score_matching_weight=float(score_matching_weight),
          n_grid=n_grid, temperature=temperature,
          learning_rate=base.learning_rate if learning_rate is None else learning_rate,
          warmup_steps=0 if warmup_steps is None else warmup_steps)
      workdir = os.path.join(family_dir, 'runs', name)
      log(f'[{i + 1}/{len(sig)}] sigma={sigma:.4g}: fine-tuning from {source} '
          f'for {loop_config.total_steps} steps in {workdir}')
      metrics = loop.train(
          lambda config=config, source=source: make_task(
              config, colormap=colormap, init_from=source, continue_steps=False),
          train_data, dataclasses.replace(loop_config, workdir=workdir),
          eval_data=eval_data, strategy=strategy)
      if score_matching_weight > 0:
        metrics = _name_objective(workdir, metrics)
      else:
        add_bits_per_dim(workdir, metrics)
      export_prior(workdir, out, extra=dict(extra or {}, fine_tuned_from=source))
    entries.append({'sigma': float(sigma), 'prior': name})
    description = {k: base_meta.get(k) for k in ('model', 'flow', 'image_shape', 'num_bins',
                                                 'dataset')}
    if score_matching_weight > 0:
      description['score_matching_weight'] = float(score_matching_weight)
    if init_family:
      description['init_family'] = os.path.relpath(os.path.abspath(init_family),
                                                   os.path.abspath(family_dir))
    family_lib.write_family(family_dir, entries, sigmas=sig, base_prior=base_prior,
        steps_per_sigma=loop_config.total_steps, description=description)
    source = os.path.abspath(out)
  return family_lib.read_family(family_dir)


def _init_family_members(init_family: str, sigmas: np.ndarray):
  """Absolute member folders of ``init_family`` for each of ``sigmas`` (ascending)."""
  doc = family_lib.read_family(init_family)
  have = {float(e['sigma']): os.path.abspath(os.path.join(init_family, e['prior']))
          for e in doc['levels']}
  out = []
  for sigma in sigmas:
    match = [folder for level, folder in have.items() if np.isclose(level, sigma, rtol=1e-6)]
    if not match:
      raise ParameterError(
          f'--init_family {init_family} has no member for sigma {sigma:.6g} (its levels: '
          f'{sorted(round(v, 6) for v in have)}); ask for its levels with --sigma_max, '
          '--sigma_min and --num_levels')
    out.append(match[0])
  return out


def _name_objective(workdir: str, metrics: Dict[str, Any]) -> Dict[str, Any]:
  """With score matching the loop's loss is bits/dim + w * DSM: named so."""
  metrics = dict(metrics)
  for old, new in (('train_loss', 'train_objective'), ('eval_loss', 'test_objective')):
    if old in metrics:
      metrics[new] = metrics[old]
  atomic.write_json_atomic(os.path.join(workdir, 'metrics.json'), metrics)
  return metrics


def _finished(prior_dir, sigma, steps) -> bool:
  meta = _read_json(os.path.join(prior_dir, PRIOR_CONFIG), 'prior config')
  return (np.isclose(float(meta.get('noise_sigma', -1.0)), sigma, rtol=1e-9)
          and int(meta.get('step', 0)) >= steps)
