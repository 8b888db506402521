"""Train the mel -> magnitude refiner or the Deep Griffin-Lim block.

  python train_inversion_net.py --kind=refiner --workdir=runs/refiner \
      --export_dir=assets/inversion/refiner
  python train_inversion_net.py --kind=degli --workdir=runs/degli \
      --export_dir=assets/inversion/degli

Rerun the same command to resume. The defaults train on the rendered
instruments (`make data`) and the synthetic speech (`make speech-data`).
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import flags

from inversion import nets
from inversion import net_training
from commandline import cli_errors

FLAGS = flags.FLAGS
flags.DEFINE_enum('kind', None, list(nets.KINDS), 'Which network.', required=True)
flags.DEFINE_string('workdir', None, 'Run folder (resumes).', required=True)
flags.DEFINE_string('export_dir', '', 'Export the EMA weights here at the end.')
flags.DEFINE_list('train_data', ['out/data/render/train/piano/*.wav',
                                 'out/data/render/train/violin/*.wav',
                                 'out/speech/train/*/voice.wav'], 'Wav glob patterns.')
flags.DEFINE_list('eval_data', ['out/data/render/validation/piano/*.wav',
                                'out/data/render/validation/violin/*.wav',
                                'out/speech/validation/*/voice.wav'], 'Held-out wav globs.')
flags.DEFINE_integer('steps', 3000, 'Training steps.')
flags.DEFINE_integer('batch_size', 8, 'Crops per step.')
flags.DEFINE_integer('crop_frames', 64, 'STFT frames per crop.')
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_integer('channels', None, 'Network width (default: the kind\'s default).')
flags.DEFINE_integer('base_iterations', 0, 'Refiner: NNLS steps of its base (0: pseudo-inverse).')
flags.DEFINE_list('snr_db', ['-6', '12'], 'DeGLI: input SNR range (dB) of the noisy training STFTs.')
flags.DEFINE_integer('max_files', 200, 'At most this many files per pattern.')
flags.DEFINE_integer('sample_rate', 16000, 'Hz.')
flags.DEFINE_integer('n_fft', 2048, 'FFT size = window (samples).')
flags.DEFINE_integer('hop_length', 512, 'Hop (samples).')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_integer('eval_every', 500, 'Steps between evaluations.')


def main(argv):
  del argv
  config = net_training.NetTrainConfig(
      kind=FLAGS.kind, workdir=FLAGS.workdir, export_dir=FLAGS.export_dir,
      train_data=tuple(FLAGS.train_data), eval_data=tuple(FLAGS.eval_data),
      steps=FLAGS.steps, batch_size=FLAGS.batch_size, crop_frames=FLAGS.crop_frames,
      learning_rate=FLAGS.learning_rate, channels=FLAGS.channels,
      base_iterations=FLAGS.base_iterations, snr_db=tuple(float(v) for v in FLAGS.snr_db),
      max_files=FLAGS.max_files, seed=FLAGS.seed, eval_every=FLAGS.eval_every,
      stft=nets.StftSettings(sample_rate=FLAGS.sample_rate, n_fft=FLAGS.n_fft,
                             hop_length=FLAGS.hop_length))
  net_training.run(config)


def run():
  cli_errors.run_main(main, 'train_inversion_net', resumable=True)


if __name__ == '__main__':
  run()
