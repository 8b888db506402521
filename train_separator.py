"""Train a separator (Jansson U-Net, Conv-TasNet, or a synthesis encoder) and export it.

  python train_separator.py --model=unet --task=speech-noise \
      --workdir=runs/unet_speech --export_dir=assets/separators/speech-noise/unet
  python train_separator.py --model=convtasnet --task=piano-violin \
      --workdir=runs/tasnet_music --export_dir=assets/separators/piano-violin/convtasnet
  python train_separator.py --model=synthesis --task=speech-noise \
      --workdir=runs/synthesis_speech --export_dir=assets/separators/speech-noise/synthesis

``--model=synthesis`` predicts the voice's mel spectrum (the priors' features) and
``synthesis-linear`` (B1) its linear magnitude (docs/synthesis.md); both train on
``--task=speech-noise`` only.

Rerun the same command to resume (a finished run only re-exports). The data
default to the task's sets: ``make speech-data`` (out/speech_data/<split>) and
``make data`` (out/music/render/<split>). The export holds the checkpoint with
the best validation SI-SDR (docs/baselines.md).
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import json

from absl import flags

from baselines import separation_losses, waveform_training
import synthesis.training  # pylint: disable=unused-import  (registers synthesis, synthesis-linear)
from commandline import cli_errors
from common.errors import ParameterError
from training.strategy import STRATEGIES

DATA = {'speech-noise': 'out/speech_data', 'piano-violin': 'out/music/render'}

FLAGS = flags.FLAGS
flags.DEFINE_enum('model', None, list(waveform_training.MODELS), 'Which network.', required=True)
flags.DEFINE_enum('task', None, sorted(waveform_training.TASK_SOURCES), 'Which sources.',
                  required=True)
flags.DEFINE_string('workdir', None, 'Run folder (resumes).', required=True)
flags.DEFINE_string('export_dir', '', 'Export the best checkpoint here at the end.')
flags.DEFINE_string('train_dir', None, 'Training split (default: the task\'s set, train).')
flags.DEFINE_string('valid_dir', None, 'Validation split (default: the task\'s set, validation).')
flags.DEFINE_string('config', 'cpu', 'Named network config (unet: cpu, paper; convtasnet: cpu, '
                    'paper, paper-small; synthesis, synthesis-linear: cpu).')
flags.DEFINE_list('network', [], 'Overrides of the config: key=json_value,... '
                  '(e.g. hidden=256,blocks=8).')
flags.DEFINE_enum('loss', '', [''] + list(separation_losses.LOSSES),
                  'Conv-TasNet loss (default: pit_si_snr for speech-noise, si_snr for '
                  'piano-violin).')
flags.DEFINE_integer('steps', 2000, 'Training steps.')
flags.DEFINE_integer('batch_size', 0, 'Segments per step (0: unet 16, convtasnet 4, '
                     'synthesis 16).')
flags.DEFINE_float('segment_s', 2.0, 'Conv-TasNet segment length, seconds.')
flags.DEFINE_float('learning_rate', 1e-3, 'Adam learning rate.')
flags.DEFINE_float('grad_clip_norm', 5.0, 'Gradient clipping (global norm; 0: none).')
flags.DEFINE_float('ema_decay', 0.995, 'EMA decay of the weights (evaluation and export).')
flags.DEFINE_integer('val_clips', 24, 'Validation clips scored per checkpoint for the choice.')
flags.DEFINE_integer('checkpoint_every', 250, 'Steps between checkpoints.')
flags.DEFINE_integer('eval_every', 250, 'Steps between evaluations.')
flags.DEFINE_integer('keep_checkpoints', 6, 'Checkpoints kept (the export chooses among them).')
flags.DEFINE_enum('strategy', 'default', list(STRATEGIES), 'tf.distribute strategy.')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_bool('export_only', False, 'Skip training: score the kept checkpoints and export.')


def _overrides(items):
  out = []
  for item in items:
    key, sep, value = item.partition('=')
    if not sep or not key:
      raise ParameterError(f'--network={item!r}: expected key=value')
    try:
      out.append((key, json.loads(value)))
    except ValueError:
      out.append((key, value))
  return tuple(out)


def main(argv):
  del argv
  data = DATA[FLAGS.task]
  config = waveform_training.SeparatorTrainConfig(
      model=FLAGS.model, task=FLAGS.task, workdir=FLAGS.workdir, export_dir=FLAGS.export_dir,
      train_dir=FLAGS.train_dir or f'{data}/train',
      valid_dir=FLAGS.valid_dir or f'{data}/validation', config=FLAGS.config,
      network=_overrides(FLAGS.network), loss=FLAGS.loss, steps=FLAGS.steps,
      batch_size=FLAGS.batch_size, segment_s=FLAGS.segment_s,
      learning_rate=FLAGS.learning_rate, grad_clip_norm=FLAGS.grad_clip_norm,
      ema_decay=FLAGS.ema_decay, val_clips=FLAGS.val_clips,
      checkpoint_every=FLAGS.checkpoint_every, eval_every=FLAGS.eval_every,
      keep_checkpoints=FLAGS.keep_checkpoints, strategy=FLAGS.strategy, seed=FLAGS.seed)
  waveform_training.run(config, export_only=FLAGS.export_only)


def run():
  cli_errors.run_main(main, 'train_separator', resumable=True)


if __name__ == '__main__':
  run()
