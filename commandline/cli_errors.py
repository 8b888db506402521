"""One-line errors for every command-line script.

Every absl main goes through :func:`run_main`: an expected error (a
:class:`~common.errors.ParameterError`, a ``basis.DivergenceError`` or any
other ``FloatingPointError`` from a training loop, and the extra classes a
script names) becomes one line on stderr,

  <command>: error: <message>

with exit status 2; an interrupt (Ctrl-C, or SIGTERM turned into one by the
training loop) exits with status 130, and, for a command that resumes, says
"rerun the same command to resume". Anything else is a bug and keeps its
traceback.

  def run():
    cli_errors.run_main(main, 'wav_to_spec')
"""

import functools
import sys
from typing import Callable, Sequence, Type

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
  caught = tuple(EXPECTED_ERRORS) + tuple(expected)

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

  return wrapped


def run_main(main: Callable, name: str, *, resumable: bool = False,
             expected: Sequence[Type[BaseException]] = ()) -> None:
  """``absl.app.run`` of ``main`` under :func:`guard` (never returns)."""
  from absl import app  # pylint: disable=g-import-not-at-top
  app.run(guard(main, name, resumable=resumable, expected=expected))
