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
import sys
from typing import Callable, Optional, Sequence, Type

from common.errors import ParameterError

EXIT_ERROR = 2
EXIT_INTERRUPT = 130
EXPECTED_ERRORS = (ParameterError, FloatingPointError)


def one_line(error: BaseException) -> str:
  """The message of ``error`` on one line (newlines joined by '; ')."""
  text = str(error).strip() or type(error).__name__
  return '; '.join(part.strip() for part in text.splitlines() if part.strip())


def guard(main: Callable, name: str, *, resumable: bool = False,
          expected: Sequence[Type[BaseException]] = ()) -> Callable:
  """Wraps an absl ``main(argv)`` so that expected errors print one line.

  Args:
    main: the script's ``main(argv)``.
    name: the command name printed before ``error:`` (e.g. ``'wav_to_spec'``).
    resumable: an interrupted run continues when the same command runs
      again; the interrupt message says so.
    expected: more exception classes to report in one line (e.g. a missing
      system dependency).

  Returns:
    ``main`` wrapped: it raises ``SystemExit(2)`` after an expected error and
    ``SystemExit(130)`` after an interrupt.
  """
  from absl import app  # pylint: disable=g-import-not-at-top
  caught = tuple(EXPECTED_ERRORS) + tuple(expected) + (app.UsageError,)

  @functools.wraps(main)
  def wrapped(argv):
    try:
      return main(argv)
    except caught as e:
      print(f'{name}: error: {one_line(e)}', file=sys.stderr, flush=True)
      sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
      hint = '; rerun the same command to resume' if resumable else ''
      print(f'\n{name}: interrupted{hint}', file=sys.stderr, flush=True)
      sys.exit(EXIT_INTERRUPT)
    except Exception as e:  # pylint: disable=broad-except
      original = traced_cause(e, caught)
      if original is None:
        raise
      print(f'{name}: error: {one_line(original)}', file=sys.stderr, flush=True)
      sys.exit(EXIT_ERROR)

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
      print(f'{name}: error: {one_line(e)} (--helpfull lists the flags)', file=sys.stderr,
            flush=True)
      sys.exit(EXIT_ERROR)

  return parse


def run_main(main: Callable, name: str, *, resumable: bool = False,
             expected: Sequence[Type[BaseException]] = ()) -> None:
  """``absl.app.run`` of ``main`` under :func:`guard` (never returns)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  app.run(guard(main, name, resumable=resumable, expected=expected),
          flags_parser=parse_flags(name))
