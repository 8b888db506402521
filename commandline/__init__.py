"""The command-line layer: flag definitions (derived from the run configs), the flags ->
config mapping and the one-line error runner of every script. Only scripts import it."""
