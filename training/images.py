"""Old home of :mod:`pipeline.figures` (training/loop.py still imports it from here)."""

from pipeline.figures import colorize, make_grid, save_png, save_sample_grid  # pylint: disable=unused-import
