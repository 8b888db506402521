"""The prior registry: one place that decides a prior folder's kind and loads it.

A prior folder names its own kind in the json it carries: an exported NCSN
(``train_ncsn.py --mode=export``) has ``config.json`` with ``"model": "ncsn"``;
a noise-conditioned flow family (``train_glow.py --mode=finetune_noise``) has
``family.json`` with ``"kind": "flow_family"``. :func:`kind_of` reads that,
:func:`load_prior` loads the folder through the kind's adapter, and the kind
carries what BASIS needs to know about priors of its kind (where a cold start
begins, the paper schedule's step size, whether the measured 'fast' schedule
applies). Commands never branch on the kind themselves.

Every adapter returns a prior with the public surface BASIS and the commands use:

- ``score(x, sigma)``: ``grad_x log p_sigma(x)``, float32 of ``x``'s shape;
- ``sigmas``: float64 ``[L]``, the levels it was trained for (any order);
- ``event_shape``: ``(height, width, channels)`` of one example;
- ``metadata``: the folder's description (dict; ``{}`` when built in memory);
- ``features``: the mel ``FeatureConfig`` it was trained on, or None for images.

A new prior kind is one adapter (a class with that surface) and one
:func:`register_kind` call::

  register_kind(PriorKind(name='my_kind', marker='config.json',
                          matches=lambda doc: doc.get('model') == 'my_kind',
                          load=lambda folder, compute_dtype: MyPrior(folder),
                          init='uniform', paper_step_size=3e-5))
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

from common.errors import ParameterError


@dataclasses.dataclass(frozen=True)
class PriorKind:
  """One kind of prior folder and what BASIS needs to know about it.

  Attributes:
    name: the kind's name (``--prior_kind``).
    marker: the json file in the folder that names the kind.
    matches: ``marker``'s parsed json -> whether the folder is of this kind.
    load: ``(folder, compute_dtype) -> prior`` (the adapter).
    init: where a cold BASIS start draws from: ``'uniform'`` (U[0, 1], data
      in [0, 1]) or ``'normal'`` (N(0, I), a flow's base).
    paper_step_size: delta of the paper's schedule for priors of this kind
      (a flow's score is rougher than a score network's).
    fast_sampler: the measured 'fast' schedule applies (docs/basis.md); where
      False, 'fast' stays the paper's schedule.
    default_sampler: the sampler a command uses when none is named: 'fast', or
      'latent' for flows (``basis.latent``; measured in docs/flows.md).
    aliases: other names accepted for ``name``.
  """

  name: str
  marker: str
  matches: Callable[[Dict[str, Any]], bool]
  load: Callable[[str, str], Any]
  init: str
  paper_step_size: float
  fast_sampler: bool = True
  default_sampler: str = 'fast'
  aliases: Tuple[str, ...] = ()

  def __post_init__(self):
    if self.init not in ('uniform', 'normal'):
      raise ParameterError(f"init must be 'uniform' or 'normal', got {self.init!r}")
    if not self.paper_step_size > 0:
      raise ParameterError(f'paper_step_size must be > 0, got {self.paper_step_size!r}')


_KINDS: Dict[str, PriorKind] = {}


def register_kind(kind: PriorKind) -> PriorKind:
  """Adds ``kind`` to the registry (a name already taken is an error).

  Raises:
    ParameterError: the name or an alias is already registered.
  """
  for name in (kind.name,) + tuple(kind.aliases):
    if name in _names():
      raise ParameterError(f'prior kind {name!r} is already registered')
  _KINDS[kind.name] = kind
  return kind


def _names() -> Dict[str, str]:
  out = {}
  for kind in _KINDS.values():
    out[kind.name] = kind.name
    out.update({a: kind.name for a in kind.aliases})
  return out


def kinds() -> List[str]:
  """The registered kind names."""
  return sorted(_KINDS)


def get_kind(name: str) -> PriorKind:
  """The kind called ``name`` (or one of its aliases).

  Raises:
    ParameterError: an unknown name, listing the registered ones.
  """
  names = _names()
  if name not in names:
    raise ParameterError(f'unknown prior kind {name!r}; registered kinds: {kinds()}')
  return _KINDS[names[name]]


def _read_marker(folder: str, marker: str) -> Optional[Dict[str, Any]]:
  path = os.path.join(folder, marker)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      doc = json.load(f)
  except (OSError, ValueError) as e:
    raise ParameterError(f'{path} is not readable json ({e}): the prior folder is damaged; '
                         're-export it') from e
  return doc if isinstance(doc, dict) else None


def kind_of(folder: str) -> PriorKind:
  """The kind that ``folder`` names in its own json.

  Raises:
    ParameterError: a missing folder, or one that no registered kind claims.
  """
  if not os.path.isdir(folder):
    raise ParameterError(f'prior folder {folder} does not exist')
  for kind in _KINDS.values():
    doc = _read_marker(folder, kind.marker)
    if doc is not None and kind.matches(doc):
      return kind
  markers = sorted({k.marker for k in _KINDS.values()})
  raise ParameterError(f'{folder} is not a prior folder of any registered kind {kinds()}: '
                       f'none of {markers} names one (export a trained run first)')


def load_prior(folder: str, *, compute_dtype: str = 'float32',
               kind: Optional[str] = None):
  """Loads the prior in ``folder`` through its kind's adapter.

  Args:
    folder: an exported prior folder.
    compute_dtype: 'float32' or 'bfloat16' (score networks; flows ignore it).
    kind: insist on this kind (e.g. a command's ``--prior_kind``); None: the
      folder's own.

  Returns:
    ``(prior, PriorKind)``.

  Raises:
    ParameterError: the folder is of another kind than ``kind``, or cannot be
      loaded.
  """
  found = kind_of(folder)
  if kind is not None and get_kind(kind).name != found.name:
    raise ParameterError(f'{folder} holds a {found.name} prior, not a {get_kind(kind).name} '
                         f'prior (--prior_kind={found.name} loads it)')
  return found.load(folder, compute_dtype), found


def _load_ncsn(folder, compute_dtype):
  from basis.priors import NCSNPrior  # pylint: disable=g-import-not-at-top
  return NCSNPrior(folder, compute_dtype=compute_dtype)


def _load_flow_family(folder, compute_dtype):
  del compute_dtype  # flows run in float32
  from basis.flow_prior import FlowFamilyPrior  # pylint: disable=g-import-not-at-top
  return FlowFamilyPrior(folder)


register_kind(PriorKind(
    name='ncsn', marker='config.json', matches=lambda doc: doc.get('model') == 'ncsn',
    load=_load_ncsn, init='uniform', paper_step_size=3e-5))
register_kind(PriorKind(
    name='flow_family', marker='family.json',
    matches=lambda doc: doc.get('kind') == 'flow_family', load=_load_flow_family,
    init='normal', paper_step_size=3e-6, fast_sampler=False, default_sampler='latent',
    aliases=('flow',)))
