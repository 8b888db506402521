"""Runs that tie the parts together: image separation (``image_separation``) and
whole-recording audio separation (``audio_separation``), with what they share --
the mixture draw (``mixtures``), one batch runner that takes any separator
(``batches``), the resume cache (``resume``), progress (``progress``) and outputs
(``outputs``) -- and the README's demo (``demo``)."""
