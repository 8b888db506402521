"""A folder of audio files streamed straight into ``tf.data`` as mel patches.

The alternative to the TFRecord step (``wav_to_spec.py``): files are read,
decoded and resampled inside the ``tf.data`` graph by tensorflow-io, cut into
windows of ``patch_samples`` and turned into patches by the same
:class:`pipeline.MelTransform` as everywhere else, so a prior trained from
audio sees exactly the features a TFRecord set would give (tested).

Two backends give the same dataset: ``'tfio'`` (tensorflow-io's decoders and
resampler, in the graph) where tensorflow-io installs and loads (its last
release, 0.37.1, needs TensorFlow 2.16), ``'soundfile'`` elsewhere (each file
decoded by soundfile and resampled by ``pipeline.audio.resample`` in a
``tf.numpy_function``); ``'auto'`` takes the first that works.

Only the file headers are read in Python, once, to pick each file's decoder
and sample rate (``soundfile.info``); files of one kind (decoder, sample
dtype, rate) are decoded by one graph function. Splits are by file, so no
clip contributes windows to both train and test.

  ds, info = audio_patch_dataset(['out/data/render/train/piano'], split='train',
                                 batch_size=32, shuffle=True, repeat=True)
"""

import functools
import io
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from pipeline import audio
from pipeline import tfrecords
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.audio import AUDIO_EXTENSIONS
from pipeline.transforms import MelTransform


# (container, soundfile subtype) -> (tensorflow-io decoder name, sample dtype, full scale)
_DECODERS = {
    ('WAV', 'PCM_16'): ('wav', tf.int16, 32768.0),
    ('WAV', 'PCM_32'): ('wav', tf.int32, 2147483648.0),
    ('WAV', 'FLOAT'): ('wav', tf.float32, 1.0),
    ('WAVEX', 'PCM_16'): ('wav', tf.int16, 32768.0),
    ('WAVEX', 'FLOAT'): ('wav', tf.float32, 1.0),
    ('FLAC', 'PCM_16'): ('flac', tf.int16, 32768.0),
    ('OGG', 'VORBIS'): ('vorbis', tf.float32, 1.0),
    ('MP3', 'MPEG_LAYER_III'): ('mp3', tf.float32, 1.0),
}


def list_audio_files(folders: Union[str, Sequence[str]]) -> List[str]:
  """Sorted audio files (``pipeline.audio.AUDIO_EXTENSIONS``) under ``folders``, recursively.

  Raises:
    ParameterError: a folder is missing, or no audio file is found.
  """
  folders = [folders] if isinstance(folders, str) else list(folders)
  files = []
  for folder in folders:
    if not os.path.isdir(folder):
      raise ParameterError(f'audio folder {folder!r} does not exist')
    for root, _, names in os.walk(folder):
      files += [os.path.join(root, n) for n in names if n.lower().endswith(AUDIO_EXTENSIONS)]
  if not files:
    raise ParameterError(f'no audio files ({", ".join(AUDIO_EXTENSIONS)}) in {folders}')
  return sorted(files)


def _file_kind(path: str, features: FeatureConfig,
               warn) -> Tuple[str, tf.DType, float, int]:
  """The decoder of ``path``, after the one audio check of every reader.

  ``pipeline.audio.check_file`` refuses a truncated, undecodable or empty file
  and warns of a rate below ``features.sample_rate``; float files (the only
  ones that can hold NaN or a peak above 1) are read once here, since in the
  stream a NaN window would be dropped by the level filter without a word.
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  info, warnings = audio.check_file(path, sample_rate=features.sample_rate)
  if info.subtype in ('FLOAT', 'DOUBLE'):
    y = audio.validate_audio(sf.read(path, dtype='float32')[0], name=f'audio file {path!r}')
    warnings += audio.level_warnings(y, path)
  for line in warnings:
    warn(line)
  key = (info.format, info.subtype)
  if key not in _DECODERS:
    raise ParameterError(
        f'{path}: {info.format}/{info.subtype} audio is not streamable (supported: '
        f'{sorted(f"{a}/{b}" for a, b in _DECODERS)}); convert it or use wav_to_spec.py')
  name, dtype, scale = _DECODERS[key]
  return name, dtype, scale, int(info.samplerate)


BACKENDS = ('auto', 'tfio', 'soundfile')


@functools.lru_cache(maxsize=1)
def tfio_available() -> bool:
  """Whether tensorflow-io imports and its audio kernels load with this TensorFlow."""
  try:
    import soundfile as sf  # pylint: disable=g-import-not-at-top
    import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(4, np.int16), 8000, format='WAV', subtype='PCM_16')
    tfio.audio.decode_wav(tf.constant(buffer.getvalue()), dtype=tf.int16)
    return True
  except Exception:  # pylint: disable=broad-except  # any failure: not usable here
    return False


def resolve_backend(backend: str) -> str:
  """``'auto'`` -> ``'tfio'`` where tensorflow-io works, else ``'soundfile'``.

  Raises:
    ParameterError: an unknown backend, or ``'tfio'`` where it does not load.
  """
  if backend not in BACKENDS:
    raise ParameterError(f'unknown audio backend {backend!r}; choose one of {list(BACKENDS)}')
  if backend == 'soundfile':
    return backend
  if tfio_available():
    return 'tfio'
  if backend == 'tfio':
    raise ParameterError("backend 'tfio': tensorflow-io is not installed or does not load with "
                         f'TensorFlow {tf.__version__}; use the soundfile backend')
  return 'soundfile'


def _soundfile_mono(path, rate_out: int) -> np.ndarray:
  """float32 mono ``[n_samples]`` of ``path`` at ``rate_out`` (soundfile + scipy)."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  y, rate = sf.read(path.decode() if isinstance(path, bytes) else path, dtype='float32',
                    always_2d=True)
  y = y.mean(axis=1)
  if rate != rate_out:
    y = audio.resample(y, orig_sr=rate, target_sr=rate_out)
  return np.asarray(y, np.float32)


def _decode(raw, name: str, dtype: tf.DType):
  import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
  if name == 'wav':
    return tfio.audio.decode_wav(raw, dtype=dtype)
  if name == 'flac':
    return tfio.audio.decode_flac(raw, dtype=dtype)
  if name == 'vorbis':
    return tfio.audio.decode_vorbis(raw)
  return tfio.audio.decode_mp3(raw)


def _group_dataset(paths: Sequence[str], kind, features: FeatureConfig,
                   transform: MelTransform, min_rms_db: Optional[float],
                   backend: str = 'tfio') -> tf.data.Dataset:
  name, dtype, scale, rate = kind
  n = features.patch_samples

  def load(path):
    if backend == 'soundfile':
      y = tf.numpy_function(lambda p: _soundfile_mono(p, features.sample_rate), [path],
                            tf.float32, stateful=False)
      y.set_shape([None])
    else:
      samples = _decode(tf.io.read_file(path), name, dtype)            # [n_samples, channels]
      y = tf.reduce_mean(tf.cast(samples, tf.float32), axis=-1) / scale  # mono, [-1, 1]
    if rate != features.sample_rate and backend == 'tfio':
      import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
      y = tf.reshape(tfio.audio.resample(y, rate_in=rate, rate_out=features.sample_rate), [-1])
    windows = tf.signal.frame(y, n, n)                                 # [n_windows, n]
    if min_rms_db is not None:
      rms_db = 10.0 * tf.math.log(tf.reduce_mean(windows ** 2, axis=1) + 1e-20) / np.log(10.0)
      windows = tf.boolean_mask(windows, rms_db >= min_rms_db)
    return windows

  ds = tf.data.Dataset.from_tensor_slices(list(paths))
  ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE)
  ds = ds.unbatch().batch(16)   # whole windows, converted 16 at a time
  ds = ds.map(transform.waveform_to_unit, num_parallel_calls=tf.data.AUTOTUNE)
  return ds.unbatch()


def audio_patch_dataset(folders: Union[str, Sequence[str]], *,
                        features: Optional[FeatureConfig] = None, split: str = 'train',
                        test_fraction: float = 0.1, batch_size: Optional[int] = None,
                        shuffle: bool = True, seed: int = 0, repeat: bool = False,
                        drop_remainder: bool = False, min_rms_db: Optional[float] = -60.0,
                        shuffle_buffer: int = 2048, backend: str = 'auto',
                        log=None) -> Tuple[tf.data.Dataset, Dict[str, Any]]:
  """Mel patches ``[n_mels, patch_frames, 1]`` in [0, 1] streamed from audio files.

  Args:
    folders: folder(s) searched recursively for ``.wav .flac .ogg .mp3``.
    features: the ``FeatureConfig`` (default: the reference setting).
    split: ``'train'``, ``'test'`` or ``'all'``; by file, with the same rule
      as the TFRecord sets (``pipeline.tfrecords.split_mask`` over the sorted
      file list).
    test_fraction: share of files in the test split.
    batch_size: batch the patches (None: single patches).
    shuffle: shuffle files and patches (buffer ``shuffle_buffer``).
    seed: shuffle seed.
    repeat: repeat forever (training).
    drop_remainder: drop a partial last batch.
    min_rms_db: skip windows quieter than this (dB re full scale), as
      ``wav_to_spec.py`` does; None keeps all.
    backend: ``'auto'``, ``'tfio'`` or ``'soundfile'`` (the module docstring).
    log: called with each warning line (``pipeline.audio.check_file``: a
      source below the feature rate, a float peak above 1); default: printed
      to stderr. The lines are also in ``info['warnings']``.

  Returns:
    ``(dataset, info)`` with info keys ``num_files``, ``image_shape``,
    ``features``, ``value_range``, ``source`` and ``num_examples`` (None: not
    known without decoding everything).

  Raises:
    ParameterError: missing folders, no audio, an unstreamable format, a bad
      split; as ``pipeline.audio.check_file`` (truncated, undecodable or empty
      files), NaN or infinite samples in a float file.
  """
  features = features or FeatureConfig()
  backend = resolve_backend(backend)
  files = list_audio_files(folders)
  if split == 'all':
    chosen = files
  else:
    mask = tfrecords.split_mask(len(files), split=split, test_fraction=test_fraction)
    chosen = [f for f, keep in zip(files, mask) if keep]
  if not chosen:
    raise ParameterError(f'the {split!r} split of {len(files)} audio files is empty; '
                         'add files or change test_fraction')
  if shuffle:
    chosen = [chosen[i] for i in np.random.default_rng(seed).permutation(len(chosen))]
  warnings: List[str] = []

  def warn(line):
    warnings.append(line)
    if log is None:
      print(f'warning: {line}', file=sys.stderr, flush=True)
    else:
      log(f'warning: {line}')

  groups: Dict[Any, List[str]] = {}
  for path in chosen:
    kind = _file_kind(path, features, warn)
    groups.setdefault((kind[0], kind[1].name, kind[2], kind[3]), []).append(path)
  transform = MelTransform(features)
  parts = [_group_dataset(paths, (k[0], tf.as_dtype(k[1]), k[2], k[3]), features, transform,
                          min_rms_db, backend) for k, paths in groups.items()]
  if len(parts) == 1:
    ds = parts[0]
  else:
    ds = tf.data.Dataset.sample_from_datasets(
        parts, weights=[len(groups[k]) / len(chosen) for k in groups], seed=seed,
        stop_on_empty_dataset=False)
  if repeat:
    ds = ds.repeat()
  if shuffle:
    ds = ds.shuffle(shuffle_buffer, seed=seed)
  if batch_size is not None:
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  info = {'num_files': len(chosen), 'num_examples': None,
          'image_shape': features.patch_shape, 'features': features,
          'value_range': (0.0, 1.0), 'warnings': warnings,
          'backend': backend,
          'source': f'audio files streamed by {"tensorflow-io" if backend == "tfio" else "soundfile"} '
                    f'({", ".join(sorted(_groups_desc(groups)))})'}
  return ds, info


def _groups_desc(groups) -> List[str]:
  return [f'{len(v)} {k[0]}/{k[1]} at {k[3]} Hz' for k, v in groups.items()]
