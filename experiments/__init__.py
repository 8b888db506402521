"""Runs that tie the parts together.

The waveform separator seam (``separators``: the protocol, the method registry,
what every method shares) and its methods (``basis_separator``); files and
folders separated through it (``separate_files``, ``separate_audio.py``);
any set of methods scored on a references folder (``evaluate_tracks``);
image separation (``image_separation``, ``basis_sep``) with what it shares --
the mixture draw (``mixtures``), one batch runner that takes any separator
(``batches``), the resume cache (``resume``), progress (``progress``) and
outputs (``outputs``); the mel -> wav commands (``inversion_runs``); the README's
demo (``demo``); and the studies behind
docs figures (``studies``)."""
