"""A family of noise-conditioned flows: one exported prior per noise level.

``family_dir/family.json``::

  {"kind": "flow_family", "version": 1,
   "sigmas": [0.01, ..., 1.0],               # the planned levels, ascending
   "levels": [{"sigma": 0.01, "prior": "sigma_00"}, ...],   # the finished ones
   "complete": true, "base_prior": "...", "steps_per_sigma": 2000,
   "description": {"model": "glow", "flow": {...}, "image_shape": [...], ...}}

Each ``prior`` is a folder (relative to ``family_dir``) written by
``flow_models.export.export_prior``. ``basis.flow_prior.FlowFamilyPrior``
loads a family as one prior.
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flow_models.export import load_flow
from common.errors import ParameterError
from common.atomic import write_json_atomic

FAMILY_FILE = 'family.json'
KIND = 'flow_family'
VERSION = 1


def write_family(family_dir: str, levels: Sequence[Dict[str, Any]], *, sigmas: Sequence[float],
                 base_prior: str = None, steps_per_sigma: int = None,
                 description: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
  """Writes ``family.json`` atomically and returns its content.

  Args:
    family_dir: the family folder.
    levels: finished levels, ``[{'sigma': float, 'prior': folder name}]``.
    sigmas: all planned levels.
    base_prior, steps_per_sigma, description: provenance. ``base_prior`` is
      stored relative to ``family_dir`` (the pair moves together; an absolute
      path would name the machine the family was trained on).
  """
  if base_prior is not None:
    base_prior = os.path.relpath(os.path.abspath(base_prior), os.path.abspath(family_dir))
  doc = {'kind': KIND, 'version': VERSION,
         'sigmas': sorted(float(s) for s in sigmas),
         'levels': [{'sigma': float(e['sigma']), 'prior': str(e['prior'])} for e in levels],
         'complete': len(levels) == len(sigmas),
         'base_prior': base_prior, 'steps_per_sigma': steps_per_sigma,
         'description': description or {}}
  write_json_atomic(os.path.join(family_dir, FAMILY_FILE), doc)
  return doc


def read_family(family_dir: str, *, missing_ok: bool = False) -> Optional[Dict[str, Any]]:
  """Reads and checks ``family.json``.

  Raises:
    ParameterError: missing (unless ``missing_ok``: then None), not json, or
      not a flow family.
  """
  path = os.path.join(family_dir, FAMILY_FILE)
  if not os.path.exists(path):
    if missing_ok:
      return None
    raise ParameterError(f'{family_dir} is not a flow family: no {FAMILY_FILE} (make one '
                         'with train_glow.py --mode=finetune_noise)')
  try:
    with open(path) as f:
      doc = json.load(f)
  except ValueError as e:
    raise ParameterError(f'{path} is not valid json: {e}') from e
  if not isinstance(doc, dict) or doc.get('kind') != KIND or not isinstance(
      doc.get('levels'), list):
    raise ParameterError(f'{path} does not describe a flow family')
  return doc


def load_family(family_dir: str, *, allow_incomplete: bool = False
                ) -> Tuple[np.ndarray, List[Any], Dict[str, Any]]:
  """Loads every level of a family.

  Args:
    family_dir: folder with ``family.json``.
    allow_incomplete: load the finished levels of an unfinished family.

  Returns:
    ``(sigmas, distributions, doc)``: float64 ``[L]`` ascending, the flows in
    the same order, and the family json.

  Raises:
    ParameterError: not a family, unfinished, no levels, levels of different
      image shapes, or a damaged member.
  """
  doc = read_family(family_dir)
  if not doc['complete'] and not allow_incomplete:
    raise ParameterError(
        f'family {family_dir} is unfinished ({len(doc["levels"])} of {len(doc["sigmas"])} '
        'levels); rerun the fine-tuning or pass allow_incomplete=True')
  if not doc['levels']:
    raise ParameterError(f'family {family_dir} has no finished level')
  levels = sorted(doc['levels'], key=lambda e: e['sigma'])
  sigmas = np.asarray([e['sigma'] for e in levels], np.float64)
  distributions, shapes = [], set()
  for e in levels:
    dist, meta = load_flow(os.path.join(family_dir, e['prior']))
    if not np.isclose(float(meta.get('noise_sigma', -1.0)), e['sigma'], rtol=1e-6):
      raise ParameterError(f'{e["prior"]} in {family_dir} was trained at noise_sigma='
                           f'{meta.get("noise_sigma")}, but family.json says {e["sigma"]}')
    distributions.append(dist)
    shapes.add(tuple(meta['image_shape']))
  if len(shapes) != 1:
    raise ParameterError(f'family {family_dir} mixes image shapes {sorted(shapes)}')
  return sigmas, distributions, doc
