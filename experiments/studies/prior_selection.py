"""Choosing priors (and sampler settings) by the separation users hear, on held-out tracks.

Each candidate is a set of prior folders (one per source) plus basis options;
each separates the same references (e.g. the validation split: an unseen
soundfont at natural levels) through the separator seam and is scored with BSS
Eval v4. The table ranks candidates by the mean over sources of the median SDR
improvement over the mixture (SDRi), never by training loss. Finished candidates
are kept (``<out_dir>/<name>/summary.json``) and skipped on a rerun.

  python select_priors.py --references=out/select/references \
      --candidate=step1000:runs/snap/piano_1000,runs/snap/violin_1000 \
      --candidate=shipped:assets/priors/ncsn_piano,assets/priors/ncsn_violin \
      --out_dir=out/select
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from common.atomic import write_json_atomic
from common.errors import ParameterError
from experiments import evaluate_tracks
from experiments import separators


@dataclasses.dataclass(frozen=True)
class Candidate:
  """Attributes:
    name: a label (folder name of its results).
    prior_dirs: one prior folder per source, in the task's source order.
    options: basis options (``experiments.basis_separator.BasisOptions`` fields).
  """

  name: str
  prior_dirs: Tuple[str, ...]
  options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not self.name or any(c in self.name for c in '/\\') or self.name.startswith('.'):
      raise ParameterError(f'candidate name {self.name!r} must be a plain folder name')
    for d in self.prior_dirs:
      if not os.path.isdir(d):
        raise ParameterError(f'candidate {self.name}: prior folder {d} does not exist')


def parse_candidate(spec: str) -> Candidate:
  """``NAME:DIR,DIR[;key=value,...]`` -> :class:`Candidate`.

  Raises:
    ParameterError: a malformed spec.
  """
  name, sep, rest = spec.partition(':')
  if not sep or not rest:
    raise ParameterError(f'--candidate {spec!r}: expected NAME:PRIOR_DIR,PRIOR_DIR[;key=value]')
  dirs, _, opts = rest.partition(';')
  options = separators.parse_options(opts, where=f'--candidate {spec!r}')
  return Candidate(name=name, prior_dirs=tuple(d for d in dirs.split(',') if d),
                   options=options)


def _medians(summary: Dict[str, Any]) -> Dict[str, Dict[str, float]]:
  """``{method: {source: median SDR}}`` of an evaluate_tracks summary."""
  out: Dict[str, Dict[str, float]] = {}
  for row in summary['rows']:
    out.setdefault(row['method'], {})[row['source']] = float(row['SDR'])
  return out


def run(references_dir: str, candidates: Sequence[Candidate], out_dir: str, *,
        sources: Sequence[str] = ('piano', 'violin'), tracks: Optional[Sequence[str]] = None,
        base_options: Optional[Dict[str, Any]] = None, log=print) -> List[Dict[str, Any]]:
  """Scores every candidate on the same tracks; returns rows ranked by mean SDRi.

  Each candidate's prior folders separate ``sources`` in that order.

  Each row: ``name``, ``sdr`` and ``sdri`` per source (median over tracks),
  ``mean_sdri``, ``mixture_sdr`` per source, ``seconds_per_audio_second``.
  """
  rows = []
  for i, cand in enumerate(candidates):
    if len(cand.prior_dirs) != len(sources):
      raise ParameterError(f'candidate {cand.name}: {len(cand.prior_dirs)} prior folders for '
                           f'the {len(sources)} sources {list(sources)}')
    options = {**(base_options or {}), **dict(cand.options), 'prior_dirs': cand.prior_dirs,
               'names': tuple(sources)}
    log(f'[{i + 1}/{len(candidates)}] {cand.name}: {", ".join(cand.prior_dirs)} {cand.options}')
    summary = evaluate_tracks.run(evaluate_tracks.TrackEvalConfig(
        references_dir=references_dir, out_dir=os.path.join(out_dir, cand.name),
        tracks=tuple(tracks) if tracks else None, methods=('basis',),
        method_options={'basis': options}), log=lambda s: None)
    med = _medians(summary)
    label = separators.get_method('basis').table_label(options)
    basis, mix = med[label], med[evaluate_tracks.MIXTURE_METHOD]
    sdri = {s: basis[s] - mix[s] for s in basis}
    rows.append({'name': cand.name, 'prior_dirs': list(cand.prior_dirs),
                 'options': dict(cand.options), 'sdr': basis, 'sdri': sdri,
                 'mean_sdri': float(np.mean(list(sdri.values()))), 'mixture_sdr': mix,
                 'seconds_per_audio_second':
                     summary['seconds_per_audio_second_median'].get(label),
                 'n_tracks': summary['n_tracks']})
    log(f'    SDR ' + ', '.join(f'{s} {v:.2f}' for s, v in basis.items()) + ' dB; SDRi '
        + ', '.join(f'{s} {v:+.2f}' for s, v in sdri.items()) + ' dB')
  rows.sort(key=lambda r: -r['mean_sdri'])
  write_json_atomic(os.path.join(out_dir, 'selection.json'), {'rows': rows})
  with open(os.path.join(out_dir, 'selection.md'), 'w', encoding='utf-8') as f:
    f.write(markdown(rows))
  return rows


def markdown(rows: List[Dict[str, Any]]) -> str:
  """The ranking as a markdown table (median SDR and SDRi per source, dB)."""
  if not rows:
    return ''
  sources = list(rows[0]['sdr'])
  head = '| candidate | ' + ' | '.join(f'{s} SDR | {s} SDRi' for s in sources) + \
         ' | mean SDRi | s per audio s |'
  lines = [head, '|---|' + '---:|' * (2 * len(sources) + 2)]
  for r in rows:
    cells = ' | '.join(f"{r['sdr'][s]:.2f} | {r['sdri'][s]:+.2f}" for s in sources)
    speed = r['seconds_per_audio_second']
    lines.append(f"| {r['name']} | {cells} | {r['mean_sdri']:+.2f} | "
                 f"{speed:.2f} |" if speed else f"| {r['name']} | {cells} | "
                 f"{r['mean_sdri']:+.2f} | resumed |")
  mix = rows[0]['mixture_sdr']
  lines.append('')
  lines.append('mixture-as-estimate SDR: ' + ', '.join(f'{s} {v:.2f} dB' for s, v in mix.items()))
  return '\n'.join(lines) + '\n'
