"""The plain-kernel path (no oneDNN) on machines where oneDNN is on by default.

TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` once, at import, so the other path
needs another process. Where oneDNN is already off in this run (AMD Zen 3 and
other CPUs without AVX-512-class features, or ``TF_ENABLE_ONEDNN_OPTS=0``),
the main run has covered it and this test is skipped.
"""

import os
import subprocess
import sys

import pytest

from common import compute

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tests that broke without oneDNN (dilated convolutions and their
# gradients in the score network and the NCSN training script).
FILES = ('tests/test_dilated_conv.py', 'tests/test_score_network.py',
         'tests/test_train_ncsn_script.py', 'tests/test_vocoder.py')


@pytest.mark.slow
def test_score_network_and_ncsn_training_pass_without_onednn():
  if not compute.onednn_enabled():
    pytest.skip('oneDNN is off in this run already: the main run covered this path')
  env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS='0', TF_CPP_MIN_LOG_LEVEL='2')
  cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *FILES]
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=900, check=False)
  assert proc.returncode == 0, (
      f'with TF_ENABLE_ONEDNN_OPTS=0: {" ".join(cmd)} failed\n'
      + proc.stdout[-6000:] + proc.stderr[-3000:])
  # The child really ran without oneDNN (its own check of the switch).
  probe = subprocess.run(
      [sys.executable, '-c', 'from common import compute; print(compute.onednn_enabled())'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)
  assert probe.stdout.strip().splitlines()[-1] == 'False'
