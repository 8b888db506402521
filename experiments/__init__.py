"""Runs that tie the parts together: whole-recording audio separation (and, next,
the image separation experiments that live in ``basis.experiment`` today)."""
