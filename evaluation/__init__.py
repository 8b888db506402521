"""Evaluation metrics and the comparison report.

* images: PSNR with the best source permutation (``image_metrics``);
* audio: BSS Eval v4 as museval computes it (``bss_eval``), SI-SDR / SI-SNR,
  their improvements and the best permutation (``audio_metrics``);
* the report over a folder of references and folders of estimates
  (``evaluation.report``, imported on demand: it pulls in matplotlib).
"""

from evaluation.image_metrics import psnr, best_permutation_psnr
from evaluation.bss_eval import BssEvalResult, bss_eval_v4, nanmedian, METRICS
from evaluation.audio_metrics import si_sdr, si_snr, si_sdr_improvement, best_permutation
