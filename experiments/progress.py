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
  """Reports each finished level of a batch: a redrawn bar on a terminal, else log lines."""

  def __init__(self, log, n_levels: int, n_batches: int, tty: Optional[bool] = None):
    self.log = log
    self.n_levels = n_levels
    self.n_batches = n_batches
    self.tty = sys.stderr.isatty() if tty is None else tty
    self.batch = 0
    self.done = 0
    self.t0 = time.time()

  def start(self, batch: int):
    self.batch = batch
    self.done = 0
    self.t0 = time.time()

  def __call__(self, level: int, sigma: float):
    del level  # levels a schedule skips are not counted
    self.done += 1
    done = self.done
    elapsed = time.time() - self.t0
    left = elapsed / done * (self.n_levels - done)
    text = (f'batch {self.batch + 1}/{self.n_batches}: level {done}/{self.n_levels} '
            f'(sigma {sigma:.3g}), {format_eta(elapsed)} in, batch ETA {format_eta(left)}')
    if self.tty:
      bar = '#' * done + '.' * (self.n_levels - done)
      end = '\n' if done == self.n_levels else ''
      sys.stderr.write(f'\r  [{bar}] {text}  {end}')
      sys.stderr.flush()
    else:
      self.log(f'  {text}')
