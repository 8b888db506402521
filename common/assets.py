"""Paths of the shipped assets: priors, inversion networks, separator models, demo clips.

They are the package data of the top-level ``assets`` package (the checkout's
``assets/`` folder, installed with the wheel), found through
:mod:`importlib.resources`, so a checkout, an editable install and a wheel
installed anywhere give the same answer::

  assets.path('priors', 'ncsn_piano')      # .../assets/priors/ncsn_piano
  assets.demo_dir()                        # .../assets/demo (mixture.wav, piano.wav, ...)

The layout under it::

  priors/<name>/                  exported priors (config.json + weights)
  inversion/{refiner,degli}/      the mel -> magnitude and phase networks
  separators/<task>/<method>/     separator.json (paths relative to it)
  demo/                           the 8.2 s piano + violin duet and its sources

Only path arithmetic: nothing here imports TensorFlow or reads a file.
"""

import functools
import importlib.resources
import os

from common.errors import ParameterError

PACKAGE = 'assets'


@functools.lru_cache(maxsize=None)
def root() -> str:
  """The folder of the shipped assets (a real folder: TensorFlow reads from it).

  Raises:
    ParameterError: if the ``assets`` package is missing or not a folder on
      disk (a broken or zipped install).
  """
  try:
    found = importlib.resources.files(PACKAGE)
  except ModuleNotFoundError as e:
    raise ParameterError(f'the shipped assets (package {PACKAGE!r}) are not installed; '
                         'reinstall basis-sep') from e
  folder = os.fspath(found) if isinstance(found, os.PathLike) else None
  if folder is None or not os.path.isdir(folder):
    raise ParameterError(f'the shipped assets are not a folder on disk ({found}); install '
                         'basis-sep unzipped (pip does)')
  return folder


def path(*parts: str) -> str:
  """``root()/parts...`` (not checked: callers say what is missing)."""
  return os.path.join(root(), *parts)


def prior_dir(name: str) -> str:
  """The shipped prior folder ``priors/<name>`` (e.g. ``'ncsn_piano'``)."""
  return path('priors', name)


def inversion_dir(kind: str) -> str:
  """The shipped inversion network folder ``inversion/<kind>`` (``'refiner'``, ``'degli'``)."""
  return path('inversion', kind)


def separators_dir() -> str:
  """The folder of the shipped separator models, ``separators/<task>/<method>``."""
  return path('separators')


def demo_dir() -> str:
  """The shipped demo clips: ``mixture.wav``, ``piano.wav``, ``violin.wav``, ``manifest.json``."""
  return path('demo')
