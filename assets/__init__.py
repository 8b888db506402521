"""The shipped assets (package data, no code): priors, inversion networks, separator
models and the demo clips. Use their paths through ``common.assets``."""
