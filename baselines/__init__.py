"""Baseline separators to compare against: the oracles (IBM, IRM, Wiener, MWF)."""

from baselines.oracles import OracleConfig, parse_method, separate, multichannel_wiener
