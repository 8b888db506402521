"""Shared pytest set-up: quiet TensorFlow, keep the tests on the CPU."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
# Every command a test runs into an error also checks that the message suggests
# only flags the command defines (commandline.cli_errors, exit status 3 if not).
os.environ['BASIS_SEP_STRICT_ADVICE'] = '1'

from absl import flags  # pylint: disable=g-import-not-at-top

# absltest helpers (create_tempdir, ...) read flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()


def pytest_collection_modifyitems(config, items):
  """Drops ``test_session``: tf.test.TestCase's context manager (not a test), which
  pytest collected from every TestCase class and reported as one skip each."""
  del config
  items[:] = [item for item in items if item.name != 'test_session']
