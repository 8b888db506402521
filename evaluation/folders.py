"""The MUSDB / museval folder convention for references and estimates.

References::

  <references>/<track>/mixture.wav
  <references>/<track>/<source>.wav      one file per source

Estimates (one folder per method; ``oracle_systems.py`` writes this too)::

  <estimates>/<track>/<source>.wav

Every file of a track must have the same sample rate, channel count and
length; anything else is a :class:`common.errors.ParameterError` that names
the file and both values. Waveforms are float32 ``[n_channels, n_samples]``.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from pipeline.audio import AUDIO_EXTENSIONS, load
from common.errors import ParameterError

MIXTURE = 'mixture'


@dataclasses.dataclass
class Track:
  """One track of a references folder.

  Attributes:
    name: the track folder's name.
    sample_rate: int, Hz.
    mixture: float32 ``[n_channels, n_samples]``.
    sources: ``{source name: float32 [n_channels, n_samples]}``, sorted by name.
    paths: ``{'mixture' or source name: file path}``.
  """

  name: str
  sample_rate: int
  mixture: np.ndarray
  sources: Dict[str, np.ndarray]
  paths: Dict[str, str]

  @property
  def source_names(self) -> List[str]:
    return list(self.sources)

  def stacked_sources(self) -> np.ndarray:
    """float32 ``[n_sources, n_channels, n_samples]`` in ``source_names`` order."""
    return np.stack(list(self.sources.values()))


def _audio_files(folder: str) -> Dict[str, str]:
  """``{stem: path}`` of the audio files directly in ``folder``."""
  out = {}
  for entry in sorted(os.listdir(folder)):
    stem, ext = os.path.splitext(entry)
    path = os.path.join(folder, entry)
    if ext.lower() in AUDIO_EXTENSIONS and os.path.isfile(path):
      if stem in out:
        raise ParameterError(f'{folder!r} holds two files for {stem!r}: '
                             f'{os.path.basename(out[stem])!r} and {entry!r}')
      out[stem] = path
  return out


def list_tracks(references_dir: str) -> List[str]:
  """Sorted names of the track folders (those holding a ``mixture`` file).

  Raises:
    ParameterError: if the folder is missing or holds no track.
  """
  if not os.path.isdir(references_dir):
    raise ParameterError(f'references folder {references_dir!r} does not exist')
  tracks = [name for name in sorted(os.listdir(references_dir))
            if os.path.isdir(os.path.join(references_dir, name)) and
            MIXTURE in _audio_files(os.path.join(references_dir, name))]
  if not tracks:
    raise ParameterError(
        f'references folder {references_dir!r} holds no track: expected '
        f'<track>/{MIXTURE}.wav and <track>/<source>.wav')
  return tracks


def _load_checked(path: str, *, expect: Optional[Tuple[int, int, int]],
                  what: str, pad_or_truncate: bool = False):
  y, sr = load(path, mono=False)
  if expect is None:
    return y, sr
  rate, channels, length = expect
  if sr != rate:
    raise ParameterError(f'{what} {path!r} has sample rate {sr} Hz, expected {rate} Hz '
                         '(the rate of the track\'s mixture)')
  if y.shape[0] != channels:
    raise ParameterError(f'{what} {path!r} has {y.shape[0]} channel(s), expected '
                         f'{channels} (the mixture\'s)')
  if y.shape[1] != length:
    if not pad_or_truncate or what == 'reference':
      hint = ('; the references of a track must have the mixture\'s length' if
              what == 'reference' else '; evaluate_separation.py --pad_or_truncate zero-pads '
              'or cuts estimates as museval does')
      raise ParameterError(
          f'{what} {path!r} has {y.shape[1]} samples, expected {length} (the '
          f'mixture\'s){hint}')
    y = y[:, :length] if y.shape[1] > length else np.pad(
        y, [(0, 0), (0, length - y.shape[1])])
  return y, sr


def load_track(references_dir: str, name: str, *,
               sources: Optional[Sequence[str]] = None) -> Track:
  """Reads and checks one track of a references folder.

  Args:
    references_dir: the references folder.
    name: track folder name.
    sources: source names to read (default: every file but the mixture).

  Returns:
    :class:`Track`.

  Raises:
    ParameterError: for a missing mixture or source, or a source whose rate,
      channel count or length differs from the mixture's.
  """
  folder = os.path.join(references_dir, name)
  if not os.path.isdir(folder):
    raise ParameterError(f'track folder {folder!r} does not exist')
  files = _audio_files(folder)
  if MIXTURE not in files:
    raise ParameterError(f'track {name!r} has no {MIXTURE}.wav in {folder!r}')
  names = sorted(s for s in files if s != MIXTURE) if sources is None else list(sources)
  if not names:
    raise ParameterError(f'track {name!r} has no source files besides {MIXTURE}.wav '
                         f'in {folder!r}')
  missing = [s for s in names if s not in files]
  if missing:
    raise ParameterError(f'track {name!r} misses reference source(s) {missing} in '
                         f'{folder!r} (found {sorted(files)})')
  mixture, rate = _load_checked(files[MIXTURE], expect=None, what='mixture')
  expect = (rate, mixture.shape[0], mixture.shape[1])
  loaded = {s: _load_checked(files[s], expect=expect, what='reference')[0] for s in names}
  paths = {MIXTURE: files[MIXTURE], **{s: files[s] for s in names}}
  return Track(name=name, sample_rate=rate, mixture=mixture, sources=loaded, paths=paths)


def load_estimates(estimates_dir: str, track: Track, *, method: str = 'estimates',
                   pad_or_truncate: bool = False) -> Tuple[np.ndarray, Dict[str, str]]:
  """Reads one method's estimates of a track, in the track's source order.

  Args:
    estimates_dir: the method's folder (``<estimates_dir>/<track>/<source>.wav``).
    track: the references, for names and the expected format.
    method: the method's name, for messages.
    pad_or_truncate: zero-pad or cut estimates whose length differs (museval's
      behaviour) instead of raising.

  Returns:
    ``(estimates, paths)``: float32 ``[n_sources, n_channels, n_samples]`` and
    ``{source: path}``.

  Raises:
    ParameterError: for a missing track folder or source file, or a file whose
      rate, channel count (or length) differs from the references'.
  """
  folder = os.path.join(estimates_dir, track.name)
  if not os.path.isdir(folder):
    raise ParameterError(f'method {method!r} has no folder for track {track.name!r} '
                         f'({folder!r} does not exist)')
  files = _audio_files(folder)
  missing = [s for s in track.source_names if s not in files]
  if missing:
    raise ParameterError(f'method {method!r} misses source(s) {missing} of track '
                         f'{track.name!r} in {folder!r} (found {sorted(files)})')
  n_channels, n_samples = track.mixture.shape
  expect = (track.sample_rate, n_channels, n_samples)
  ests = [_load_checked(files[s], expect=expect, what=f'{method!r} estimate',
                        pad_or_truncate=pad_or_truncate)[0] for s in track.source_names]
  return np.stack(ests), {s: files[s] for s in track.source_names}
