"""Every command turns an expected error into one line and exit status 2."""

import os
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
import pytest

from basis.separate import DivergenceError
from commandline import cli_errors
from common.errors import ParameterError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check_positive(x):
  del x
  raise ParameterError('--steps must be > 0, got 0')


def _exit_and_stderr(main, *, name='cmd', resumable=False, expected=()):
  """Runs a guarded main; returns (exit code, captured stderr)."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    try:
      cli_errors.guard(main, name, resumable=resumable, expected=expected)(['cmd'])
    except SystemExit as e:
      return e.code, err.getvalue()
  return None, err.getvalue()


class GuardTest(absltest.TestCase):

  def _raise(self, error):
    def main(argv):
      del argv
      raise error
    return main

  def test_parameter_error_is_one_line_and_exit_2(self):
    code, err = _exit_and_stderr(self._raise(ParameterError("--n_mels must be > 0, got 0")),
                                 name='wav_to_spec')
    self.assertEqual(code, 2)
    self.assertEqual(err, 'wav_to_spec: error: --n_mels must be > 0, got 0\n')

  def test_divergence_and_floating_point_errors_are_one_line(self):
    for error in (DivergenceError('BASIS diverged at level 0'),
                  FloatingPointError('loss is NaN at step 3')):
      code, err = _exit_and_stderr(self._raise(error), name='train_ncsn')
      self.assertEqual(code, 2)
      self.assertEqual(err.count('\n'), 1)
      self.assertStartsWith(err, 'train_ncsn: error: ')

  def test_multi_line_message_is_joined_on_one_line(self):
    code, err = _exit_and_stderr(self._raise(ParameterError('first\nsecond')))
    self.assertEqual(code, 2)
    self.assertEqual(err, 'cmd: error: first; second\n')

  def test_extra_expected_class_is_one_line(self):
    class MissingTool(RuntimeError):
      pass
    code, err = _exit_and_stderr(self._raise(MissingTool('install fluidsynth')),
                                 expected=(MissingTool,))
    self.assertEqual((code, err), (2, 'cmd: error: install fluidsynth\n'))

  def test_interrupt_exits_130_and_says_rerun_when_resumable(self):
    code, err = _exit_and_stderr(self._raise(KeyboardInterrupt()), resumable=True)
    self.assertEqual(code, 130)
    self.assertIn('rerun the same command to resume', err)
    code, err = _exit_and_stderr(self._raise(KeyboardInterrupt()), resumable=False)
    self.assertEqual(code, 130)
    self.assertNotIn('resume', err)

  def test_a_real_bug_keeps_its_traceback(self):
    with self.assertRaisesRegex(ZeroDivisionError, 'division'):
      _exit_and_stderr(self._raise(ZeroDivisionError('division by zero')))

  def test_error_raised_while_tracing_is_one_line(self):
    # Issue 29 item 9: AutoGraph re-raised it as a StagingError of 34 lines.
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    @tf.function
    def traced(x):
      _check_positive(x)
      return x

    code, err = _exit_and_stderr(lambda argv: traced(tf.constant(1.0)), name='run_basis_sep')
    self.assertEqual((code, err), (2, 'run_basis_sep: error: --steps must be > 0, got 0\n'))

  def test_bug_while_handling_an_expected_error_keeps_its_traceback(self):
    def main(argv):
      del argv
      try:
        raise ParameterError('expected')
      except ParameterError:
        raise KeyError('a bug in the handler')   # pylint: disable=raise-missing-from
    with self.assertRaises(KeyError):
      _exit_and_stderr(main)

  def test_usage_error_is_one_line(self):
    from absl import app  # pylint: disable=g-import-not-at-top
    code, err = _exit_and_stderr(self._raise(app.UsageError("unexpected arguments: ['x']")))
    self.assertEqual((code, err), (2, "cmd: error: unexpected arguments: ['x']\n"))

  def test_flag_errors_are_one_line_and_exit_2(self):
    # absl's own parser prints several lines and exits 1.
    import contextlib  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top
    from absl import flags  # pylint: disable=g-import-not-at-top
    fv = flags.FlagValues()
    flags.DEFINE_float('window_s', 1.0, 'A float.', flag_values=fv)
    for argv, message in ((['cmd', '--window_s=abc'], "flag --window_s=abc: could not convert"),
                          (['cmd', '--no_such_flag'], "Unknown command line flag 'no_such_flag'")):
      err = io.StringIO()
      with contextlib.redirect_stderr(err), mock.patch.object(flags, 'FLAGS', fv):
        with self.assertRaises(SystemExit) as ctx:
          cli_errors.parse_flags('evaluate_separation')(argv)
      self.assertEqual(ctx.exception.code, 2)
      self.assertEqual(err.getvalue().count('\n'), 1)
      self.assertStartsWith(err.getvalue(), f'evaluate_separation: error: {message}')
      self.assertIn('--help lists the flags', err.getvalue())

  def test_return_value_passes_through(self):
    code, err = _exit_and_stderr(lambda argv: 0)
    self.assertEqual((code, err), (None, ''))


# (script, bad flags, a piece of the expected message). Each fails in its flag
# checks, before any data or model work.
_BAD_FLAGS = [
    ('wav_to_spec', ['--in_dir={tmp}', '--out_dir={tmp}/o', '--n_mels=0'], 'n_mels'),
    ('render_instruments', ['--out_dir={tmp}/r', '--duration_s=-1'], 'duration_s'),
    ('train_ncsn', ['--mode=sample'], '--prior'),
    ('train_glow', ['--mode=sample'], '--prior'),
    ('run_basis_sep', ['--step_size=-1', '--out_dir={tmp}/b'], '--step_size'),
    ('oracle_systems', ['--references={tmp}', '--out_dir={tmp}/o', '--methods=XYZ'], 'XYZ'),
    ('evaluate_separation', ['--references={tmp}', '--estimates=bad', '--out_dir={tmp}/e'],
     "'bad'"),
    ('mel_to_wav', ['--input={tmp}/none.wav', '--output={tmp}/x.wav'], 'none.wav'),
    ('melspec_inversion_basis', ['--basis_dir={tmp}/none'], '--mixture_wav'),
    ('train_inversion_net', ['--kind=refiner', '--workdir={tmp}/n', '--train_data={tmp}/*.wav'],
     'no file matches'),
    ('mel_inversion_table', ['--out_dir={tmp}/t', '--phases=fgla@x'], 'fgla@x'),
]


class AdviceTest(absltest.TestCase):
  """A message may suggest only flags its command defines (issue 29 item 10)."""

  def test_flags_named_leaves_out_other_commands_flags(self):
    self.assertEqual(cli_errors.flags_named(
        '--steps must be > 0; pass --noresume or --out_dir=D (train_ncsn.py --mode=export '
        '--workdir=W first)'), ['noresume', 'out_dir', 'steps'])
    self.assertEqual(cli_errors.flags_named('a--b is not a flag; x --y-z'), ['y'])

  def test_undefined_flags_against_a_commands_flags(self):
    from absl import flags  # pylint: disable=g-import-not-at-top
    fv = flags.FlagValues()
    flags.DEFINE_integer('steps', 1, 'Steps.', flag_values=fv)
    flags.DEFINE_boolean('resume', True, 'Resume.', flag_values=fv)
    self.assertEqual(cli_errors.undefined_flags(
        '--steps must be > 0; pass --noresume or --pad_or_truncate', fv), ['pad_or_truncate'])

  def test_strict_mode_turns_bad_advice_into_exit_3(self):
    def main(argv):
      del argv
      raise ParameterError('lengths differ; pass --surely_not_a_flag_anywhere')
    with mock.patch.dict(os.environ, {cli_errors.STRICT_ADVICE_ENV: '1'}):
      self.assertEqual(_exit_and_stderr(main)[0], 2)      # guard() alone never checks
      code, err = _exit_and_stderr_checked(main)
    self.assertEqual(code, cli_errors.EXIT_BAD_ADVICE)
    self.assertIn("bad advice: the message suggests ['--surely_not_a_flag_anywhere']", err)
    with mock.patch.dict(os.environ, {cli_errors.STRICT_ADVICE_ENV: ''}):
      self.assertEqual(_exit_and_stderr_checked(main)[0], 2)


def _exit_and_stderr_checked(main):
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  err = io.StringIO()
  with contextlib.redirect_stderr(err):
    try:
      cli_errors.guard(main, 'cmd', check_advice=True)(['cmd'])
    except SystemExit as e:
      return e.code, err.getvalue()
  return None, err.getvalue()


@pytest.mark.slow
class ScriptsTest(absltest.TestCase):

  def test_every_command_prints_one_error_line_and_exits_2(self):
    tmp = self.create_tempdir().full_path
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', CUDA_VISIBLE_DEVICES='')
    procs = []
    for script, flags, _ in _BAD_FLAGS:   # all at once: each is mostly the TF import
      args = [sys.executable, os.path.join(ROOT, script + '.py')]
      args += [f.format(tmp=tmp) for f in flags]
      procs.append(subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True))
    for (script, _, needle), proc in zip(_BAD_FLAGS, procs):
      _, err = proc.communicate(timeout=600)
      with self.subTest(script=script):
        self.assertEqual(proc.returncode, 2, err)
        errors = [l for l in err.splitlines() if l.startswith(f'{script}: error: ')]
        self.assertLen(errors, 1, err)
        self.assertIn(needle, errors[0])
        self.assertNotIn('Traceback', err)


if __name__ == '__main__':
  absltest.main()
