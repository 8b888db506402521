"""BASIS quality against score-network calls per source (docs/basis.md, "Fewer network calls").

  python basis_calls_study.py --out_dir=out/basis_calls            # 200 MNIST pairs
  python basis_calls_study.py --out_dir=out/quick --n_pairs=32 --budgets=100,200
  python basis_calls_study.py --out_dir=out/basis_calls_audio \
      --audio_references=out/heldout/references \
      --audio_cells=basis@100,basis@200,basis@1000,warm_start_2_denoise@200

Every cell separates the same test pairs with the same seeds; finished cells
are kept in <out_dir>/cells, so an interrupted study continues. Writes
results.json, table.md and psnr_vs_calls.png. With --audio_references the
audio curve instead: median SDR after Wiener inversion of the piano + violin
tracks against calls (audio_results.json, audio_table.md, sdr_vs_calls.png).
Rows: experiments/studies/basis_calls.py.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags

from experiments.studies import basis_calls
from commandline import cli_errors

FLAGS = flags.FLAGS
flags.DEFINE_string('out_dir', 'out/basis_calls', 'Output folder.')
flags.DEFINE_string('prior_dir', basis_calls.MNIST_PRIOR, 'Exported NCSN prior (MNIST).')
flags.DEFINE_integer('n_pairs', 200, 'MNIST test pairs (the same for every cell).')
flags.DEFINE_list('curve_rows', list(basis_calls.CallStudyConfig.curve_rows),
                  f'Rows run at every --budgets; rows: {sorted(basis_calls.ROWS)}.')
flags.DEFINE_list('budgets', [str(b) for b in basis_calls.CallStudyConfig.budgets],
                  'Score calls per source of the curves.')
flags.DEFINE_list('option_rows', list(basis_calls.CallStudyConfig.option_rows),
                  'Rows run at --option_budgets only (each option alone).')
flags.DEFINE_list('option_budgets', ['200'], 'Calls per source of the option rows.')
flags.DEFINE_integer('batch_size', None, 'Pairs per compiled call (default: all).')
flags.DEFINE_integer('seed', 0, 'Pair draw and Langevin noise.')
flags.DEFINE_string('audio_references', None, 'A references folder (<track>/mixture.wav, '
                    '<track>/<source>.wav): run the audio curve instead of MNIST.')
flags.DEFINE_list('audio_tracks', None, 'Tracks of --audio_references (default: all).')
flags.DEFINE_list('audio_cells', None, 'row@calls cells of the audio curve; rows: '
                  f'{sorted(basis_calls.AUDIO_ROWS)} (default: '
                  'experiments/basis_calls.AudioCallStudyConfig).')
flags.DEFINE_enum('precision', 'auto', ['auto', 'float32', 'bfloat16'],
                  'Score-network compute dtype (auto: bfloat16 where the CPU runs it natively).')


def _ints(name):
  try:
    return tuple(int(v) for v in getattr(FLAGS, name))
  except ValueError as e:
    raise app.UsageError(f'--{name} must be a comma list of ints: {e}') from e


def _audio_cells():
  out = []
  for cell in FLAGS.audio_cells:
    name, _, calls = cell.partition('@')
    if not calls.isdigit():
      raise app.UsageError(f'--audio_cells takes row@calls, got {cell!r}')
    out.append((name, int(calls)))
  return tuple(out)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if FLAGS.audio_references:
    kwargs = {'cells': _audio_cells()} if FLAGS.audio_cells else {}
    basis_calls.run_audio(basis_calls.AudioCallStudyConfig(
        out_dir=FLAGS.out_dir, references_dir=FLAGS.audio_references,
        tracks=tuple(FLAGS.audio_tracks) if FLAGS.audio_tracks else None,
        precision=FLAGS.precision, **kwargs))
    return
  basis_calls.run(basis_calls.CallStudyConfig(
      out_dir=FLAGS.out_dir, prior_dir=FLAGS.prior_dir, n_pairs=FLAGS.n_pairs,
      curve_rows=tuple(FLAGS.curve_rows), budgets=_ints('budgets'),
      option_rows=tuple(FLAGS.option_rows), option_budgets=_ints('option_budgets'),
      batch_size=FLAGS.batch_size, seed=FLAGS.seed, precision=FLAGS.precision))


def run():
  cli_errors.run_main(main, 'basis_calls_study', resumable=True)


if __name__ == '__main__':
  run()
