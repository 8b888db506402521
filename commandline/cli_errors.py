"""One-line errors for every command-line script.

Every absl main goes through :func:`run_main`: an expected error (a
:class:`~common.errors.ParameterError`, a ``basis.DivergenceError`` or any
other ``FloatingPointError`` from a training loop, and the extra classes a
script names) becomes one line on stderr,

  <command>: error: <message>

with exit status 2; so does a bad command line (absl's flag errors, which
absl itself reports in several lines with status 1, and ``app.UsageError``),
and an expected error raised while TensorFlow traces a function (AutoGraph
wraps it in a ``StagingError`` of many lines; the original is reported). An
interrupt (Ctrl-C, or SIGTERM turned into one by the training loop) exits
with status 130, and, for a command that resumes, says "rerun the same
command to resume". Anything else is a bug and keeps its traceback.

  def run():
    cli_errors.run_main(main, 'wav_to_spec')
"""

import functools
import os
import re
import sys
from typing import Callable, List, Optional, Sequence, Type

from common.errors import ParameterError

EXIT_ERROR = 2
EXIT_INTERRUPT = 130
EXIT_BAD_ADVICE = 3
EXPECTED_ERRORS = (ParameterError, FloatingPointError)
# With this variable set (the test suite sets it), a command whose error message
# suggests a flag it does not define exits with EXIT_BAD_ADVICE instead of 2, so
# every test that runs a command into an error also checks the advice.
STRICT_ADVICE_ENV = 'BASIS_SEP_STRICT_ADVICE'
_FLAG = re.compile(r'(?<![\w.-])--([a-z][a-z0-9_]*)')
# "train_ncsn.py --mode=export ..." names another command's flags: not checked.
_OTHER_COMMAND = re.compile(r'\b[a-z_]+\.py((\s+--?[^\s;,)]+)+)')


def flags_named(message: str) -> List[str]:
  """The ``--flag`` names a message suggests for the command that prints it.

  Flags written after another command's name (``train_ncsn.py --mode=export``)
  are that command's and are left out.
  """
  own = _OTHER_COMMAND.sub(' ', message)
  return sorted(set(_FLAG.findall(own)))


def undefined_flags(message: str, flag_values=None) -> List[str]:
  """The flags ``message`` suggests that ``flag_values`` (default: absl's FLAGS) lacks."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  fv = flag_values if flag_values is not None else flags.FLAGS
  defined = set(fv)
  out = []
  for name in flags_named(message):
    base = name[2:] if name.startswith('no') and name[2:] in defined else name
    if base not in defined:
      out.append(name)
  return out


def one_line(error: BaseException) -> str:
  """The message of ``error`` on one line (newlines joined by '; ')."""
  text = str(error).strip() or type(error).__name__
  return '; '.join(part.strip() for part in text.splitlines() if part.strip())


def guard(main: Callable, name: str, *, resumable: bool = False,
          expected: Sequence[Type[BaseException]] = (), check_advice: bool = False) -> Callable:
  """Wraps an absl ``main(argv)`` so that expected errors print one line.

  Args:
    main: the script's ``main(argv)``.
    name: the command name printed before ``error:`` (e.g. ``'wav_to_spec'``).
    resumable: an interrupted run continues when the same command runs
      again; the interrupt message says so.
    expected: more exception classes to report in one line (e.g. a missing
      system dependency).
    check_advice: with ``$BASIS_SEP_STRICT_ADVICE`` set, an error message that
      suggests a flag the command does not define exits with status 3
      (:data:`EXIT_BAD_ADVICE`) and says so (the test suite's check).

  Returns:
    ``main`` wrapped: it raises ``SystemExit(2)`` after an expected error and
    ``SystemExit(130)`` after an interrupt.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  caught = tuple(EXPECTED_ERRORS) + tuple(expected) + (app.UsageError,)

  def report(error):
    text = one_line(error)
    print(f'{name}: error: {text}', file=sys.stderr, flush=True)
    bad = undefined_flags(text) if check_advice and os.environ.get(STRICT_ADVICE_ENV) else []
    if bad:
      print(f'{name}: bad advice: the message suggests {["--" + b for b in bad]}, which '
            f'{name} does not define', file=sys.stderr, flush=True)
      sys.exit(EXIT_BAD_ADVICE)
    sys.exit(EXIT_ERROR)

  @functools.wraps(main)
  def wrapped(argv):
    try:
      return main(argv)
    except caught as e:
      report(e)
    except KeyboardInterrupt:
      hint = '; rerun the same command to resume' if resumable else ''
      print(f'\n{name}: interrupted{hint}', file=sys.stderr, flush=True)
      sys.exit(EXIT_INTERRUPT)
    except Exception as e:  # pylint: disable=broad-except
      original = traced_cause(e, caught)
      if original is None:
        raise
      report(original)

  return wrapped


def traced_cause(error: BaseException, caught) -> Optional[BaseException]:
  """The expected error that AutoGraph re-raised as ``error``, or None.

  An exception raised while ``tf.function`` traces is re-raised by AutoGraph
  with its frames in the message ("in user code: File ..."); a class it does
  not know how to rebuild (ours: ``ParameterError``) becomes a
  ``StagingError``. The original is the re-raised error's context. Only
  errors AutoGraph marked (``ag_error_metadata``) are unwrapped, so a bug
  raised while handling an expected error keeps its traceback.
  """
  seen = set()
  while (error is not None and id(error) not in seen
         and getattr(error, 'ag_error_metadata', None) is not None):
    seen.add(id(error))
    inner = error.__cause__ or error.__context__
    if isinstance(inner, caught):
      return inner
    error = inner
  return None


def parse_flags(name: str) -> Callable:
  """An absl ``flags_parser``: a bad command line is one line and exit status 2.

  absl's own parser prints "FATAL Flags parsing error" and a hint on
  several lines and exits with status 1.
  """

  def parse(argv):
    from absl import flags  # pylint: disable=g-import-not-at-top
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      print(f'{name}: error: {one_line(e)} (--help lists the flags)', file=sys.stderr,
            flush=True)
      sys.exit(EXIT_ERROR)

  return parse


def answer_help(main: Callable, argv: Optional[Sequence[str]] = None) -> None:
  """``--help`` (``-?``, ``--helpshort``): the script's docstring and all its flags, exit 0.

  absl's own ``--help`` lists only the flags of ``sys.argv[0]``'s module (none
  for an installed console script) and exits 1; ``--helpfull`` stays absl's.
  """
  from commandline import startup  # pylint: disable=g-import-not-at-top
  argv = sys.argv if argv is None else argv
  if startup.wants_help(argv):
    module = sys.modules.get(getattr(main, '__module__', '__main__'))
    sys.stdout.write(startup.help_text(getattr(module, '__doc__', None),
                                       startup.describe_flags()))
    sys.stdout.flush()
    sys.exit(0)


def run_main(main: Callable, name: str, *, resumable: bool = False,
             expected: Sequence[Type[BaseException]] = ()) -> None:
  """``absl.app.run`` of ``main`` under :func:`guard` (never returns); ``--help`` lists
  every flag of the command and exits 0 (:func:`answer_help`)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  answer_help(main)
  app.run(guard(main, name, resumable=resumable, expected=expected, check_advice=True),
          flags_parser=parse_flags(name))
