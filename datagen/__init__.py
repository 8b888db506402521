"""Data generation: MIDI (generator and real pieces), rendering with soundfonts, voices and
noise, mixture sets. Above ``pipeline`` (it writes what the pipeline reads)."""
