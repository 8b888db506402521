"""A folder of audio files -> mel-spectrogram patches in TFRecord shards."""

import datetime
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from pipeline import audio
from pipeline.audio import AUDIO_EXTENSIONS
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.tfrecords import PatchWriter
from pipeline.transforms import MelTransform



def list_audio_files(folder: str, *, recursive: bool = True,
                     extensions: Sequence[str] = AUDIO_EXTENSIONS) -> List[str]:
  """Sorted audio files under ``folder``.

  Raises:
    ParameterError: if the folder does not exist or holds no audio file.
  """
  if not os.path.isdir(folder):
    raise ParameterError(f'audio folder {folder!r} does not exist')
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    found += [os.path.join(root, f) for f in sorted(files)
              if f.lower().endswith(tuple(extensions))]
    if not recursive:
      break
  if not found:
    raise ParameterError(f'no audio files ({", ".join(extensions)}) in {folder!r}')
  return found


def check_mel_bands(transform: MelTransform):
  """Refuses features whose mel filterbank has bands that no FFT bin reaches.

  Too many mels for the FFT size (``n_mels=1500`` with ``n_fft=2048``, or 96
  mels with ``n_fft=256``) leaves bands narrower than one bin: always zero.

  Raises:
    ParameterError: naming how many bands are empty and the settings.
  """
  c = transform.config
  fb = np.asarray(transform.filterbank)          # [n_bins, n_mels]
  empty = np.flatnonzero(~np.any(fb > 0, axis=0))
  if len(empty):
    raise ParameterError(
        f'--n_mels={c.n_mels} with --n_fft={c.n_fft} ({c.fmin:g}-{c.fmax:g} Hz at '
        f'{c.sample_rate} Hz) leaves {len(empty)} of {c.n_mels} mel bands empty (no FFT '
        f'bin between their edges; first {empty[:5].tolist()}): lower --n_mels or raise '
        '--n_fft')


def folder_to_patches(in_dir: str, out_dir: str, *,
                      features: FeatureConfig = FeatureConfig(),
                      min_rms_db: Optional[float] = -60.0,
                      pad_end: bool = False, overwrite: bool = False,
                      max_shard_bytes: int = 64 << 20, skip_bad_files: bool = False,
                      progress: bool = True, command: Optional[str] = None,
                      log: Optional[Callable[[str], None]] = None) -> Dict:
  """Converts every audio file under ``in_dir`` into patches in ``out_dir``.

  Each file is read (mono, resampled to ``features.sample_rate``), cut into
  non-overlapping windows of ``features.patch_samples``, and each window
  becomes one patch ``[n_mels, patch_frames, 1]`` in [0, 1] (see
  :meth:`MelTransform.waveform_to_patches`). Windows quieter than
  ``min_rms_db`` (dB re full scale) are skipped: silent patches teach a prior
  nothing. The feature parameters, counts and the list of source files go to
  ``metadata.json``; the whole set appears atomically.

  Args:
    in_dir: folder of audio files (searched recursively).
    out_dir: destination folder for shards + metadata.
    features: the feature parameters.
    min_rms_db: float dB or None (keep every window).
    pad_end: keep a zero-padded last partial window per file.
    overwrite: replace an existing set in ``out_dir`` (after the new one is
      complete).
    max_shard_bytes: bound on one shard file.
    skip_bad_files: log and skip unreadable files instead of failing.
    progress: show a progress bar over files.
    command: the command line, recorded as provenance.
    log: callable for warnings (default: stderr). Warned and recorded in the
      provenance: a source below ``features.sample_rate`` (upsampled; each
      file's ``source_sample_rate`` is recorded) and float samples with a
      peak above 1.

  Returns:
    The metadata dict written beside the shards.

  Raises:
    ParameterError: missing/empty input folder, features whose filterbank
      has empty mel bands, an unreadable or truncated file (unless
      ``skip_bad_files``), no patch at all, or an occupied ``out_dir``.
  """
  transform = MelTransform(features)
  check_mel_bands(transform)
  files = list_audio_files(in_dir)
  log = log or (lambda message: print(message, file=sys.stderr, flush=True))
  warnings = []

  def warn(message):
    warnings.append(message)
    log(f'warning: {message}')
  to_patches = transform.make_window_fn()
  sources, skipped, bad = [], 0, []
  iterator = files
  if progress:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    iterator = tqdm(files, unit='file', desc='wav_to_spec')
  provenance = {'input_dir': os.path.abspath(in_dir), 'command': command,
                'created_utc': datetime.datetime.utcnow().isoformat() + 'Z',
                'min_rms_db': min_rms_db}
  with PatchWriter(out_dir, features=features, provenance=provenance,
                   max_shard_bytes=max_shard_bytes, overwrite=overwrite) as writer:
    for path in iterator:
      file_warnings = []
      try:   # the one audio check of every reader (pipeline.audio.check_file)
        info, _ = audio.check_file(path)
        y, _ = audio.load(path, sample_rate=features.sample_rate, warn=file_warnings.append)
      except ParameterError as e:
        if not skip_bad_files:
          raise ParameterError(f'{e} (--skip_bad_files skips such files)') from e
        bad.append({'file': path, 'error': str(e)})
        continue
      entry = {'source_sample_rate': int(info.samplerate), 'subtype': info.subtype}
      rel = os.path.relpath(path, in_dir)
      for line in file_warnings:
        warn(line)
      peak = float(np.max(np.abs(y)))
      if peak > 1.0:
        entry['peak'] = peak
      n = features.patch_samples
      if len(y) < n and not pad_end:
        skipped += 1
        sources.append({'file': rel, 'patches': 0, 'note': 'shorter than one patch',
                        **entry})
        continue
      frames = transform.frame_waveform(y, pad_end=pad_end).numpy()
      if min_rms_db is not None:
        rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
        keep = rms_db >= min_rms_db
        skipped += int((~keep).sum())
        frames = frames[keep]
      if len(frames):
        writer.add(to_patches(frames))
      sources.append({'file': rel, 'patches': int(len(frames)), **entry})
    writer.update_provenance(files=sources, skipped_windows=skipped, bad_files=bad,
                             warnings=warnings)
    if writer.count == 0:
      raise ParameterError(
          f'no patch made from {len(files)} files in {in_dir!r} (all shorter than '
          f'{features.patch_samples} samples or quieter than {min_rms_db} dB)')
  return writer.metadata
