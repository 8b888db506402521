"""Train the small neural vocoder (the priors' mel -> 16 kHz waveform).

  nice -n 10 python train_vocoder.py --workdir=runs/vocoder_speech
  python train_vocoder.py --mode=export --workdir=runs/vocoder_speech \
      --export_dir=assets/inversion/vocoder_speech

Rerun the same command to resume from the newest checkpoint. The defaults
train on the clean voices of the voice + noise set (`make speech-data`:
out/speech_data/<split>/<clip>/voice.wav); docs/vocoder.md.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import flags

from commandline import cli_errors
from common.errors import ParameterError
from inversion import vocoder

FLAGS = flags.FLAGS
flags.DEFINE_enum('mode', 'train', ['train', 'export'],
                  'train (resumes; exports at the end with --export_dir) or export only.')
flags.DEFINE_string('workdir', None, 'Run folder (resumes).', required=True)
flags.DEFINE_string('export_dir', '', 'Export the EMA weights here (a new or vocoder folder).')
flags.DEFINE_list('train_data', ['out/speech_data/train'],
                  'Wav folders (<clip>/voice.wav or *.wav), glob patterns or waveform TFRecords.')
flags.DEFINE_list('eval_data', ['out/speech_data/validation'], 'Held-out data, the same kinds.')
flags.DEFINE_enum('architecture', 'mb-melgan', list(vocoder.ARCHITECTURES), 'Generator.')
flags.DEFINE_integer('channels', None, 'Width after the input convolution (default: the '
                     'architecture\'s, 384 / 128).')
flags.DEFINE_string('init', '', 'Start from this vocoder folder\'s weights (new runs only).')
flags.DEFINE_integer('steps', 20000, 'Training steps.')
flags.DEFINE_integer('batch_size', 16, 'Segments per step.')
flags.DEFINE_integer('segment_frames', 16, 'Mel frames per segment (x hop_length samples).')
flags.DEFINE_float('learning_rate', 5e-4, 'Adam learning rate.')
flags.DEFINE_list('gain_db', ['-15', '10'], 'Random segment gain range, dB.')
flags.DEFINE_integer('tones', 0, 'Synthetic tone clips (steady / gliding sines with a few '
                     'harmonics) added to the training clips.')
flags.DEFINE_boolean('sc_per_item', False, 'Spectral convergence per segment (each weighs '
                     'the same) instead of over the batch.')
flags.DEFINE_integer('max_files', 2000, 'At most this many files per folder or pattern.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_integer('eval_every', 500, 'Steps between evaluations.')
flags.DEFINE_integer('checkpoint_every', 250, 'Steps between checkpoints.')


def network_config() -> vocoder.VocoderConfig:
  if FLAGS.architecture == 'hifigan-v2':
    net = vocoder.VocoderConfig.hifigan_v2()
  else:
    net = vocoder.VocoderConfig()
  if FLAGS.channels is not None:
    import dataclasses  # pylint: disable=g-import-not-at-top
    net = dataclasses.replace(net, channels=FLAGS.channels)
  return net


def main(argv):
  del argv
  net = network_config()
  if FLAGS.mode == 'export':
    if not FLAGS.export_dir:
      raise ParameterError('--mode=export needs --export_dir')
    vocoder.export_run(FLAGS.workdir, FLAGS.export_dir, net)
    return
  try:
    gain = tuple(float(v) for v in FLAGS.gain_db)
  except ValueError as e:
    raise ParameterError(f'--gain_db must be two numbers, got {FLAGS.gain_db}') from e
  config = vocoder.VocoderTrainConfig(
      workdir=FLAGS.workdir, train_data=tuple(FLAGS.train_data),
      eval_data=tuple(FLAGS.eval_data), network=net, init=FLAGS.init, steps=FLAGS.steps,
      batch_size=FLAGS.batch_size, segment_frames=FLAGS.segment_frames,
      learning_rate=FLAGS.learning_rate, gain_db=gain, tones=FLAGS.tones,
      sc_per_item=FLAGS.sc_per_item,
      max_files=FLAGS.max_files,
      seed=FLAGS.seed, eval_every=FLAGS.eval_every, checkpoint_every=FLAGS.checkpoint_every)
  vocoder.train(config, export_dir=FLAGS.export_dir)


def run():
  cli_errors.run_main(main, 'train_vocoder', resumable=True)


if __name__ == '__main__':
  run()
