"""Recorded voices, sounds and music from Debian packages, decoded offline.

* Voices: the Asterisk core prompts, hundreds of short phrases each read by a
  professional voice talent, 16 kHz G.722 (``asterisk-core-sounds-{en,es,fr}-g722``).
  The folder names the talent: ``en_US_f_Allison`` and ``es_MX_f_Allison`` are
  one speaker (Allison, in English and Spanish), ``fr_CA_f_June`` another
  (June): ``SPEAKERS``.
* Sounds: the 166 sonic-pi samples (``sonic-pi-samples``, flac: ambience,
  drums, bass, loops, vinyl, guitar...).
* Music: the Asterisk music-on-hold tracks (``asterisk-moh-opsound-g722``).

G.722 is decoded by Debian's ``ffmpeg -f g722 -i FILE`` (the raw G.722 files
carry no header; ffmpeg's demuxer assumes 16 kHz). Nothing is downloaded.
"""

import functools
import os
import re
import shutil
import subprocess
from typing import Dict, List, Sequence, Tuple

import numpy as np

from common.errors import ParameterError
from pipeline.audio import load, resample

ASTERISK_SOUNDS = '/usr/share/asterisk/sounds'
SONIC_PI_SAMPLES = '/usr/share/sonic-pi/samples'
ASTERISK_MOH = '/usr/share/asterisk/moh'
G722_SAMPLE_RATE = 16000
# prompt folder -> (speaker, language); one speaker may read several languages.
SPEAKERS: Dict[str, Tuple[str, str]] = {
    'en_US_f_Allison': ('Allison', 'en'),
    'es_MX_f_Allison': ('Allison', 'es'),
    'fr_CA_f_June': ('June', 'fr'),
}
PACKAGES = {'en_US_f_Allison': 'asterisk-core-sounds-en-g722',
            'es_MX_f_Allison': 'asterisk-core-sounds-es-g722',
            'fr_CA_f_June': 'asterisk-core-sounds-fr-g722',
            'samples': 'sonic-pi-samples', 'music': 'asterisk-moh-opsound-g722'}
# Prompts that are tones or silence, not speech.
_NOT_SPEECH = re.compile(r'(^|/)(silence/|.*tone|beep|beeperr|.*-beep)', re.IGNORECASE)
INSTALL_HINT = ('run `make system-speech-deps` (it installs ffmpeg and the asterisk / '
                'sonic-pi packages) or `sudo apt-get install ffmpeg {}`')


class RecordedDependencyError(RuntimeError):
  """ffmpeg or a package of recorded material is not installed."""


def find_ffmpeg() -> str:
  """Path of the ``ffmpeg`` program.

  Raises:
    RecordedDependencyError: if it is not on ``PATH``, saying how to install it.
  """
  path = shutil.which('ffmpeg')
  if path is None:
    raise RecordedDependencyError(
        'the ffmpeg program (G.722 decoder) is not installed; ' + INSTALL_HINT.format(''))
  return path


def ffmpeg_version() -> str:
  """Version of the installed ffmpeg, e.g. ``'5.1.6-0+deb12u1'``."""
  out = subprocess.run([find_ffmpeg(), '-version'], capture_output=True, text=True,
                       timeout=30, check=False).stdout
  m = re.search(r'ffmpeg version (\S+)', out)
  return m.group(1) if m else out.strip()[:40]


def decode_g722(path: str, *, sample_rate: int = 16000) -> np.ndarray:
  """Decodes a raw G.722 file to a mono waveform.

  Runs ``ffmpeg -nostdin -f g722 -i path -ac 1 -ar sample_rate -f f32le -``.

  Args:
    path: a ``.g722`` file.
    sample_rate: int in [8000, 96000], Hz, of the result (G.722 is 16 kHz).

  Returns:
    float32 ``[n_samples]``.

  Raises:
    ParameterError: if the file is missing, empty or ffmpeg cannot decode it.
    RecordedDependencyError: if ffmpeg is not installed.
  """
  if not os.path.isfile(path):
    raise ParameterError(f'G.722 file {path!r} does not exist')
  if (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
      or not 8000 <= sample_rate <= 96000):
    raise ParameterError(f'sample_rate must be an int in [8000, 96000] Hz, got {sample_rate!r}')
  cmd = [find_ffmpeg(), '-nostdin', '-loglevel', 'error', '-f', 'g722', '-i', path,
         '-ac', '1', '-ar', str(int(sample_rate)), '-f', 'f32le', '-']
  proc = subprocess.run(cmd, capture_output=True, check=False, timeout=300)
  if proc.returncode != 0 or not proc.stdout:
    raise ParameterError(
        f'ffmpeg cannot decode {path!r} as G.722 (exit code {proc.returncode}): '
        f'{proc.stderr.decode(errors="replace").strip()[:300] or "no samples"}')
  return np.frombuffer(proc.stdout, dtype='<f4').astype(np.float32)


@functools.lru_cache(maxsize=512)
def _load_cached(path: str, sample_rate: int) -> np.ndarray:
  if path.lower().endswith('.g722'):
    y = decode_g722(path, sample_rate=sample_rate)
  else:
    y, sr = load(path, mono=True)
    if sr != sample_rate:
      y = resample(y, orig_sr=sr, target_sr=sample_rate)
  y = np.asarray(y, np.float32)
  y.setflags(write=False)
  return y


def load_recording(path: str, *, sample_rate: int = 16000) -> np.ndarray:
  """A recording (``.g722``, or anything ``pipeline.audio.load`` reads) as mono float32.

  Decoded files are cached in memory (up to 512), read-only.

  Returns:
    float32 ``[n_samples]`` at ``sample_rate``.

  Raises:
    ParameterError: if the file is missing or undecodable.
    RecordedDependencyError: if a G.722 file needs ffmpeg and it is missing.
  """
  if not os.path.isfile(path):
    raise ParameterError(f'recording {path!r} does not exist')
  return _load_cached(os.path.abspath(path), int(sample_rate))


def _listing(folder: str, extensions: Sequence[str], what: str) -> List[str]:
  if not os.path.isdir(folder):
    raise RecordedDependencyError(
        f'{what} not found ({folder!r} does not exist); ' + INSTALL_HINT.format(
            PACKAGES.get(os.path.basename(folder), '')))
  found = []
  for root, dirs, files in os.walk(folder):
    dirs.sort()
    found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(tuple(extensions))]
  if not found:
    raise RecordedDependencyError(f'{what}: no {"/".join(extensions)} file in {folder!r}')
  return found


def prompt_files(folder: str, *, root: str = ASTERISK_SOUNDS) -> List[str]:
  """The speech prompts of one talent and language, sorted (tones and silence left out).

  Args:
    folder: a key of ``SPEAKERS``, e.g. ``'fr_CA_f_June'``.
    root: where the Asterisk sound folders are.

  Raises:
    ParameterError: for an unknown folder.
    RecordedDependencyError: if the package is not installed.
  """
  if folder not in SPEAKERS:
    raise ParameterError(f'prompt folder {folder!r} is not one of {sorted(SPEAKERS)}')
  base = os.path.join(root, folder)
  files = _listing(base, ('.g722',), f'Asterisk prompts {folder} ({PACKAGES[folder]})')
  return [f for f in files if not _NOT_SPEECH.search(os.path.relpath(f, base))]


def sample_files(root: str = SONIC_PI_SAMPLES) -> List[str]:
  """The sonic-pi samples (flac), sorted.

  Raises:
    RecordedDependencyError: if ``sonic-pi-samples`` is not installed.
  """
  return _listing(root, ('.flac', '.wav'), 'sonic-pi samples (sonic-pi-samples)')


def music_files(root: str = ASTERISK_MOH) -> List[str]:
  """The Asterisk music-on-hold tracks (G.722), sorted.

  Raises:
    RecordedDependencyError: if ``asterisk-moh-opsound-g722`` is not installed.
  """
  return _listing(root, ('.g722',), 'music on hold (asterisk-moh-opsound-g722)')


def stable_fraction(name: str) -> float:
  """A number in [0, 1) fixed by ``name`` alone (for splits by file or piece)."""
  import hashlib  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256(name.encode('utf-8')).digest()
  return int.from_bytes(digest[:8], 'big') / 2.0 ** 64


def split_by_name(paths: Sequence[str], fractions: Dict[str, float],
                  key=os.path.basename) -> Dict[str, List[str]]:
  """Assigns each path to a split by ``stable_fraction(key(path))``.

  Args:
    paths: file paths (or any strings).
    fractions: ``{split: share}`` in order, shares summing to 1.
    key: what of a path decides (its base name by default).

  Returns:
    ``{split: sorted paths}``; a split may be empty for few paths.

  Raises:
    ParameterError: if the shares do not sum to 1.
  """
  if abs(sum(fractions.values()) - 1) > 1e-9 or any(v < 0 for v in fractions.values()):
    raise ParameterError(f'split shares must be >= 0 and sum to 1, got {fractions}')
  edges, out, acc = [], {k: [] for k in fractions}, 0.0
  for name, share in fractions.items():
    acc += share
    edges.append((acc, name))
  for p in paths:
    u = stable_fraction(key(p))
    out[next((n for e, n in edges if u < e), edges[-1][1])].append(p)
  return {k: sorted(v) for k, v in out.items()}
