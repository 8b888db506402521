"""What ``run_basis_sep.py`` does, as a function of a FLAGS-like object."""

import os
import sys
from typing import Optional

import numpy as np

from basis import diagnostics
from basis.mixing import get_mixing
from basis.flow_prior import FlowFamilyPrior
from basis.priors import NCSNPrior
from basis.sampler import parse_level_steps, sampler_settings
from basis.separate import Separator
from experiments import image_separation as experiment
from pipeline import cli_errors
from pipeline import compute
from pipeline import datasets
from pipeline.config import FeatureConfig
from pipeline.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PRIORS = {'mnist': os.path.join(ROOT, 'assets', 'priors', 'ncsn_mnist')}


def _load_priors(flags, n_sources):
  dirs = flags.prior_dir or []
  if not dirs:
    if flags.dataset not in DEFAULT_PRIORS:
      raise ParameterError(f'--prior_dir is required for dataset {flags.dataset!r}')
    dirs = [DEFAULT_PRIORS[flags.dataset]]
    if not os.path.isdir(dirs[0]):
      raise ParameterError(
          f'the shipped {flags.dataset} prior is not at {dirs[0]}: it lives in the source '
          "checkout's assets/priors (a wheel install does not carry it); install from the "
          'checkout (make install) or pass --prior_dir')
  if flags.prior == 'ncsn':
    dtype = compute.resolve_precision(flags.precision, bfloat16=flags.bfloat16)
    loaded = [NCSNPrior(d, compute_dtype=dtype) for d in dirs]
  elif flags.prior == 'flow':
    loaded = [FlowFamilyPrior(d) for d in dirs]
  else:
    raise ParameterError(f'unknown --prior {flags.prior!r}')
  if len(loaded) == 1:
    return loaded * n_sources, dirs * n_sources   # one object: batched scoring
  if len(loaded) != n_sources:
    raise ParameterError(f'give one --prior_dir or one per source ({n_sources}), '
                         f'got {len(loaded)}')
  return loaded, dirs


def _sigmas(flags, priors):
  if flags.num_levels:
    return np.geomspace(flags.sigma_max, flags.sigma_min, flags.num_levels)
  # The prior's own levels, largest first (a flow family lists them ascending).
  return np.sort(np.asarray(priors[0].sigmas, np.float64))[::-1]


def _level_steps_flag(flags):
  steps = parse_level_steps(getattr(flags, 'level_steps', None))
  return steps if steps is not None else getattr(flags, 'steps_per_sigma', None)


def _separator_settings(flags, mixing_fn, sigmas):
  """The Separator keyword arguments of --sampler with the flags that override it."""
  settings = sampler_settings(
      getattr(flags, 'sampler', 'paper'), mixing=mixing_fn, prior_kind=flags.prior,
      steps_per_sigma=_level_steps_flag(flags), step_size=flags.step_size,
      constraint=getattr(flags, 'constraint', None), denoise=getattr(flags, 'denoise', None))
  kwargs = settings.separator_kwargs(sigmas)
  if getattr(flags, 'start_sigma', None) is not None:
    kwargs['start_sigma'] = None if flags.start_sigma == 0 else flags.start_sigma
  return kwargs


def check_step_size(priors, prior_dirs, sources, sigmas, step_size, *, n_probe=32,
                    limit=1.0, log=print):
  """Warns when ``eta_i L_i`` of a prior's score passes ``limit`` at some level.

  Probes each distinct prior at up to ``n_probe`` clean examples of a source
  it models, plus each level's noise (:func:`basis.diagnostics.stability_table`).
  The clean examples only locate the data; the separation never sees them.

  Returns:
    ``{prior_dir: worst level row}``.
  """
  worst = {}
  seen = set()
  for k, prior in enumerate(priors):
    if id(prior) in seen:
      continue
    seen.add(id(prior))
    rows = diagnostics.stability_table(prior, np.asarray(sources[k][:n_probe]), sigmas,
                                       step_size)
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


def _record_step_check(description, priors, prior_dirs, sources, sigmas, step_size):
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
    prior: a prior object (``NCSNPrior`` has ``model.prior_metadata``;
      ``FlowFamilyPrior`` has ``metadata``).
    prior_dir: its folder, for the message.
    image_shape: ``(height, width, channels)`` of the data.
    features: the data's ``FeatureConfig``, or None for images.
  """
  meta = getattr(getattr(prior, 'model', None), 'prior_metadata', None)
  if meta is None:
    meta = getattr(prior, 'metadata', None) or {}
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


def _schedule_text(separator) -> str:
  """E.g. '10 levels x 20 steps, hard constraint, Tweedie step: 201 calls per source'."""
  steps = separator.level_steps[separator.active_levels]
  if len(set(steps.tolist())) == 1:
    text = f'{len(steps)} levels x {steps[0]} steps'
  else:
    text = f'steps per level {steps.tolist()}'
  if separator.start_sigma:
    text += f' from a warm start at sigma {separator.start_sigma:.3g}'
  text += f', {separator.constraint} constraint'
  if separator.denoise:
    text += ', Tweedie step'
  return f'{text}, delta {separator.step_size:g}: {separator.calls_per_source} calls per source'


def run_from_flags(flags):
  """Loads data and priors, separates, writes results; returns the results dict."""
  n_sources = flags.n_sources
  cli_errors.check_positive(flags, 'n_mixtures', 'batch_size', 'steps_per_sigma',
                            'n_sources', 'step_size')
  cli_errors.check_output_dir(flags.out_dir)
  priors, prior_dirs = _load_priors(flags, n_sources)
  sigmas = _sigmas(flags, priors)
  description = {
      'command': ' '.join(sys.argv), 'dataset': flags.dataset,
      'prior': flags.prior, 'prior_dirs': prior_dirs,
      'sigmas': [float(s) for s in sigmas], 'likelihood_scale': flags.likelihood_scale,
      'sampler': getattr(flags, 'sampler', 'paper'), 'seed': flags.seed,
      'batch_size': flags.batch_size}
  if flags.dataset in ('mnist', 'cifar10'):
    mixing = flags.mixing or 'mean'
    ds, info = datasets.get_dataset(
        flags.dataset, 'test', batch_size=None, shuffle=False,
        data_dir=flags.data_dir[0] if flags.data_dir else None,
        mnist_source=flags.mnist_source)
    images = np.stack([x.numpy() for x in ds])
    for prior, prior_dir in zip(priors, prior_dirs):
      check_prior_matches_data(prior, prior_dir, images.shape[1:], None)
    sources = experiment.image_pairs(images, n_mixtures=flags.n_mixtures,
                                     n_sources=n_sources, seed=flags.seed)
    description.update(mixing=mixing, data_note=info.get('note'))
    separator = Separator(priors, sigmas=sigmas, mixing=mixing, clip=(0.0, 1.0),
                          likelihood_scale=flags.likelihood_scale,
                          **_separator_settings(flags, get_mixing(mixing), sigmas))
    description.update(separator.settings())
    init = None if separator.start_sigma else ('normal' if flags.prior == 'flow' else 'uniform')
    if flags.check_step:
      _record_step_check(description, priors, prior_dirs, sources, sigmas,
                         separator.step_size)
    print(f'separating {len(sources[0])} {flags.dataset} mixtures of {n_sources} '
          f'({_schedule_text(separator)})', flush=True)
    results = experiment.run_image_separation(
        separator, sources, mixing_fn=get_mixing(mixing), out_dir=flags.out_dir,
        batch_size=flags.batch_size, seed=flags.seed, description=description, init=init,
        resume=flags.resume)
    speed = results['mixtures_per_second']
    speed = f'{speed:.3f} mixtures/s' if speed else 'all batches resumed'
    print(f"mean PSNR {results['mean_psnr_db']:.2f} dB over {results['n_mixtures']} "
          f"mixtures (no separation, the mixture split equally: "
          f"{results['equal_split_psnr_db']:.2f} dB) ({speed}); wrote "
          f"{flags.out_dir}/results.json and separation.png", flush=True)
    return results
  if flags.dataset == 'melspec':
    if not flags.data_dir or len(flags.data_dir) != n_sources:
      raise ParameterError(f'--dataset=melspec needs one --data_dir per source '
                           f'({n_sources}), e.g. piano and violin patch folders')
    features = None
    per_source = []
    for d in flags.data_dir:
      ds, info = datasets.get_dataset('melspec', 'test', batch_size=None, data_dir=d,
                                      shuffle=False)
      features = check_same_features(features, info['features'], flags.data_dir[0], d)
      per_source.append(np.stack([x.numpy() for x in ds.take(flags.n_mixtures)]))
    for prior, prior_dir in zip(priors, prior_dirs):
      check_prior_matches_data(prior, prior_dir, features.patch_shape, features)
    n = min(len(p) for p in per_source)
    if n < flags.n_mixtures:
      short = [d for d, p in zip(flags.data_dir, per_source) if len(p) == n]
      note = (f'warning: --n_mixtures={flags.n_mixtures} but {short[0]} has only {n} test '
              f'patch(es): separating {n}')
      print(note, flush=True)
      description.setdefault('warnings', []).append(note)
    sources = np.stack([p[:n] for p in per_source])
    mixing = flags.mixing or 'db_power_sum'
    mixing_fn = get_mixing(mixing, features=features)
    description.update(mixing=mixing)
    separator = Separator(priors, sigmas=sigmas, mixing=mixing_fn, clip=(0.0, 1.0),
                          likelihood_scale=flags.likelihood_scale,
                          **_separator_settings(flags, mixing_fn, sigmas))
    description.update(separator.settings())
    print(f'separating {n} mel patch mixtures ({_schedule_text(separator)})', flush=True)
    if flags.check_step:
      _record_step_check(description, priors, prior_dirs, sources, sigmas,
                         separator.step_size)
    results = experiment.run_mel_separation(
        separator, sources, mixing_fn=mixing_fn, out_dir=flags.out_dir,
        batch_size=flags.batch_size, features=features.to_dict(), seed=flags.seed,
        description=description, resume=flags.resume)
    print(f"mean abs error per source (dB): {results['mean_abs_error_db_per_source']}; "
          f"wrote {flags.out_dir}", flush=True)
    return results
  raise ParameterError(f'unknown dataset {flags.dataset!r}')
