"""Progress of a long separation: time left, and each finished noise level of a batch."""

import sys
import time
from typing import Optional


def format_eta(seconds: float) -> str:
  """``1h05m`` or ``3m07s``."""
  seconds = int(round(seconds))
  h, rem = divmod(seconds, 3600)
  return f'{h}h{rem // 60:02d}m' if h else f'{rem // 60}m{rem % 60:02d}s'


class LevelProgress:
  """Reports each finished level of a batch: a tqdm bar on a terminal, else log lines.

  Off a terminal (a log file, a pipe, a test) each level is one ``log`` line,
  ``batch 3/5: level 2/10 (sigma 0.6), 0m41s in, batch ETA 3m05s``; on one, a
  tqdm bar per batch on stderr (rate and ETA are tqdm's) and nothing is logged.
  A bar opens at the batch's first finished level, so a batch read back from
  the resume cache draws none.
  """

  def __init__(self, log, n_levels: int, n_batches: int, tty: Optional[bool] = None):
    self.log = log
    self.n_levels = n_levels
    self.n_batches = n_batches
    self.tty = sys.stderr.isatty() if tty is None else tty
    self.batch = 0
    self.done = 0
    self.t0 = time.time()
    self.bar = None

  def start(self, batch: int):
    self.close()
    self.batch = batch
    self.done = 0
    self.t0 = time.time()

  def close(self):
    """Closes the batch's bar, if one is drawn (the next ``start`` does it too)."""
    if self.bar is not None:
      self.bar.close()
      self.bar = None

  def __call__(self, level: int, sigma: float):
    del level  # levels a schedule skips are not counted
    self.done += 1
    done = self.done
    if self.tty:
      if self.bar is None:
        from tqdm import tqdm  # pylint: disable=g-import-not-at-top
        self.bar = tqdm(total=self.n_levels, desc=f'  batch {self.batch + 1}/{self.n_batches}',
                        unit='level', file=sys.stderr, leave=True)
      self.bar.set_postfix_str(f'sigma {sigma:.3g}', refresh=False)
      self.bar.update(1)
      if done >= self.n_levels:
        self.close()
      return
    elapsed = time.time() - self.t0
    left = elapsed / done * (self.n_levels - done)
    self.log(f'  batch {self.batch + 1}/{self.n_batches}: level {done}/{self.n_levels} '
             f'(sigma {sigma:.3g}), {format_eta(elapsed)} in, batch ETA {format_eta(left)}')
