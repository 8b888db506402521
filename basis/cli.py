"""Old home of ``run_basis_sep.py``'s code, kept for callers of the old names.

The run moved up into the experiments layer (docs: DESIGN layout):
:class:`experiments.basis_sep.BasisSepConfig` and :func:`experiments.basis_sep.run`,
and the checks it makes to :mod:`experiments.prior_checks`. This module only
re-exports them (tests/test_basis.py and tests/test_reliability_*.py import
them from here) and keeps ``run_from_flags`` for a FLAGS-like object.
"""

from experiments.basis_sep import BasisSepConfig, run  # pylint: disable=unused-import
from experiments.prior_checks import (  # pylint: disable=unused-import
    check_prior_matches_data, check_same_features, check_step_size,
    record_step_check as _record_step_check)
from pipeline import flag_groups


def run_from_flags(flags):
  """``run(BasisSepConfig)`` from any object with the flag attributes (the old API)."""
  return run(flag_groups.config_from_flags(BasisSepConfig, flags))
