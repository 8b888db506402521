"""Baseline separators to compare against: the oracles (IBM, IRM, Wiener, MWF)."""

from baselines.oracles import (OracleConfig, OracleRunConfig, multichannel_wiener,
                               parse_method, separate)
