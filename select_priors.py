"""Chooses priors and sampler settings by separation SDR on held-out tracks (not by loss).

  python select_priors.py --render_dir=out/music/render/validation --n_tracks=12 \
      --candidate=shipped:assets/priors/ncsn_piano,assets/priors/ncsn_violin \
      --candidate=step2000:runs/snap/piano_2000,runs/snap/violin_2000 \
      --candidate='fast_delta3e-5:assets/priors/ncsn_piano,assets/priors/ncsn_violin;step_size=3e-5' \
      --out_dir=out/select

Each --candidate is NAME:PRIOR_DIR,PRIOR_DIR (one per source, piano then violin)
with optional ;key=value basis options (the separate_audio flags of the same
names). Every candidate separates the same tracks (the first --n_tracks clips
of a rendered split, laid out as a references folder, or --references); the
table ranks them by the mean median SDR improvement over the mixture and goes
to out_dir/selection.md and .json. Finished candidates are skipped on a rerun.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import os

from absl import flags

from commandline import cli_errors
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('render_dir', None, 'A rendered split ({mixture,piano,violin}/NNNNN.wav), '
                    'e.g. the validation timbre out/music/render/validation.')
flags.DEFINE_string('references', None, 'Or a references folder (<track>/mixture.wav, '
                    '<track>/<source>.wav).')
flags.DEFINE_integer('n_tracks', 12, 'With --render_dir: the first N clips.')
flags.DEFINE_multi_string('candidate', None, 'NAME:PRIOR_DIR,PRIOR_DIR[;key=value,...]')
flags.DEFINE_list('sources', ['piano', 'violin'], 'The sources, in the order of each '
                  "candidate's prior folders.")
flags.DEFINE_string('out_dir', 'out/select', 'Output folder.')
flags.DEFINE_string('precision', 'auto', 'Score network precision (auto, float32, bfloat16).')


def main(argv):
  if len(argv) > 1:
    raise ParameterError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.candidate:
    raise ParameterError('give at least one --candidate=NAME:PRIOR_DIR,PRIOR_DIR')
  if bool(FLAGS.render_dir) == bool(FLAGS.references):
    raise ParameterError('give --render_dir or --references (one of them)')
  from experiments import evaluate_tracks  # pylint: disable=g-import-not-at-top
  from experiments.studies import prior_selection  # pylint: disable=g-import-not-at-top
  candidates = [prior_selection.parse_candidate(c) for c in FLAGS.candidate]
  refs = FLAGS.references
  if not refs:
    refs = os.path.join(FLAGS.out_dir, 'references')
    evaluate_tracks.tracks_from_render(FLAGS.render_dir, refs, n_tracks=FLAGS.n_tracks)
  rows = prior_selection.run(refs, candidates, FLAGS.out_dir, sources=tuple(FLAGS.sources),
                             base_options={'precision': FLAGS.precision})
  print(prior_selection.markdown(rows), end='')


def run():
  cli_errors.run_main(main, 'select_priors', resumable=True)


if __name__ == '__main__':
  run()
