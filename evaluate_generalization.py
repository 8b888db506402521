"""The generalisation matrix: every shipped method on seen / unseen timbre (or voice) x levels (or SNR).

  python evaluate_generalization.py --task=piano-violin --n_tracks=3 --out_dir=out/matrix
  python evaluate_generalization.py --task=speech-noise --n_tracks=10 --out_dir=out/matrix_speech
  python evaluate_generalization.py --methods=basis,basis:phase=misi,IRM2 --conditions=unseen-natural

Renders each condition's test set (held-out pieces or voices; nothing is
downloaded), separates it with every method (default: each method with a
shipped model for --task, then the IRM2 oracle, beside the mixture itself),
scores BSS Eval v4 and SI-SDR (and the voice's PESQ and STOI for speech-noise,
with `pip install pesq pystoi`), and writes matrix.md / .json (median SDR and
its interquartile range per method, source and condition; PESQ / STOI tables),
matrix.png (the heat map of SDR improvement over the mixture; matrix_quality.png
for PESQ / STOI) and index.html (each condition's report with players).
Rerunning resumes: nothing separated or scored before is done again.
docs/generalization.md.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import flags

from commandline import cli_errors
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('out_dir', 'out/matrix', 'Output folder.')
flags.DEFINE_string('task', 'piano-violin', 'piano-violin or speech-noise.')
flags.DEFINE_integer('n_tracks', 3, 'Tracks per condition.')
flags.DEFINE_list('methods', None, 'Method specs (default: the shipped ones for --task and '
                  'IRM2), e.g. basis,basis:phase=misi,IRM2.')
flags.DEFINE_list('conditions', None, 'Only these conditions (default: all of --task): '
                  'piano-violin seen-equal, seen-natural, unseen-equal, unseen-natural; '
                  'speech-noise seen-low, seen-high, unseen-low, unseen-high.')
flags.DEFINE_string('pieces_cache', None, "piano-violin: the music21 parse cache (e.g. make "
                    "data's out/music/render/pieces; parsing the corpus takes minutes once); "
                    'default: <out_dir>/sets/pieces.')
flags.DEFINE_float('duration_s', None, 'Seconds per rendered track (default: the set '
                   "builder's: 8.16 piano-violin, 4.08 speech-noise).")


def main(argv):
  if len(argv) > 1:
    raise ParameterError(f'unexpected arguments: {argv[1:]}')
  from experiments import generalization  # pylint: disable=g-import-not-at-top
  generalization.run(generalization.MatrixConfig(
      out_dir=FLAGS.out_dir, task=FLAGS.task, n_tracks=FLAGS.n_tracks,
      methods=tuple(FLAGS.methods) if FLAGS.methods else None,
      conditions=tuple(FLAGS.conditions) if FLAGS.conditions else None,
      duration_s=FLAGS.duration_s, pieces_cache=FLAGS.pieces_cache))


def run():
  cli_errors.run_main(main, 'evaluate_generalization', resumable=True)


if __name__ == '__main__':
  run()
