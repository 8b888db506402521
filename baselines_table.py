"""Score the discriminative separators beside BASIS and the oracles on held-out clips.

  python baselines_table.py --task=piano-violin --split_dir=out/music/render/test \
      --n_tracks=12 --methods=unet,convtasnet,basis,IRM2,IBM2,Wiener --out_dir=out/baselines/pv
  python baselines_table.py --task=speech-noise --split_dir=out/speech_data/test \
      --n_tracks=24 --methods=unet,convtasnet,IRM2,IBM2,Wiener --out_dir=out/baselines/sn

Lays the first clips of a split out as a references folder
(``<out_dir>/references/<track>/{mixture,<source>}.wav``), separates each with
every method through the separator seam (the task's shipped models) and
writes the BSS Eval v4 / SI-SDR table, box plots and report.html
(``<out_dir>/report``) and the seconds per audio second of each method
(``<out_dir>/summary.json``). Resumable: finished tracks are kept.
"""

import os

from absl import flags

from baselines import waveform_training
from commandline import cli_errors

FLAGS = flags.FLAGS
flags.DEFINE_enum('task', None, sorted(waveform_training.TASK_SOURCES), 'Which sources.',
                  required=True)
flags.DEFINE_string('split_dir', None, 'A held-out split of the task\'s layout.', required=True)
flags.DEFINE_integer('n_tracks', 12, 'The first clips of the split.')
flags.DEFINE_float('max_s', None, 'Cut tracks to their first seconds (default: whole).')
flags.DEFINE_list('methods', ['unet', 'convtasnet', 'IRM2', 'IBM2', 'Wiener'],
                  'Registered methods (specs as evaluate_separation.py --methods).')
flags.DEFINE_string('out_dir', None, 'Output folder.', required=True)


def main(argv):
  del argv
  from experiments import evaluate_tracks  # pylint: disable=g-import-not-at-top
  refs = os.path.join(FLAGS.out_dir, 'references')
  tracks = waveform_training.write_references(FLAGS.split_dir, FLAGS.task, refs,
                                              n_tracks=FLAGS.n_tracks, max_s=FLAGS.max_s)
  evaluate_tracks.run(evaluate_tracks.TrackEvalConfig(
      references_dir=refs, out_dir=FLAGS.out_dir, tracks=tuple(tracks),
      methods=tuple(FLAGS.methods), task=FLAGS.task))


def run():
  cli_errors.run_main(main, 'baselines_table', resumable=True)


if __name__ == '__main__':
  run()
