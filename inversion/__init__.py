"""Back to sound: masks and Wiener filtering, mel -> linear magnitude, phase retrieval."""

from inversion.masks import ratio_mask, binary_mask, apply_masks, wiener_filter
from inversion.stft import (stft_transform, consistency_projection, magnitude_projection,
                            mixing_projection, inconsistency, spectral_convergence)
from inversion.phase import (Reconstruction, METHODS, get_method, reconstruct, griffin_lim,
                             deep_griffin_lim,
                             fast_griffin_lim, misi, mix_incons, mix_incons_hard_mag,
                             mag_incons_hard_mix, incons_hard_mix, amplitude_mask, wiener)
from inversion.mel_to_linear import MAGNITUDE_METHODS, mel_to_magnitude, mel_fit_error
