"""What a separation run leaves behind: the picture, the saturation check, timing,
and the rule that ``results.json`` is written last."""

import os
from typing import Dict, Optional

import numpy as np

from basis.separate import SATURATION_LIMIT, Separator, clipped_fraction
from common import figures


def save_image_grid(path: str, mixtures, estimates, references, *, n_rows: int = 8,
                    colormap: Optional[str] = None):
  """Rows of [mixture | estimate_1..K | reference_1..K] as one PNG."""
  k = estimates.shape[0]
  rows = []
  for i in range(min(n_rows, mixtures.shape[0])):
    rows += [mixtures[i]] + [estimates[j, i] for j in range(k)] + [
        references[j, i] for j in range(k)]
  imgs = np.clip(np.stack(rows), 0.0, 1.0)
  if colormap and imgs.shape[-1] == 1:
    imgs = figures.colorize(imgs, cmap=colormap)
  figures.save_png(path, figures.make_grid(imgs, ncols=1 + 2 * k), scale=3)


def saturation_report(separator: Separator, estimates: np.ndarray, *, log=print,
                      limit: float = SATURATION_LIMIT) -> Dict:
  """The share of clipped estimates; warns when it passes ``limit``.

  Returns:
    ``{'clipped_fraction': float, 'saturated': bool}`` for ``results.json``,
    with ``'warning'`` (the text logged) when saturated.
  """
  fraction = clipped_fraction(estimates, separator.clip)
  out = {'clipped_fraction': fraction, 'saturated': bool(fraction > limit)}
  if out['saturated']:
    out['warning'] = (
        f'warning: {100 * fraction:.1f} % of the estimates sit exactly at the clip bounds '
        f'{tuple(float(v) for v in separator.clip)}: the chains blew up without reaching '
        f'NaN; the results are not a separation. Lower the step size (now '
        f'{separator.step_size:g}) (docs/basis.md)')
    log(out['warning'])
  return out


def add_saturation(results: Dict, separator: Separator, estimates: np.ndarray, log):
  """Adds :func:`saturation_report` to ``results`` (its warning to ``warnings``)."""
  report = saturation_report(separator, estimates, log=log)
  warning = report.pop('warning', None)
  results.update(report)
  if warning:
    results['warnings'] = list(results.get('warnings') or []) + [warning]


def start_output_set(out_dir: str):
  """Removes an earlier run's ``results.json`` before new outputs are written.

  ``results.json`` is written last, so the outputs beside it are one set: a
  run killed between its writes leaves no ``results.json`` (incomplete)
  rather than new estimates next to old results.
  """
  try:
    os.remove(os.path.join(out_dir, 'results.json'))
  except FileNotFoundError:
    pass


def timing(stats: Dict) -> Dict:
  """Speed of the batches computed by this invocation (not resumed ones), from the
  ``stats`` of :func:`experiments.batches.separate_in_batches`."""
  out = {'seconds': stats['seconds'], 'mixtures_resumed': stats['resumed']}
  out['mixtures_per_second'] = (stats['computed'] / stats['seconds']
                                if stats['computed'] else None)
  return out
