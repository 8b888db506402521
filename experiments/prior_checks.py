"""Checks a separation run makes before it starts: is the step size stable for each
prior, were the source folders made with the same features, was each prior
trained on data like these. ``run_basis_sep.py`` (``experiments.basis_sep``) runs them.
"""

from typing import Optional

import numpy as np

from basis import diagnostics
from pipeline.config import FeatureConfig
from common.errors import ParameterError


def _full_precision(prior, prior_dir):
  """The prior to probe: a float32 copy of an NCSN prior that computes in bfloat16.

  The finite difference of :func:`basis.diagnostics.score_roughness` moves the
  input by 1 % of sigma, below bfloat16's resolution (about 0.4 % of a value)
  at the small levels, so a bfloat16 score looks rough where the network is
  smooth (the shipped MNIST prior: ``eta*L`` 3.2 in bfloat16, 0.5 in float32
  at sigma 0.01 with delta 6e-5). Rounding noise does not grow along a chain;
  the Lipschitz constant is the network's, so it is measured in float32.
  """
  import os  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from basis.priors import NCSNPrior  # pylint: disable=g-import-not-at-top
  dtype = getattr(getattr(prior, 'model', None), 'compute_dtype', None)
  if (not isinstance(prior, NCSNPrior) or dtype is None or tf.as_dtype(dtype) == tf.float32
      or not isinstance(prior_dir, str) or not os.path.isdir(prior_dir)):
    return prior
  return NCSNPrior(prior_dir, compute_dtype='float32')


def check_step_size(priors, prior_dirs, sources, sigmas, step_size, *, n_probe=32,
                    limit=1.0, log=print):
  """Warns when ``eta_i L_i`` of a prior's score passes ``limit`` at some level.

  Probes each distinct prior at up to ``n_probe`` clean examples of a source
  it models, plus each level's noise (:func:`basis.diagnostics.stability_table`).
  The clean examples only locate the data; the separation never sees them.
  An NCSN prior that computes in bfloat16 is probed in float32
  (:func:`_full_precision`).

  Returns:
    ``{prior_dir: worst level row}``.
  """
  worst = {}
  seen = set()
  for k, prior in enumerate(priors):
    if id(prior) in seen:
      continue
    seen.add(id(prior))
    rows = diagnostics.stability_table(_full_precision(prior, prior_dirs[k]),
                                       np.asarray(sources[k][:n_probe]), sigmas, step_size)
    row = max(rows, key=lambda r: r['eta_L_p90'])
    worst[prior_dirs[k]] = row
    if row['eta_L_p90'] > limit:
      safer = float(f"{step_size * 0.5 / row['eta_L_p90']:.1g}")
      where = 'beyond' if row['eta_L_p90'] > 2 else 'near'
      log(f"warning: step size {step_size:g} is {where} the stability limit of "
          f"{prior_dirs[k]}: eta*L = {row['eta_L_p90']:.2f} at sigma {row['sigma']:.3g} "
          f"(90th percentile; Langevin diverges above about 2); "
          f"--step_size={safer:g} would give 0.5 (docs/basis.md)")
    else:
      log(f"step check: eta*L <= {row['eta_L_p90']:.2f} for {prior_dirs[k]} "
          f"(worst level sigma {row['sigma']:.3g}, 90th percentile): stable")
  return worst


def record_step_check(description, priors, prior_dirs, sources, sigmas, step_size):
  """Runs :func:`check_step_size`; its rows and warnings go into ``description``."""
  lines = []

  def log(line):
    print(line, flush=True)
    lines.append(line)

  worst = check_step_size(priors, prior_dirs, sources, sigmas, step_size, log=log)
  description['step_check'] = {d: {k: float(v) for k, v in row.items()}
                               for d, row in worst.items()}
  description['warnings'] = list(description.get('warnings') or []) + [
      l for l in lines if l.startswith('warning')]


def _feature_diff(a: FeatureConfig, b: FeatureConfig) -> str:
  da, db = a.to_dict(), b.to_dict()
  return ', '.join(f'{k} {da.get(k)!r} vs {db.get(k)!r}' for k in sorted(set(da) | set(db))
                   if da.get(k) != db.get(k))


def check_same_features(first: Optional[FeatureConfig], other: Optional[FeatureConfig],
                        first_dir: str, other_dir: str) -> FeatureConfig:
  """The features shared by two patch folders; a clear error when they differ or are absent.

  Raises:
    ParameterError: naming both folders and the differing parameters.
  """
  if other is None:
    raise ParameterError(f'{other_dir} records no feature parameters (metadata.json); '
                         'remake it with wav_to_spec.py')
  if first is not None and first != other:
    raise ParameterError(f'the source folders were made with different features: '
                         f'{first_dir} and {other_dir} differ in {_feature_diff(first, other)}')
  return other


def check_prior_matches_data(prior, prior_dir: str, image_shape, features):
  """Raises ParameterError when a prior was trained on other shapes or features.

  Compares the ``image_shape`` and ``dataset.features`` that an exported
  prior's ``config.json`` records with the data's. Priors without that record
  (a user's own object) are not checked.

  Args:
    prior: a prior object; its public ``metadata`` (the registry's surface,
      ``basis.registry``) says what it was trained on (a flow family's under
      ``description``).
    prior_dir: its folder, for the message.
    image_shape: ``(height, width, channels)`` of the data.
    features: the data's ``FeatureConfig``, or None for images.
  """
  meta = getattr(prior, 'metadata', None) or {}
  meta = meta.get('description', meta)
  shape = meta.get('image_shape')
  if shape is not None and tuple(shape) != tuple(int(v) for v in image_shape):
    raise ParameterError(f'prior {prior_dir} was trained on shape {tuple(shape)}, the data '
                         f'have shape {tuple(int(v) for v in image_shape)}')
  dataset = meta.get('dataset') or {}
  trained = dataset.get('features') if isinstance(dataset, dict) else None
  if dataset.get('name') and (trained is None) != (features is None):
    kind = 'images' if trained is None else 'mel patches'
    data_kind = 'images' if features is None else 'mel patches'
    raise ParameterError(f'prior {prior_dir} was trained on {kind} '
                         f"({dataset.get('name')!r}), the data are {data_kind}")
  if trained is not None and features is not None:
    trained = FeatureConfig.from_dict(trained)
    if trained != features:
      raise ParameterError(f'prior {prior_dir} was trained on features that differ from '
                           f"the data's: {_feature_diff(trained, features)} (prior vs data)")
