"""The installed commands: entry points, --help, quiet start-up, package data, metadata."""

import json
import os
import subprocess
import sys
import tomllib

from absl.testing import absltest
from absl.testing import parameterized
import pytest

from commandline import startup
from commandline.scripts import PACKAGES, SCRIPTS
from common import assets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, CUDA_VISIBLE_DEVICES='')
for _name in ('TF_CPP_MIN_LOG_LEVEL', 'TF_USE_LEGACY_KERAS', 'BASIS_SEP_STRICT_ADVICE'):
  ENV.pop(_name, None)   # the commands' own defaults are under test


def _pyproject():
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)


def _launch(name, *args, env=ENV, timeout=600):
  """The console script ``name`` as pip installs it (the launcher), from another folder."""
  code = f'import sys; from commandline import startup; sys.argv[0] = {name!r}; ' \
         f'startup.{name}()'
  return subprocess.run([sys.executable, '-c', code, *args], env=env, cwd='/', text=True,
                        capture_output=True, timeout=timeout, check=False)


def _live(module, *args, timeout=600):
  """The script's own answer (imported, TensorFlow loaded), bypassing the flag index."""
  code = f'import sys; sys.argv[0] = {module!r}; import {module}; {module}.run()'
  return subprocess.run([sys.executable, '-c', code, *args], env=ENV, cwd='/', text=True,
                        capture_output=True, timeout=timeout, check=False)


class EntryPointTest(absltest.TestCase):

  def test_pyproject_scripts_are_the_launchers_of_scripts(self):
    expected = {name: f'commandline.startup:{name}' for name in SCRIPTS}
    self.assertEqual(_pyproject()['project']['scripts'], expected)

  def test_every_script_module_has_run_and_imports_startup_first(self):
    for module in sorted(set(SCRIPTS.values())):
      with open(os.path.join(ROOT, f'{module}.py'), encoding='utf-8') as f:
        source = f.read()
      self.assertIn('\ndef run():', source, module)
      first_import = next(line for line in source.splitlines()
                          if line.startswith(('import ', 'from ')))
      self.assertTrue(first_import.startswith('import commandline.startup'),
                      f'{module}: first import is {first_import!r}')

  def test_launcher_attribute_per_script(self):
    for name in SCRIPTS:
      self.assertTrue(callable(getattr(startup, name)))
    with self.assertRaises(AttributeError):
      getattr(startup, 'no_such_command')

  def test_requires_python_claims_the_running_version(self):
    from packaging.specifiers import SpecifierSet  # pylint: disable=g-import-not-at-top
    running = f'{sys.version_info.major}.{sys.version_info.minor}'
    self.assertIn(running, SpecifierSet(_pyproject()['project']['requires-python']))

  def test_classifiers_list_the_versions_requires_python_admits(self):
    from packaging.specifiers import SpecifierSet  # pylint: disable=g-import-not-at-top
    project = _pyproject()['project']
    admitted = [f'3.{minor}' for minor in range(8, 20)
                if f'3.{minor}' in SpecifierSet(project['requires-python'])]
    prefix = 'Programming Language :: Python :: 3.'
    listed = [c.rsplit(' ', 1)[-1] for c in project['classifiers'] if c.startswith(prefix)]
    self.assertEqual(listed, admitted)

  def test_pinned_dependencies_are_the_constraints_files_pins(self):
    # The Makefile installs each Python with one constraints file; the exact pins
    # (TensorFlow, TFP, tf-keras, tensorflow-io) of pyproject.toml must be its pins.
    from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
    from packaging.utils import canonicalize_name  # pylint: disable=g-import-not-at-top
    project = _pyproject()['project']
    extras = project['optional-dependencies']
    installed = [Requirement(r) for r in project['dependencies'] + extras['dev']]  # by `make`
    others = [Requirement(r) for name, extra in extras.items() if name != 'dev' for r in extra]
    for python, name in (('3.11', 'constraints.txt'), ('3.12', 'constraints-py312.txt'),
                         ('3.13', 'constraints-py312.txt')):
      with open(os.path.join(ROOT, 'requirements', name), encoding='utf-8') as f:
        pins = dict(line.strip().split('==') for line in f
                    if line.strip() and not line.startswith('#'))
      pins = {canonicalize_name(k): v for k, v in pins.items()}
      env = {'python_version': python}
      for req in installed + others:
        key = canonicalize_name(req.name)
        if req.marker is not None and not req.marker.evaluate(env):
          continue
        if req in others and key not in pins and not str(req.specifier).startswith('=='):
          continue   # an extra `make` does not install ([quality]), unpinned
        with self.subTest(python=python, requirement=str(req)):
          # In that Python's file, at a version the requirement admits.
          self.assertIn(key, pins)
          self.assertTrue(req.specifier.contains(pins[key]), f'{name}: {req.name}=={pins[key]}')
      self.assertEqual(python < '3.12', 'tensorflow-io' in pins, name)

  def test_packages_exist(self):
    for package in PACKAGES:
      self.assertTrue(os.path.isfile(os.path.join(ROOT, package, '__init__.py')), package)


class AssetsTest(absltest.TestCase):

  def test_shipped_folders_are_found_through_the_package(self):
    self.assertTrue(os.path.isfile(os.path.join(assets.demo_dir(), 'mixture.wav')))
    for name in ('ncsn_piano', 'ncsn_violin', 'ncsn_mnist', 'glow_mnist', 'glow_mnist_family'):
      self.assertTrue(os.path.isdir(assets.prior_dir(name)), name)
    for kind in ('refiner', 'degli'):
      self.assertTrue(os.path.isfile(os.path.join(assets.inversion_dir(kind), 'config.json')))
    self.assertTrue(os.path.isfile(os.path.join(assets.separators_dir(), 'piano-violin',
                                                'basis', 'separator.json')))

  def test_package_data_patterns_cover_every_shipped_file(self):
    # setup.py's patterns, depth by depth: a new file deeper than them would not ship.
    import fnmatch  # pylint: disable=g-import-not-at-top
    patterns = ['demo/*', 'priors/*/*', 'priors/*/*/*', 'inversion/*/*', 'separators/*/*/*']
    root = os.path.join(ROOT, 'assets')
    for dirpath, dirnames, filenames in os.walk(root):
      dirnames[:] = [d for d in dirnames if d != '__pycache__']
      for name in filenames:
        rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, '/')
        if rel == '__init__.py' or rel.endswith('.pyc'):
          continue
        self.assertTrue(any(fnmatch.fnmatch(rel, p) and rel.count('/') == p.count('/')
                            for p in patterns), f'assets/{rel} is not package data')


class FallbackTest(absltest.TestCase):

  def test_auto_magnitude_says_why_it_falls_back_to_nnls(self):
    import contextlib  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top
    from inversion import mel_to_linear  # pylint: disable=g-import-not-at-top
    from pipeline.config import FeatureConfig  # pylint: disable=g-import-not-at-top
    from pipeline.transforms import MelTransform  # pylint: disable=g-import-not-at-top
    other = MelTransform(FeatureConfig(n_fft=1024))   # the refiner is for n_fft 2048
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      self.assertEqual(mel_to_linear.resolve_method('auto', other), 'nnls')
      self.assertEqual(mel_to_linear.resolve_method('auto', MelTransform(FeatureConfig())),
                       'refiner')
    self.assertIn('the shipped refiner was trained for another STFT', err.getvalue())
    self.assertIn('using NNLS', err.getvalue())


class StartupTest(parameterized.TestCase):

  @parameterized.parameters(
      (['cmd'], None), (['cmd', '--verbosity=1'], 1), (['cmd', '-v', '0'], 0),
      (['cmd', '--verbosity', '-1'], -1), (['cmd', '--', '--verbosity=1'], None),
      (['cmd', '--verbosity=x'], None))
  def test_verbosity_from_the_command_line(self, argv, expected):
    self.assertEqual(startup.verbosity(argv), expected)

  def test_quiet_by_default_and_verbosity_restores_logs(self):
    env = dict(os.environ)
    try:
      os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None)
      self.assertTrue(startup.quiet(['cmd']))
      self.assertEqual(os.environ['TF_CPP_MIN_LOG_LEVEL'], '3')
      self.assertFalse(startup.quiet(['cmd', '--verbosity=0']))
      self.assertEqual(os.environ['TF_CPP_MIN_LOG_LEVEL'], '0')
      self.assertFalse(startup.quiet(['cmd', '--verbosity=-1']))
      self.assertEqual(os.environ['TF_CPP_MIN_LOG_LEVEL'], '1')
    finally:
      os.environ.clear()
      os.environ.update(env)

  def test_unknown_flag_names_the_first_unknown(self):
    described = {'flags': {'input': {'boolean': False}, 'figure': {'boolean': True},
                           'verbosity': {'boolean': False, 'short': 'v'}},
                 'accepted': ['logtostderr']}
    check = lambda *a: startup.unknown_flag(['cmd', *a], described)
    self.assertIsNone(check('--input', '--not-a-flag-value', '--nofigure', '-v', '1'))
    self.assertIsNone(check('--input=x', '--logtostderr', '--helpfull', 'positional'))
    self.assertEqual(check('--input=x', '--inptu=y'), 'inptu')
    self.assertEqual(check('--nosuch'), 'nosuch')
    self.assertIsNone(check('--', '--anything'))
    self.assertIsNone(check('--flagfile=f', '--anything'))

  def test_help_text_lists_flags_with_defaults(self):
    text = startup.help_text('Does X.\n', {'flags': {
        'input': {'help': 'Input file.', 'default': None, 'boolean': False, 'short': None},
        'figure': {'help': 'Write a figure.', 'default': 'true', 'boolean': True,
                   'short': None}}})
    self.assertIn('Does X.', text)
    self.assertIn('--input: Input file.', text)
    self.assertIn('--[no]figure: Write a figure.\n    (default: true)', text)

  def test_help_from_the_index_exits_0_without_tensorflow(self):
    entry = {'doc': 'Separates.', 'flags': {'input': {'help': 'Mixture.', 'default': None,
                                                       'boolean': False, 'short': None}},
             'accepted': []}
    code = ('import sys, json; from commandline import startup; '
            f'startup.flag_index = lambda: {{"separate_audio": json.loads({json.dumps(json.dumps(entry))})}}; '
            'import atexit; atexit.register(lambda: print("TF" if "tensorflow" in sys.modules '
            'else "noTF", file=sys.stderr)); '
            'startup.prepare("separate_audio", sys.argv)')
    for args, rc, out, err in ((['--help'], 0, '--input: Mixture.', 'noTF'),
                               (['--inptu=x'], 2, '', "separate_audio: error: Unknown command "
                                                      "line flag 'inptu'")):
      proc = subprocess.run([sys.executable, '-c', code, *args], env=ENV, cwd=ROOT, text=True,
                            capture_output=True, timeout=120, check=False)
      self.assertEqual(proc.returncode, rc, proc.stderr)
      self.assertIn(out, proc.stdout)
      self.assertIn(err, proc.stderr)
      self.assertIn('noTF', proc.stderr)

  def test_stderr_filter_drops_xla_lines_and_keeps_the_rest(self):
    code = ('import os, sys; from commandline import startup; startup._filter_stderr(); '
            'os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are '
            'written to STDERR\\nI0000 00:00:1796421492.596467   31205 service.cc:145] XLA '
            'service\\nE0000 00:00:1796424755.634804   18587 cuda_platform.cc:52] failed call to cuInit: '
            'INTERNAL\\nkept line\\nW1204 21:58:13.567155 140543617477504 loop.py:157] ours\\n"); '
            'print("python line", file=sys.stderr)')
    proc = subprocess.run([sys.executable, '-c', code], env=ENV, cwd=ROOT, text=True,
                          capture_output=True, timeout=60, check=False)
    self.assertEqual(proc.returncode, 0)
    self.assertEqual(proc.stderr, 'kept line\nW1204 21:58:13.567155 140543617477504 loop.py:157] '
                                  'ours\npython line\n')


@pytest.mark.slow
class CommandsTest(parameterized.TestCase):
  """Every console script, as installed: --help (from the index where it is current, and
  then the same as the command's own), start-up noise."""

  def test_every_console_script_help_lists_its_flags_and_exits_0(self):
    index = startup.flag_index()   # empty when stale: then every command answers live
    for name, module in sorted(SCRIPTS.items()):
      with self.subTest(name):
        proc = _launch(name, '--help')
        self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
        self.assertIn('--verbosity', proc.stdout)
        own = [line for line in proc.stdout.splitlines()
               if line.startswith('  -') and 'verbosity' not in line]
        self.assertNotEqual(own, [], 'only --verbosity listed')
        self.assertEqual(proc.stderr, '')   # no TensorFlow start-up lines either
        if module in index:   # answered from the index: the same text as the command's own
          live = _live(module, '--help')
          self.assertEqual(live.returncode, 0, live.stderr[-2000:])
          self.assertEqual(proc.stdout, live.stdout, 'run: python -m commandline.flag_index')

  def test_a_separation_error_prints_no_tensorflow_noise(self):
    proc = _launch('separate_audio', '--input=/no/such.wav', '--out_dir=/tmp/unused')
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertEqual(proc.stderr.strip().splitlines(),
                     [line for line in proc.stderr.strip().splitlines()
                      if line.startswith('separate_audio: error:')])


if __name__ == '__main__':
  absltest.main()
