"""Writes ``commandline/flag_index.json``: every command's docstring and flags.

:mod:`commandline.startup` answers ``--help`` and refuses unknown flags from
it before TensorFlow loads, but only while it is current: it stores a digest
of the project's Python sources and is ignored (the command imports and
answers itself, correctly but after TensorFlow's start-up) when they changed.
Regenerate it before building a wheel (``make wheel`` does)::

  python -m commandline.flag_index            # all commands, one process each
"""

import json
import os
import subprocess
import sys
from typing import Any, Dict

from commandline.scripts import ROOT, SCRIPTS, source_digest


def describe_script(module: str) -> Dict[str, Any]:
  """Imports ``module`` in this process and describes its flags (``startup.describe_flags``)."""
  import importlib  # pylint: disable=g-import-not-at-top
  from commandline import startup  # pylint: disable=g-import-not-at-top
  loaded = importlib.import_module(module)
  if hasattr(loaded, 'define_flags'):   # scripts that define their flags in run()
    loaded.define_flags()
  return dict(doc=loaded.__doc__, **startup.describe_flags())


def describe_in_subprocess(module: str) -> Dict[str, Any]:
  """:func:`describe_script` in a fresh interpreter (absl flags are process-global)."""
  code = ('import json, sys; from commandline import flag_index; '
          f'json.dump(flag_index.describe_script({module!r}), sys.stdout)')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_USE_LEGACY_KERAS='1',
             PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])))
  proc = subprocess.run([sys.executable, '-c', code], env=env, cwd=ROOT, capture_output=True,
                        text=True, check=False)
  if proc.returncode:
    raise RuntimeError(f'describing {module} failed:\n{proc.stderr[-2000:]}')
  return json.loads(proc.stdout)


def build_index() -> Dict[str, Any]:
  """``{'digest', 'scripts': {module: description}}`` for every script module."""
  from concurrent import futures  # pylint: disable=g-import-not-at-top
  modules = sorted(set(SCRIPTS.values()))
  with futures.ThreadPoolExecutor(max_workers=2) as pool:
    described = dict(zip(modules, pool.map(describe_in_subprocess, modules)))
  return {'digest': source_digest(), 'scripts': described}


def main():
  from commandline import startup  # pylint: disable=g-import-not-at-top
  index = build_index()
  tmp = startup.INDEX_FILE + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(index, f, indent=1, sort_keys=True)
    f.write('\n')
  os.replace(tmp, startup.INDEX_FILE)
  print(f'wrote {startup.INDEX_FILE} ({len(index["scripts"])} commands)')


if __name__ == '__main__':
  main()
