"""The import graph follows the house's layout (docs: ../shared/DESIGN.md, Layout).

Every module of every package, and every top-level script, is parsed with
``ast``; each ``import`` / ``from ... import`` anywhere in it (function-level
imports included: a circle closed inside a function is still a circle) is an
arrow to the deepest module of ours it names, and to that module's parent
packages (importing ``training.prior_io`` runs ``training/__init__``).
``importlib.import_module`` strings are not seen.

Layers, lowest first; an arrow may point within its layer or down, never up,
and the packages of one layer may not import each other in a circle::

  common -> pipeline -> datagen, training -> ncsn, flow_models -> basis, inversion,
  evaluation, baselines, synthesis -> experiments -> commandline -> scripts (the top-level ``*.py``
  mains)

``common`` holds what every room uses (errors, atomic writes, checks, compute,
figures); ``pipeline`` holds data only (no data generation, no flags, no
command-line helpers); ``datagen`` makes data (rendering, voices, noise);
``commandline`` is the one place where absl flags are defined and read: no
library module imports ``absl.flags`` or ``absl.app``.

``tests/`` and ``benchmarks/`` sit outside the layers.
"""

import ast
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = '<scripts>'
LAYERS = (
    ('common',),
    ('pipeline',),
    ('datagen', 'training'),
    ('ncsn', 'flow_models'),
    ('basis', 'inversion', 'evaluation', 'baselines', 'synthesis'),
    ('experiments',),
    ('commandline',),
    (SCRIPTS,),
)
# The library rooms: none of them defines or reads absl flags.
LIBRARY = ('common', 'pipeline', 'datagen', 'training', 'ncsn', 'flow_models', 'basis',
           'inversion', 'evaluation', 'baselines', 'synthesis', 'experiments')
# What pipeline/ may hold: data (audio I/O, features, TFRecords, datasets, the demo clips).
PIPELINE_MODULES = {
    'pipeline', 'pipeline.audio', 'pipeline.audio_dataset', 'pipeline.config',
    'pipeline.datasets', 'pipeline.demo', 'pipeline.filterbank', 'pipeline.spec_folder',
    'pipeline.tfrecords', 'pipeline.transforms', 'pipeline.waveform_pairs'}
# (module, package it imports) pairs that still run up, each with why and until
# when. An entry whose arrow is gone fails the test: this list only shrinks.
KNOWN_UPWARD = {}


def _layer_of(module):
  top = SCRIPTS if module.startswith(SCRIPTS) else module.split('.')[0]
  for i, packages in enumerate(LAYERS):
    if top in packages:
      return i
  raise AssertionError(f'{module}: package {top!r} has no layer in LAYERS')


def _package(module):
  return SCRIPTS if module.startswith(SCRIPTS) else module.split('.')[0]


def find_modules(root=ROOT):
  """``{module name: path}`` of every package module and top-level script."""
  modules = {}
  for package in (p for layer in LAYERS for p in layer if p != SCRIPTS):
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
      dirnames[:] = sorted(d for d in dirnames if d != '__pycache__' and not d.startswith('.'))
      if '__init__.py' not in filenames:
        continue  # data folders
      for name in sorted(filenames):
        if name.endswith('.py'):
          rel = os.path.relpath(os.path.join(dirpath, name), root)[:-3].replace(os.sep, '.')
          modules[rel[:-len('.__init__')] if rel.endswith('.__init__') else rel] = (
              os.path.join(dirpath, name))
  for name in sorted(os.listdir(root)):
    if name.endswith('.py') and name != 'setup.py':
      modules[f'{SCRIPTS}.{name[:-3]}'] = os.path.join(root, name)
  return modules


def import_graph(root=ROOT):
  """``{module: set of modules it imports}`` over our own modules."""
  modules = find_modules(root)
  ours = {m for m in modules if not m.startswith(SCRIPTS)}

  def deepest(name):
    while name and name not in ours:
      name = name.rpartition('.')[0]
    return name

  def ancestors(name):
    parts = name.split('.')
    return {'.'.join(parts[:i]) for i in range(1, len(parts))}

  graph = {}
  for module, path in modules.items():
    with open(path, encoding='utf-8') as f:
      tree = ast.parse(f.read(), path)
    is_package = path.endswith('__init__.py')
    package = module if is_package else module.rpartition('.')[0]
    names = []
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        names += [alias.name for alias in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          parts = package.split('.')[:len(package.split('.')) - node.level + 1]
          base = '.'.join(parts + ([base] if base else []))
        names += [f'{base}.{alias.name}' if f'{base}.{alias.name}' in ours else base
                  for alias in node.names]
    targets = set()
    for name in names:
      target = deepest(name)
      if target:
        targets.add(target)
        targets |= {a for a in ancestors(target) if a not in ancestors(module) | {module}}
    targets.discard(module)
    graph[module] = targets
  return graph


def cycles(graph):
  """The strongly connected components of more than one module (Tarjan)."""
  index, low, on_stack, stack, out = {}, {}, set(), [], []
  counter = [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in sorted(graph.get(v, ())):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return sorted(out)


def upward_arrows(graph):
  return sorted((a, b) for a, targets in graph.items() for b in targets
                if _layer_of(b) > _layer_of(a))


def peer_graph(graph):
  """Package -> packages of the same layer it imports."""
  out = {}
  for a, targets in graph.items():
    for b in targets:
      if _package(a) != _package(b) and _layer_of(a) == _layer_of(b):
        out.setdefault(_package(a), set()).add(_package(b))
  return out


class ImportGraphTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.graph = import_graph()

  def test_every_module_is_parsed_and_placed_in_a_layer(self):
    self.assertGreater(len(self.graph), 50)
    for module in self.graph:
      _layer_of(module)

  def test_no_import_circle_between_modules(self):
    self.assertEqual(cycles(self.graph), [])

  def test_packages_of_one_layer_import_each_other_one_way(self):
    # basis, inversion, evaluation, baselines may use each other, in no circle.
    self.assertEqual(cycles(peer_graph(self.graph)), [])

  def test_arrows_run_down_the_layers(self):
    up = sorted({(a, _package(b)) for a, b in upward_arrows(self.graph)})
    self.assertEqual([arrow for arrow in up if arrow not in KNOWN_UPWARD], [],
                     'imports that run up the layers')
    self.assertEqual(sorted(set(KNOWN_UPWARD) - set(up)), [],
                     'KNOWN_UPWARD lists arrows that are gone: delete them')

  def test_checker_sees_function_level_circles_and_upward_arrows(self):
    tmp = self.create_tempdir().full_path
    for package, files in {
        'pipeline': {'__init__.py': '', 'a.py': 'def f():\n  from pipeline import b\n',
                     'b.py': 'import pipeline.a\n'},
        'training': {'__init__.py': '', 'x.py': 'from experiments import y\n'},
        'experiments': {'__init__.py': '', 'y.py': ''}}.items():
      os.makedirs(os.path.join(tmp, package))
      for name, text in files.items():
        with open(os.path.join(tmp, package, name), 'w', encoding='utf-8') as f:
          f.write(text)
    g = import_graph(tmp)
    self.assertEqual(cycles(g), [['pipeline.a', 'pipeline.b']])
    self.assertEqual(upward_arrows(g), [('training.x', 'experiments'),
                                        ('training.x', 'experiments.y')])


class RoomsTest(absltest.TestCase):

  def test_no_library_module_defines_or_reads_flags(self):
    offenders = []
    for module, path in find_modules().items():
      if _package(module) not in LIBRARY:
        continue
      with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
      for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
          names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
          names = [f'{node.module}.{a.name}' for a in node.names]
        if any(n.startswith(('absl.flags', 'absl.app')) for n in names):
          offenders.append(module)
    self.assertEqual(sorted(set(offenders)), [])

  def test_pipeline_holds_data_only(self):
    pipeline = {m for m in find_modules() if _package(m) == 'pipeline'}
    self.assertEqual(sorted(pipeline - PIPELINE_MODULES), [],
                     'pipeline/ holds data only: put helpers in common/, generation in '
                     'datagen/')


class SeparationImportsTest(absltest.TestCase):

  def test_separating_with_shipped_priors_imports_no_trainer(self):
    code = textwrap.dedent('''
        import sys
        import basis
        from basis import FlowFamilyPrior, NCSNPrior
        NCSNPrior('assets/priors/ncsn_mnist')
        FlowFamilyPrior('assets/priors/glow_mnist_family')
        trainer = sorted(m for m in sys.modules if m in (
            'training.loop', 'ncsn.train_lib', 'flow_models.train_lib') or
            m.split('.')[0] == 'experiments')
        assert not trainer, trainer
        from training import LoopConfig, Task, train   # still there, on demand
        assert 'training.loop' in sys.modules
        print('ok')
    ''')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertEqual(proc.stdout.strip().splitlines()[-1], 'ok')


if __name__ == '__main__':
  absltest.main()
