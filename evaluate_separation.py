"""Scores separated signals against references: tables, box plots, a report page.

  python evaluate_separation.py --references=out/eval/references \
      --estimates=IRM2=out/eval/oracles/IRM2 --estimates=BASIS=out/eval/basis \
      --out_dir=out/eval/report
  python evaluate_separation.py --references=REFS --out_dir=out/eval \
      --methods=basis,basis:phase=misi,IRM2 [--estimates=MINE=DIR]

With --methods, every named method of the separator seam (models and oracles
alike; experiments/separators.py) separates each track's mixture first, and
the table holds them beside the mixture-as-estimate and any --estimates.

References: ``<track>/mixture.wav`` + ``<track>/<source>.wav``; each estimates
folder ``<track>/<source>.wav`` (the MUSDB / museval layout). Writes
results.{md,csv,json}, boxplot_<metric>.png and report.html (open it in a
browser: it plays every signal). A rerun skips tracks already scored.

Speech sources (--speech_sources; default: a source named ``voice``, as
--task=speech-noise has) also get PESQ (wide band) and STOI columns when the
``pesq`` and ``pystoi`` packages are installed (``pip install pesq pystoi``, the
[quality] extra); without them one line says so and the columns are left out.
A rerun over scores made without them adds only PESQ / STOI.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import app
from absl import flags

from evaluation import report
from commandline import cli_errors
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('references', None, 'References folder.', required=True)
flags.DEFINE_multi_string('estimates', None, 'NAME=DIR, once per method.')
flags.DEFINE_list('methods', None, 'Separate with these registered methods first (specs: NAME '
                  'or NAME:key=value,...; e.g. basis, basis:phase=misi, IRM2).')
flags.DEFINE_string('task', None, 'With --methods: the task whose shipped models load.')
flags.DEFINE_string('out_dir', None, 'Output folder of the report.', required=True)
flags.DEFINE_float('window_s', 1.0, 'BSS Eval window (s).')
flags.DEFINE_float('hop_s', 1.0, 'BSS Eval hop (s).')
flags.DEFINE_integer('filters_len', 512, 'BSS Eval distortion filter taps.')
flags.DEFINE_list('tracks', None, 'Only these tracks (default: all).')
flags.DEFINE_boolean('pad_or_truncate', False,
                     'Zero-pad or cut estimates of another length (as museval) instead of '
                     'failing.')
flags.DEFINE_boolean('media', True, 'Spectrograms and audio players in report.html.')
flags.DEFINE_list('speech_sources', None, 'Sources that are speech, also scored with PESQ '
                  '(wide band) and STOI (default: voice; empty for none).')


def main(argv):
  del argv
  if not FLAGS.estimates and not FLAGS.methods:
    raise ParameterError('give --methods (to separate) or --estimates=NAME=DIR (or both)')
  speech = {} if FLAGS.speech_sources is None else {
      'speech_sources': tuple(FLAGS.speech_sources)}
  if FLAGS.methods:
    from experiments import evaluate_tracks  # pylint: disable=g-import-not-at-top
    evaluate_tracks.run(evaluate_tracks.TrackEvalConfig(
        references_dir=FLAGS.references, out_dir=FLAGS.out_dir,
        tracks=tuple(FLAGS.tracks) if FLAGS.tracks else None, methods=tuple(FLAGS.methods),
        task=FLAGS.task, extra_estimates=report.parse_estimates(FLAGS.estimates or []),
        **speech))
    return
  config = report.ReportConfig(
      references_dir=FLAGS.references, estimates=report.parse_estimates(FLAGS.estimates),
      out_dir=FLAGS.out_dir, window_s=FLAGS.window_s, hop_s=FLAGS.hop_s,
      filters_len=FLAGS.filters_len, tracks=tuple(FLAGS.tracks) if FLAGS.tracks else None,
      pad_or_truncate=FLAGS.pad_or_truncate, media=FLAGS.media,
      progress=sys.stderr.isatty(), **speech)
  result = report.run(config)
  print(report.table_markdown(result['rows']), end='')
  if result['quality_note']:
    print(result['quality_note'])
  print(f"scored {result['computed']} (method, track) pair(s), {result['cached']} from the "
        f"cache; report: {result['paths']['html']}")


def run():
  cli_errors.run_main(main, 'evaluate_separation', resumable=True)


if __name__ == '__main__':
  run()
