"""How good is an exported score prior where BASIS uses it: Tweedie denoising per level.

``basis.denoising_error`` on held-out patches: ``MSE(x + sigma^2 s(x), x0) /
sigma^2`` at each of the prior's noise levels (1: no better than the noisy
input, 0: perfect), plus the PSNRs of the noisy and denoised patches.
"""

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np

from basis.diagnostics import denoising_error
from basis import registry
from pipeline import datasets
from pipeline import tfrecords
from pipeline.config import FeatureConfig
from common.errors import ParameterError


@dataclasses.dataclass(frozen=True)
class PriorQualityConfig:
  """Attributes:
    prior_dir: exported NCSN prior folder.
    data_dir: held-out patch folder(s) (TFRecords; every record is used).
    n_examples: patches to probe.
    precision: network precision.
    seed: noise seed.
  """
  prior_dir: str
  data_dir: str
  n_examples: int = 128
  precision: str = 'float32'
  seed: int = 0


def run(config: PriorQualityConfig) -> List[Dict[str, Any]]:
  """One row per level: ``sigma``, ``mse_ratio``, ``psnr_noisy_db``, ``psnr_denoised_db``."""
  prior, _ = registry.load_prior(config.prior_dir, compute_dtype=config.precision)
  features: Optional[FeatureConfig] = prior.features
  ds, _ = datasets.get_dataset('melspec', 'all', batch_size=None, data_dir=config.data_dir,
                               shuffle=False, features=features)
  with tfrecords.naming_damaged_records():
    x = np.stack([p.numpy() for p in ds.take(config.n_examples)])
  if len(x) == 0:
    raise ParameterError(f'{config.data_dir} holds no patches')
  return denoising_error(prior, x, prior.sigmas, seed=config.seed)


def markdown(rows: List[Dict[str, Any]]) -> str:
  lines = ['| sigma | MSE / sigma^2 | PSNR noisy (dB) | PSNR denoised (dB) |',
           '|---:|---:|---:|---:|']
  for r in rows:
    lines.append(f"| {r['sigma']:.4g} | {r['mse_ratio']:.3f} | {r['psnr_noisy_db']:.2f} | "
                 f"{r['psnr_denoised_db']:.2f} |")
  return '\n'.join(lines)
