"""Oracle separations (IBM, IRM, Wiener, MWF) of a references folder.

  python oracle_systems.py --references=out/eval/references --out_dir=out/eval/oracles \
      --methods=IBM1,IRM1,IRM2,MWF,IRM2-mel

References: ``<track>/mixture.wav`` + ``<track>/<source>.wav``. Writes
``<out_dir>/<method>/<track>/<source>.wav`` (the layout evaluate_separation.py
and museval read). Method names: IBM<alpha>, IRM<alpha>, Wiener, MWF, each
optionally with -mel (masks from the sources' mel spectrograms under the
feature setting of the --sample_rate/--mel_* flags).
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from baselines import oracles
from commandline import cli_errors
from pipeline.config import FeatureConfig

FLAGS = flags.FLAGS
flags.DEFINE_string('references', None, 'References folder (<track>/mixture.wav, '
                    '<track>/<source>.wav).', required=True)
flags.DEFINE_string('out_dir', None, 'Output folder: <out_dir>/<method>/<track>/<source>.wav.',
                    required=True)
flags.DEFINE_list('methods', ['IBM1', 'IRM1', 'IRM2', 'MWF'], 'Oracles to run.')
flags.DEFINE_float('theta', 0.5, 'IBM threshold on |Y_j|^a / |X|^a.')
flags.DEFINE_integer('n_fft', 2048, 'STFT size of the STFT-domain oracles (samples).')
flags.DEFINE_integer('hop_length', 1024, 'STFT hop of the STFT-domain oracles (samples).')
flags.DEFINE_integer('mel_sample_rate', 16000, 'Rate of the mel features (Hz, = the audio).')
flags.DEFINE_integer('mel_n_fft', 2048, 'STFT size of the mel features (samples).')
flags.DEFINE_integer('mel_hop_length', 512, 'Hop of the mel features (samples).')
flags.DEFINE_integer('n_mels', 96, 'Mel bands.')
flags.DEFINE_float('fmin', 125.0, 'Lowest mel edge (Hz).')
flags.DEFINE_float('fmax', 7600.0, 'Highest mel edge (Hz).')
flags.DEFINE_list('tracks', None, 'Only these tracks (default: all).')
flags.DEFINE_boolean('overwrite', False, 'Recompute tracks whose estimates exist.')


def main(argv):
  del argv
  features = FeatureConfig(
      sample_rate=FLAGS.mel_sample_rate, n_fft=FLAGS.mel_n_fft,
      hop_length=FLAGS.mel_hop_length, n_mels=FLAGS.n_mels, fmin=FLAGS.fmin,
      fmax=FLAGS.fmax, patch_frames=64, patch_samples=63 * FLAGS.mel_hop_length)
  config = oracles.OracleRunConfig(
      references_dir=FLAGS.references, out_dir=FLAGS.out_dir,
      oracles=tuple(oracles.parse_method(m, theta=FLAGS.theta, n_fft=FLAGS.n_fft,
                                         hop_length=FLAGS.hop_length, features=features)
                    for m in FLAGS.methods),
      tracks=tuple(FLAGS.tracks) if FLAGS.tracks else None,
      overwrite=FLAGS.overwrite, progress=sys.stderr.isatty())
  for name, folder in oracles.run(config).items():
    print(f'{name}: {folder}')


def run():
  cli_errors.run_main(main, 'oracle_systems', resumable=True)


if __name__ == '__main__':
  run()
