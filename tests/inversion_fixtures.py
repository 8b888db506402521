"""Shared signals and helpers of the inversion command tests (not a test module)."""

import os
import subprocess
import sys

import numpy as np

from pipeline import FeatureConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = 16000
# Small features so the tests are quick: 32 frames of hop 128 per patch.
FEATURES = FeatureConfig(n_fft=512, hop_length=128, n_mels=40, fmin=0.0, fmax=8000.0,
                         patch_frames=32, patch_samples=31 * 128)


def sources(n_samples):
  t = np.arange(n_samples) / SR
  a = 0.3 * np.sin(2 * np.pi * (220 * t + 40 * t ** 2))
  b = 0.15 * np.sign(np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 1250 * t)
  return np.stack([a, b]).astype(np.float32)


def run_script(script, *args):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
  return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], env=env,
                        capture_output=True, text=True, timeout=300, check=False)


def sdr(s, s_hat):
  return 10 * np.log10(np.sum(s ** 2) / np.sum((s - s_hat) ** 2))
