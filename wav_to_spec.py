"""Turns a folder of audio files into mel-spectrogram patches in TFRecords.

  python wav_to_spec.py --in_dir=out/instruments/piano --out_dir=out/tfr/piano

The feature parameters (defaults: the reference 16 kHz, 2048/512 STFT,
96 Slaney mels 125-7600 Hz, 96 x 64 patches) are stored in metadata.json
beside the shards, and every reader checks them.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from commandline import cli_errors
from pipeline.config import FeatureConfig
from pipeline.spec_folder import folder_to_patches

FLAGS = flags.FLAGS
flags.DEFINE_string('in_dir', None, 'Folder of wav/flac/ogg files (recursive).', required=True)
flags.DEFINE_string('out_dir', None, 'Output folder for shards + metadata.json.', required=True)
flags.DEFINE_integer('sample_rate', 16000, 'Hz; files are resampled to it.')
flags.DEFINE_integer('n_fft', 2048, 'FFT size (samples).')
flags.DEFINE_integer('hop_length', 512, 'Hop (samples).')
flags.DEFINE_integer('n_mels', 96, 'Mel bands.')
flags.DEFINE_float('fmin', 125.0, 'Lowest mel edge (Hz).')
flags.DEFINE_float('fmax', 7600.0, 'Highest mel edge (Hz).')
flags.DEFINE_integer('patch_frames', 64, 'Frames per patch.')
flags.DEFINE_integer('patch_samples', 32640, 'Samples per patch window.')
flags.DEFINE_float('min_rms_db', -60.0, 'Skip windows quieter than this (dBFS).')
flags.DEFINE_boolean('pad_end', False, 'Keep a zero-padded last window per file.')
flags.DEFINE_boolean('overwrite', False, 'Replace an existing set in out_dir.')
flags.DEFINE_boolean('skip_bad_files', False, 'Skip unreadable files instead of failing.')
flags.DEFINE_integer('max_shard_mb', 64, 'Upper bound of one shard (MiB).')


def main(argv):
  del argv
  features = FeatureConfig(
      sample_rate=FLAGS.sample_rate, n_fft=FLAGS.n_fft, hop_length=FLAGS.hop_length,
      n_mels=FLAGS.n_mels, fmin=FLAGS.fmin, fmax=FLAGS.fmax,
      patch_frames=FLAGS.patch_frames, patch_samples=FLAGS.patch_samples)
  meta = folder_to_patches(
      FLAGS.in_dir, FLAGS.out_dir, features=features, min_rms_db=FLAGS.min_rms_db,
      pad_end=FLAGS.pad_end, overwrite=FLAGS.overwrite,
      max_shard_bytes=FLAGS.max_shard_mb << 20, skip_bad_files=FLAGS.skip_bad_files,
      progress=sys.stderr.isatty(), command=' '.join(sys.argv))
  print(f"wrote {meta['count']} patches of shape {tuple(meta['patch_shape'])} in "
        f"{len(meta['shards'])} shard(s) to {FLAGS.out_dir}")


def run():
  cli_errors.run_main(main, 'wav_to_spec')


if __name__ == '__main__':
  run()
