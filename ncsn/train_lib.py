"""NCSN training glue: the Task the shared loop trains.

``make_task`` builds the score network, optimiser, DSM loss and a sample-grid
function for :func:`training.loop.train`. The run config
(:class:`NCSNTrainConfig`), export and loading of prior folders live in
:mod:`ncsn.export` (which imports no trainer); their names are re-exported
here for older callers.
"""

from typing import Optional

import tensorflow as tf

from ncsn.export import NCSNTrainConfig, build_model, load_weights
# Their old home: ncsn.export is where they live now.
from ncsn.export import (PRIOR_CONFIG, PRIOR_WEIGHTS, config_from_description,  # pylint: disable=unused-import
                         export_prior, load_score_model)
from ncsn.losses import dsm_loss
from ncsn.sampling import make_sampler
from training import optim
from training.loop import Task


def make_task(config: NCSNTrainConfig, *, colormap: Optional[str] = None,
              init_from: Optional[str] = None) -> Task:
  """Builds the NCSN :class:`Task` (call inside the strategy scope).

  Args:
    config: an :class:`NCSNTrainConfig`.
    colormap: colour map of preview grids (``'magma'`` for spectrograms).
    init_from: an exported prior folder whose weights start the run (used
      only when the workdir holds no checkpoint: the loop's restore wins).
  """
  model = build_model(config)
  initial_step, initial_elapsed = 0, 0.0
  if init_from:
    meta = load_weights(model, init_from, config)
    initial_step = int(meta.get('step', 0))
    initial_elapsed = float(meta.get('elapsed_s', 0.0))
  optimizer = optim.Adam(model.trainable_variables, optim.OptimizerConfig(
      'adam', config.learning_rate, beta_1=config.beta_1))
  sigmas = tf.constant(config.schedule.sigmas, tf.float32)

  def loss_fn(batch, seed):
    return dsm_loss(lambda x, labels: model(x, labels, training=True), batch,
                    sigmas, seed)

  sampler = make_sampler(lambda x, labels: model(x, labels), config.schedule.sigmas,
                         n_steps_each=config.grid_steps_each, step_lr=config.step_lr)

  def sample_fn(seed):
    x0 = tf.random.stateless_uniform((config.n_grid,) + tuple(config.image_shape),
                                     [seed, 7])
    return sampler(x0, tf.constant([seed, 11], tf.int32)).numpy()

  return Task(model=model, optimizer=optimizer, loss_fn=loss_fn,
              sample_fn=sample_fn if config.n_grid > 0 else None,
              colormap=colormap, description=config.description(),
              initial_step=initial_step, initial_elapsed_s=initial_elapsed)
