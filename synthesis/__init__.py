"""Separation by synthesis (Liu, Jackson, Wang): predict the voice's features, then speak them.

``synthesis.encoder``: the hybrid recurrent + hourglass encoder (mixture STFT in, the
voice's mel spectrum in the priors' feature convention out; B1: the linear magnitude).
``synthesis.decoder``: features -> waveform with the project's mel inversion (refiner +
phase retrieval) or Griffin-Lim for B1. ``synthesis.separator``: the separator-seam
methods ``synthesis`` and ``synthesis-linear``. ``synthesis.training``: their model
family for ``baselines.waveform_training`` (``train_separator.py``).
"""
