"""Installs the generative-prior source separation toolkit (metadata: pyproject.toml).

A new command: its module in commandline/scripts.py and its line in
pyproject.toml's [project.scripts] (tests/test_packaging.py checks both).

This file only lists what pyproject.toml cannot derive: the project's packages
and top-level script modules (from commandline/scripts.py) and the package
data (the shipped assets, the flag index). Install with
``pip install -c requirements/constraints.txt -e .[dev]`` (what ``make`` does; on
Python 3.12 and 3.13 with ``requirements/constraints-py312.txt``).
"""

import os
import runpy

import setuptools

HERE = os.path.dirname(os.path.abspath(__file__))
_scripts = runpy.run_path(os.path.join(HERE, 'commandline', 'scripts.py'))
SCRIPTS = _scripts['SCRIPTS']       # console script name -> top-level script module
PACKAGES = _scripts['PACKAGES']

setuptools.setup(
    packages=setuptools.find_packages(
        include=[p for package in PACKAGES for p in (package, f'{package}.*')]) + ['assets'],
    py_modules=sorted(set(SCRIPTS.values())),
    # The shipped priors, inversion networks, separator models and demo clips
    # (common.assets finds them through importlib.resources); the flag index
    # (commandline.startup answers --help from it).
    package_data={'assets': ['demo/*', 'priors/*/*', 'priors/*/*/*', 'inversion/*/*',
                             'separators/*/*/*'],
                  'commandline': ['flag_index.json']},
)
