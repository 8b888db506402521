"""Back to sound: masks and Wiener filtering, mel -> linear magnitude, phase retrieval."""

from inversion.masks import ratio_mask, binary_mask, apply_masks, wiener_filter
