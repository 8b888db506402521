"""A folder of audio files -> mel-spectrogram patches in TFRecord shards."""

import datetime
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from pipeline import audio
from pipeline.config import FeatureConfig
from pipeline.errors import ParameterError
from pipeline.tfrecords import PatchWriter
from pipeline.transforms import MelTransform

AUDIO_EXTENSIONS = ('.wav', '.flac', '.ogg', '.aiff', '.aif')


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


def folder_to_patches(in_dir: str, out_dir: str, *,
                      features: FeatureConfig = FeatureConfig(),
                      min_rms_db: Optional[float] = -60.0,
                      pad_end: bool = False, overwrite: bool = False,
                      max_shard_bytes: int = 64 << 20, skip_bad_files: bool = False,
                      progress: bool = True, command: Optional[str] = None) -> Dict:
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

  Returns:
    The metadata dict written beside the shards.

  Raises:
    ParameterError: missing/empty input folder, an unreadable file (unless
      ``skip_bad_files``), no patch at all, or an occupied ``out_dir``.
  """
  files = list_audio_files(in_dir)
  transform = MelTransform(features)
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
      try:
        y, _ = audio.load(path, sample_rate=features.sample_rate)
      except ParameterError as e:
        if not skip_bad_files:
          raise
        bad.append({'file': path, 'error': str(e)})
        continue
      n = features.patch_samples
      if len(y) < n and not pad_end:
        skipped += 1
        sources.append({'file': os.path.relpath(path, in_dir), 'patches': 0,
                        'note': 'shorter than one patch'})
        continue
      frames = transform.frame_waveform(y, pad_end=pad_end).numpy()
      if min_rms_db is not None:
        rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
        keep = rms_db >= min_rms_db
        skipped += int((~keep).sum())
        frames = frames[keep]
      if len(frames):
        writer.add(to_patches(frames))
      sources.append({'file': os.path.relpath(path, in_dir), 'patches': int(len(frames))})
    writer.update_provenance(files=sources, skipped_windows=skipped, bad_files=bad)
    if writer.count == 0:
      raise ParameterError(
          f'no patch made from {len(files)} files in {in_dir!r} (all shorter than '
          f'{features.patch_samples} samples or quieter than {min_rms_db} dB)')
  return writer.metadata
