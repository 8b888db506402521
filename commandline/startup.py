"""What every command does before TensorFlow loads: quiet start-up, --help, flag names.

Every console script's entry point is the launcher here (``separate_audio =
commandline.startup:separate_audio``, one attribute per name in
:data:`commandline.scripts.SCRIPTS`); a script run as ``python X.py`` imports
this module first, which does the same for it::

  import commandline.startup  # first import: quiet start-up, --help before TensorFlow

Before the script module (and with it TensorFlow) is imported:

* quiet by default: TensorFlow's C++ start-up lines (CUDA factories, oneDNN,
  CPU features, TensorRT), its Python warnings and XLA's ``I0000`` lines are
  not shown. ``--verbosity=N`` (absl's flag, also ``-v N``) brings them back:
  0 and above everything, -1 warnings, -2 errors. A ``TF_CPP_MIN_LOG_LEVEL``
  set in the environment is kept.
* Keras: ``TF_USE_LEGACY_KERAS=1`` (unless set), so TensorFlow 2.16 does not
  load Keras 3 at import (1.9 s); TensorFlow Probability uses tf-keras anyway.
* ``--help`` (``-?``, ``--helpshort``) is answered from the flag index
  (``commandline/flag_index.json``, kept current by a test) and exits 0; a
  flag the command does not define is one line and exit status 2, both
  without importing TensorFlow. Flag values are checked by the command.

Standard library only: importing this module costs milliseconds.
"""

import functools
import importlib
import json
import logging
import os
import re
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

from commandline.scripts import SCRIPTS

INDEX_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'flag_index.json')
HELP_ARGS = ('--help', '-help', '-?', '--helpshort', '-helpshort')
EXIT_ERROR = 2
# absl's special flags that every command accepts (absl.app defines them in app.run).
ABSL_SPECIAL = ('help', 'helpshort', 'helpfull', 'helpxml', 'flagfile', 'undefok', '?')
# absl flags that a command's --help lists beside its own.
ABSL_LISTED = ('verbosity',)
# XLA / absl-cpp log lines that no environment variable silences (TF 2.16-2.21): info and
# warnings, and TF 2.21's error line for a machine without a GPU. Written before absl-cpp
# is initialised, they carry the date 0000 00:00 and the epoch seconds, which tells them
# from absl's Python log lines (a real date: our own logging.info / warning are kept).
_CPP_NOISE = re.compile(
    r'^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to '
    r'STDERR|[IW]0000 00:00:\d+\.\d+ +\d+ [\w./+-]+:\d+\] .*'
    r'|E0000 00:00:\d+\.\d+ +\d+ cuda_platform\.cc:\d+\] failed call to cuInit.*)$')
_PREPARED = set()


# ------------------------------------------------------------------- verbosity
def verbosity(argv: Sequence[str]) -> Optional[int]:
  """The ``--verbosity`` (``-v``) value on the command line, or None when not given."""
  args = list(argv[1:])
  for i, arg in enumerate(args):
    if arg == '--':
      break
    m = re.fullmatch(r'--?(?:verbosity|v)(?:=(.*))?', arg)
    if m:
      value = m.group(1) if m.group(1) is not None else (args[i + 1] if i + 1 < len(args)
                                                         else '')
      try:
        return int(value)
      except ValueError:
        return None   # absl reports the bad value
  return None


def quiet(argv: Sequence[str]) -> bool:
  """Sets TensorFlow's log levels from ``--verbosity``; returns whether it is quiet.

  Must run before TensorFlow is imported (the C++ level is read at load).
  """
  level = verbosity(argv)
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  if level is None:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
    logging.getLogger('tensorflow').setLevel(logging.ERROR)
    return True
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = str(min(3, max(0, -level)))
  return False


class _StderrFilter:
  """Drops XLA's absl-cpp log lines from file descriptor 2 (the rest passes in order)."""

  def __init__(self):
    self._saved = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    self._reader = os.fdopen(read_fd, 'rb', buffering=0)
    self._thread = threading.Thread(target=self._pump, name='stderr-filter', daemon=True)
    self._thread.start()

  def _pump(self):
    pending = b''
    while True:
      chunk = self._reader.read(65536)
      if not chunk:
        break
      pending += chunk
      *lines, pending = pending.split(b'\n')
      out = b''.join(line + b'\n' for line in lines
                     if not _CPP_NOISE.match(line.decode('utf-8', 'replace')))
      if out:
        os.write(self._saved, out)
    if pending:
      os.write(self._saved, pending)

  def close(self):
    """Restores fd 2 and writes out what is left (at exit)."""
    try:
      sys.stderr.flush()
    except (OSError, ValueError):
      pass
    os.dup2(self._saved, 2)   # closes the pipe's last write end: the pump sees EOF
    self._thread.join(timeout=5)


def _filter_stderr():
  import atexit  # pylint: disable=g-import-not-at-top
  try:
    atexit.register(_StderrFilter().close)
  except OSError:
    pass   # no fd 2 to filter (a closed stderr): nothing to hide either


# ------------------------------------------------------------------- flag help
def _ours(module: str) -> bool:
  """Whether absl's defining-module name is the project's (a package, a script, ``__main__``)."""
  from commandline.scripts import PACKAGES  # pylint: disable=g-import-not-at-top
  return (module.split('.')[0] in PACKAGES or module in SCRIPTS.values()
          or module.endswith('.py') or module in ('__main__', sys.argv[0]))


def describe_flags(flag_values=None) -> Dict[str, Any]:
  """The command's flags as the index stores them.

  Returns:
    ``{'flags': {name: {'help', 'default', 'boolean', 'short'}}, 'accepted': [names]}``:
    the flags ``--help`` lists (the project's and absl's ``--verbosity``) and
    the names of the others absl also accepts (absl's, TensorFlow's).
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  # absl.logging defines --verbosity (listed by every command) when first imported; a
  # command whose imports do not reach it would otherwise list it only by chance.
  from absl import logging as _  # pylint: disable=g-import-not-at-top,unused-import
  fv = flag_values if flag_values is not None else flags.FLAGS
  described, other_names = {}, set()
  for module, flag_list in fv.flags_by_module_dict().items():
    for flag in flag_list:
      if not _ours(module) and flag.name not in ABSL_LISTED:
        other_names.add(flag.name)
        if flag.short_name:
          other_names.add(flag.short_name)
        continue
      described[flag.name] = {
          'help': flag.help, 'default': flag.default_as_str, 'boolean': bool(flag.boolean),
          'short': flag.short_name}
  return {'flags': dict(sorted(described.items())), 'accepted': sorted(other_names)}


def help_text(doc: Optional[str], described: Dict[str, Any]) -> str:
  """``--help``: the command's docstring, then each of its flags with its default."""
  from textwrap import fill  # pylint: disable=g-import-not-at-top
  lines = [(doc or '').rstrip(), '', 'flags:']
  for name, f in described['flags'].items():
    spelled = f'--[no]{name}' if f['boolean'] else f'--{name}'
    if f.get('short'):
      spelled = f"-{f['short']},{spelled}"
    lines.append(fill(f"{spelled}: {f['help']}", width=90, initial_indent='  ',
                      subsequent_indent='    '))
    if f['default'] is not None:
      lines.append(f"    (default: {f['default']})")
  lines += ['', 'absl and TensorFlow flags (logging, --flagfile, ...): --helpfull.']
  return '\n'.join(lines) + '\n'


def wants_help(argv: Sequence[str]) -> bool:
  args = list(argv[1:])
  args = args[:args.index('--')] if '--' in args else args
  return any(a in HELP_ARGS for a in args)


def unknown_flag(argv: Sequence[str], described: Dict[str, Any]) -> Optional[str]:
  """The first ``--name`` in ``argv`` that the command does not define, or None."""
  known = described['flags']
  accepted = set(known) | set(described.get('accepted', ())) | set(ABSL_SPECIAL)
  accepted |= {f['short'] for f in known.values() if f.get('short')}
  args = list(argv[1:])
  if any(a.lstrip('-').startswith(('flagfile', 'undefok')) for a in args):
    return None   # absl reads further flags from a file / accepts unknown ones
  skip = False
  for arg in args:
    if skip:
      skip = False
      continue
    if arg == '--':
      break
    if not arg.startswith('-') or arg == '-' or re.fullmatch(r'-[\d.]+(e-?\d+)?', arg):
      continue
    name, has_value = arg.lstrip('-').partition('=')[::2], '=' in arg
    name = name[0]
    flag = known.get(name)
    if flag is not None:
      skip = not flag['boolean'] and not has_value
    elif name.startswith('no') and known.get(name[2:], {}).get('boolean'):
      continue
    elif name not in accepted:
      return name
  return None


@functools.lru_cache(maxsize=None)
def flag_index() -> Dict[str, Any]:
  """``{script module: {'doc', 'flags', 'absl'}}``; empty when the file is missing or
  was written for other sources (``commandline.flag_index``: a digest of them)."""
  try:
    with open(INDEX_FILE, encoding='utf-8') as f:
      index = json.load(f)
  except (OSError, ValueError):
    return {}
  from commandline.scripts import source_digest  # pylint: disable=g-import-not-at-top
  if index.get('digest') != source_digest():
    return {}
  return index.get('scripts', {})


def command_name(module: str) -> str:
  """The console-script name of a script module (``demo`` -> ``basis_demo``)."""
  return next((name for name, mod in SCRIPTS.items() if mod == module), module)


def prepare(module: str, argv: Optional[List[str]] = None) -> None:
  """Quiet start-up, then ``--help`` and unknown flags from the index (exits), for ``module``.

  Does nothing the second time for the same module.
  """
  if module in _PREPARED:
    return
  _PREPARED.add(module)
  argv = sys.argv if argv is None else argv
  entry = flag_index().get(module)
  if entry is not None:
    if wants_help(argv):
      sys.stdout.write(help_text(entry['doc'], entry))
      sys.exit(0)
    bad = unknown_flag(argv, entry)
    if bad is not None:
      print(f"{command_name(module)}: error: Unknown command line flag '{bad}' "
            '(--help lists the flags)', file=sys.stderr, flush=True)
      sys.exit(EXIT_ERROR)
  if quiet(argv):
    _filter_stderr()


def launch(name: str) -> None:
  """The console script ``name``: :func:`prepare`, then the script module's ``run()``."""
  module = SCRIPTS[name]
  prepare(module)
  importlib.import_module(module).run()


def __getattr__(name: str):
  """``commandline.startup.<console script name>``: its entry point (setup.py)."""
  if name in SCRIPTS:
    return functools.partial(launch, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def _prepare_main_script():
  """``python X.py`` of a script: prepare it when this module is its first import."""
  main = sys.modules.get('__main__')
  path = getattr(main, '__file__', None) or ''
  module = os.path.splitext(os.path.basename(path))[0]
  if module in SCRIPTS.values() and os.path.dirname(os.path.abspath(path)) == os.path.dirname(
      os.path.dirname(os.path.abspath(__file__))):
    prepare(module)


_prepare_main_script()
