"""Dilated convolutions on every CPU: the space-to-batch form equals TensorFlow's own.

TensorFlow's plain CPU kernels (oneDNN off: AMD Zen 3, or TF_ENABLE_ONEDNN_OPTS=0)
have no gradient for dilated convolutions; ``ncsn.layers.Conv2D`` switches to
space-to-batch there. ``make test`` runs this file a second time with oneDNN off
(tests/test_onednn_off.py), so both paths are exercised on any machine.
"""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from ncsn import layers
from common import compute


def _pair(shape, cin, cout, seed):
  rng = np.random.default_rng(seed)
  x = tf.constant(rng.normal(size=shape + (cin,)).astype(np.float32))
  k = tf.constant(rng.normal(size=(3, 3, cin, cout)).astype(np.float32) / 3.0)
  return x, k


class DilatedConvTest(tf.test.TestCase, parameterized.TestCase):

  # Shapes: even, odd, and smaller than the dilated kernel's reach; dilations 2 and 4.
  @parameterized.parameters(((2, 48, 32), 2), ((2, 14, 14), 4), ((1, 7, 5), 2),
                            ((3, 3, 6), 4), ((1, 9, 11), 4))
  def test_space_to_batch_forward_matches_native_conv(self, shape, dilation):
    x, k = _pair(shape, 3, 5, seed=dilation)
    want = tf.nn.conv2d(x, k, 1, 'SAME', dilations=dilation)   # forward runs everywhere
    got = layers.dilated_conv_space_to_batch(x, k, dilation)
    self.assertEqual(got.shape, want.shape)
    # float32 sums of 27 products reordered: 1e-5 relative to the output scale.
    self.assertAllClose(got, want, atol=1e-5 * float(tf.reduce_max(tf.abs(want))), rtol=0)

  @parameterized.parameters(2, 4)
  def test_space_to_batch_gradient_matches_the_transposed_map(self, dilation):
    # The conv is linear in x and in k, so <conv(x, k), u> has closed-form
    # gradients: wrt x the adjoint conv of u, wrt k the correlation of x and u.
    x, k = _pair((2, 10, 8), 2, 3, seed=10 + dilation)
    u = tf.random.stateless_normal((2, 10, 8, 3), [dilation, 5])
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([x, k])
      inner = tf.reduce_sum(layers.dilated_conv_space_to_batch(x, k, dilation) * u)
    gx, gk = tape.gradient(inner, [x, k])
    # d/dx of <conv(x,k), u> = SAME dilated correlation of u with k flipped and
    # its channel axes swapped (exact for odd kernels with symmetric padding).
    k_adj = tf.transpose(k[::-1, ::-1], [0, 1, 3, 2])
    want_gx = tf.nn.conv2d(u, k_adj, 1, 'SAME', dilations=dilation)
    self.assertAllClose(gx, want_gx, atol=1e-4, rtol=1e-4)
    # d/dk[a, b, i, o] = sum over pixels of x shifted by (a-1, b-1) * dilation times u.
    pad = dilation
    xp = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    want_gk = np.zeros(k.shape, np.float32)
    for a in range(3):
      for b in range(3):
        xs = xp[:, a * dilation:a * dilation + 10, b * dilation:b * dilation + 8, :]
        want_gk[a, b] = tf.einsum('nhwi,nhwo->io', xs, u).numpy()
    self.assertAllClose(gk, want_gk, atol=1e-4, rtol=1e-4)

  def test_conv2d_layer_trains_on_this_cpu_in_float32_and_bfloat16(self):
    # Whatever path this process takes (oneDNN on or off), the dilated layer
    # has finite forward and backward passes in both compute dtypes.
    rng = np.random.default_rng(0)
    layer = layers.Conv2D(rng, 2, 3, dilation=2)
    for dtype in (tf.float32, tf.bfloat16):
      x = tf.cast(tf.random.stateless_uniform((2, 12, 8, 2), [1, 2]), dtype)

      @tf.function
      def step(x):
        with tf.GradientTape() as tape:
          loss = tf.reduce_mean(tf.cast(layer(x), tf.float32) ** 2)
        return tape.gradient(loss, layer.trainable_variables)

      grads = step(x)
      for g in grads:
        self.assertTrue(np.all(np.isfinite(g.numpy())), msg=f'{dtype.name}')

  def test_native_path_only_where_onednn_runs(self):
    if not compute.onednn_enabled():
      self.assertFalse(layers.native_dilated_conv(tf.float32))
      self.assertFalse(layers.native_dilated_conv(tf.bfloat16))
    else:
      self.assertTrue(layers.native_dilated_conv(tf.float32))
      self.assertEqual(layers.native_dilated_conv(tf.bfloat16), compute.has_native_bf16())

  def test_layer_output_is_the_same_on_both_paths(self):
    rng = np.random.default_rng(3)
    layer = layers.Conv2D(rng, 4, 4, dilation=4)
    x = tf.random.stateless_normal((2, 24, 16, 4), [3, 3])
    want = tf.nn.conv2d(x, layer.kernel, 1, 'SAME', dilations=4) + layer.bias
    self.assertAllClose(layer(x), want, atol=1e-5, rtol=1e-5)


if __name__ == '__main__':
  tf.test.main()
