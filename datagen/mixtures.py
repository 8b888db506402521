"""Mixtures of a voice and a noise at chosen SNRs, written in the ``NNNN/`` layout.

The names and the reader of the layout are in ``pipeline.waveform_pairs``;
this module makes the mixtures and writes a clip folder atomically.
"""

import os
import shutil
import uuid
from typing import Any, Dict, Optional, Sequence

import numpy as np

from common.atomic import write_json_atomic
from common.errors import ParameterError
from pipeline.audio import write_wav
from pipeline.waveform_pairs import (CLIP_JSON, NOISE_WAV, VOICE_WAV, mixture_name,
                                     noise_gain, snr_key)

def make_mixtures(voice, noise, snrs_db: Sequence[float]) -> Dict[float, np.ndarray]:
  """``{snr: voice + 10 ** (-snr / 20) * noise}`` in float32.

  Args:
    voice: float ``[n_samples]``.
    noise: float ``[n_samples]``, the noise at 0 dB SNR (RMS of the voice).
    snrs_db: input SNRs in dB.

  Returns:
    ``{float(snr): float32 [n_samples]}``.

  Raises:
    ParameterError: for different lengths.
  """
  v = np.asarray(voice, np.float32)
  n = np.asarray(noise, np.float32)
  if v.shape != n.shape or v.ndim != 1:
    raise ParameterError(
        f'voice and noise must be [n_samples] of one length, got {v.shape} '
        f'and {n.shape}')
  return {float(s): v + (noise_gain(s) * n).astype(np.float32)
          for s in snrs_db}


def write_clip(folder: str, voice, noise, *, sample_rate: int,
               snrs_db: Sequence[float],
               info: Optional[Dict[str, Any]] = None) -> Dict[str, np.ndarray]:
  """Writes one clip folder atomically (a hidden temporary folder, then a rename).

  Args:
    folder: the clip folder to create (``.../NNNN``); must not exist.
    voice: float ``[n_samples]``, the clean speech.
    noise: float ``[n_samples]``, the noise at 0 dB SNR.
    sample_rate: int, Hz.
    snrs_db: input SNRs, dB, one ``mix_snr_<snr>.wav`` each.
    info: written as ``clip.json`` (with the file names added), or None.

  Returns:
    The mixtures written, ``{snr: float32 [n_samples]}``.

  Raises:
    ParameterError: if ``folder`` exists or the signals differ in length.
  """
  folder = os.path.abspath(folder)
  if os.path.exists(folder):
    raise ParameterError(f'clip folder {folder!r} already exists')
  mixtures = make_mixtures(voice, noise, snrs_db)
  parent, name = os.path.split(folder)
  tmp = os.path.join(parent, f'.{name}.partial-{uuid.uuid4().hex[:8]}')
  os.makedirs(tmp)
  try:
    write_wav(os.path.join(tmp, VOICE_WAV), np.asarray(voice, np.float32),
              sample_rate, subtype='FLOAT')
    write_wav(os.path.join(tmp, NOISE_WAV), np.asarray(noise, np.float32),
              sample_rate, subtype='FLOAT')
    files = {'voice': VOICE_WAV, 'noise': NOISE_WAV}
    for snr, y in mixtures.items():
      files[snr_key(snr)] = mixture_name(snr)
      write_wav(os.path.join(tmp, mixture_name(snr)), y, sample_rate,
                subtype='FLOAT')
    if info is not None:
      write_json_atomic(os.path.join(tmp, CLIP_JSON), dict(info, files=files),
                        sort_keys=False)
    os.rename(tmp, folder)
  finally:
    if os.path.exists(tmp):
      shutil.rmtree(tmp, ignore_errors=True)
  return mixtures

