"""Evaluation metrics (images: PSNR with the best source permutation)."""

from evaluation.image_metrics import psnr, best_permutation_psnr
