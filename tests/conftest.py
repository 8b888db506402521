"""Shared pytest set-up: quiet TensorFlow, keep the tests on the CPU."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

from absl import flags  # pylint: disable=g-import-not-at-top

# absltest helpers (create_tempdir, ...) read flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()
