"""Denoising score matching with a random noise level per example."""

import tensorflow as tf


def dsm_loss(score_fn, x, sigmas, seed):
  """Annealed denoising score matching loss (Song & Ermon 2019, eq. 2).

  Every example draws its own level ``i`` uniformly and its own noise ``z``:

    x~ = x + sigma_i z,  l = 1/2 sigma_i^2 || s(x~, i) + z / sigma_i ||^2
                           = 1/2 || sigma_i s(x~, i) + z ||^2,

  summed over the data dimensions and averaged over the batch. (The original
  port read the batch size from the channel axis, so a whole batch shared one
  level and one noise draw.)

  Args:
    score_fn: callable ``(x~, labels) -> score`` with ``labels`` int32
      ``[batch]``; returns float32 of the shape of ``x``.
    x: float ``[batch, ...]`` clean data.
    sigmas: float32 ``[num_levels]`` noise levels.
    seed: int32 ``[2]`` stateless seed (the training loop passes a fresh one
      per step and replica).

  Returns:
    ``(loss, metrics)``: scalar float32 loss and a dict with the loss per
    level bucket (``loss_low_sigma``: the smallest third of the levels,
    ``loss_high_sigma``: the largest third), useful to see which levels lag
    behind.
  """
  x = tf.convert_to_tensor(x, tf.float32)
  sigmas = tf.convert_to_tensor(sigmas, tf.float32)
  batch = tf.shape(x)[0]   # the batch axis, not the channel axis
  seed_level, seed_noise = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  num_levels = tf.shape(sigmas)[0]
  labels = tf.random.stateless_uniform([batch], seed_level, minval=0,
                                       maxval=num_levels, dtype=tf.int32)
  sigma = tf.gather(sigmas, labels)
  sigma_b = tf.reshape(sigma, [-1] + [1] * (len(x.shape) - 1))
  z = tf.random.stateless_normal(tf.shape(x), seed_noise)
  score = score_fn(x + sigma_b * z, labels)
  per_example = 0.5 * tf.reduce_sum(
      tf.reshape(tf.square(sigma_b * score + z), [batch, -1]), axis=1)
  loss = tf.reduce_mean(per_example)
  third = tf.maximum(num_levels // 3, 1)

  def bucket_mean(mask):
    mask = tf.cast(mask, tf.float32)
    return tf.reduce_sum(per_example * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)

  metrics = {
      'loss_high_sigma': bucket_mean(labels < third),
      'loss_low_sigma': bucket_mean(labels >= num_levels - third),
  }
  return loss, metrics
