"""Separates a mixture recording (or a folder of them) into one wav per source.

  python separate_audio.py --input=MIX.wav --out_dir=out/sep        # basis, piano-violin
  python separate_audio.py --input=SONGS/ --out_dir=out/songs       # every file, resumable
  python separate_audio.py --input=MIX.wav --out_dir=D --method=basis --task=piano-violin \
      --phase=misi
  python separate_audio.py --input=MIX.wav --out_dir=D --model_dir=MY_TRAINED_MODEL
  python separate_audio.py --input=MIX.wav --prior_dir=A --prior_dir=B --names=a,b --out_dir=D
  python separate_audio.py --input=MIX.wav --out_dir=D --task=speech-noise \
      --method=synthesis:decoder=vocoder

Any length, rate and channel count: the separator seam (experiments/separators.py)
resamples to the model's rate and back, separates the channel mean (or each
channel: --channels=each) in chunks with cross-fades, and writes float32
DIR/<source>.wav at the input's rate and level, separation.json and a
spectrogram figure. Methods and tasks: --method (a registered method, with its
options as in evaluate_separation.py --methods: NAME[:key=value,...], e.g.
synthesis:decoder=vocoder or basis:sampler=paper), --task (piano-violin,
speech-noise). The basis flags below set the same options as a basis spec; an
option set both ways is an error. separation.json records the options; a rerun
resumes an interrupted command, and separates again where the options changed.
See docs/audio_separation.md and docs/separators.md.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import sys

from absl import flags

from basis.sampler import parse_level_steps
from commandline import cli_errors
from commandline import flag_groups
from common.errors import ParameterError
from experiments import basis_separator
from experiments import separate_files
from experiments import separators
from inversion import phase

FLAGS = flags.FLAGS
flag_groups.define_config_flags(
    separate_files.SeparateFilesConfig, enums={'channels': separators.CHANNEL_MODES},
    help={'method': f'Separation method NAME[:key=value,...], NAME one of '
                    f'{separators.methods()} (oracles need the true sources: evaluation '
                    'only), with the method\'s options (synthesis:decoder=vocoder, '
                    'basis:sampler=paper; an option also set by a flag is an error). '
                    'Default: the one --model_dir names, else basis.',
          'out_dir': 'Output folder: <source>.wav (a folder input: <file stem>/<source>.wav), '
                     'separation.json, spectrograms.png.'})
FLAGS.set_default('out_dir', 'out/separate_audio')
flags.DEFINE_multi_string('prior_dir', None, 'basis only: one exported mel prior per source '
                          'instead of the task\'s shipped model.')
flags.DEFINE_list('names', None, 'basis with --prior_dir: source names (default: from the '
                  'prior folders).')
flag_groups.define_sampler_flags(warm_start='start_level', constraint=False,
                                 step_size_default=2e-5, help={
    'sampler': 'basis: fast: warm start at the third level, 25 steps on each of the 8 levels '
               'left, Tweedie step (201 score calls per source; measured in docs/basis.md); '
               'paper: 100 steps on all 10 levels (1,000 calls). The flags below override it.',
    'steps_per_sigma': "basis: Langevin steps per noise level (default: the sampler's, fast "
                       '25, paper 100).',
    'step_size': 'basis: BASIS delta (eta_i = delta (sigma_i / sigma_L)^2).',
    'start_level': "basis: warm start at this level (index into the priors' schedule, 0: "
                   'cold) from the mixture split 3 dB down per source plus noise, or from '
                   "the --guide's estimates (default: the sampler's, fast 2, paper 0; with "
                   'a guide --guide_start_level).',
    'likelihood_scale': 'basis: multiplies the 1 / sigma^2 mixture weight.'})
SAMPLER_FLAGS = ('sampler', 'steps_per_sigma', 'level_steps', 'step_size', 'denoise',
                 'start_level', 'likelihood_scale')
BASIS_FLAGS = flag_groups.define_config_flags(
    basis_separator.BasisOptions,
    skip=SAMPLER_FLAGS + ('precision', 'mel_cache_dir'),
    enums={'magnitude': ['auto', 'refiner', 'nnls', 'pinv', 'guide'],
           'phase': sorted(phase.METHODS),
           # 'given' (true levels) needs the references: studies only, not this command.
           'level_normalise': list(basis_separator.LEVEL_MODES)},
    help={'input_peak': 'basis: scale the mixture to this peak before separating (the level '
                        "of the priors' training data; estimates are scaled back); default: "
                        "the model's (0.3 for the shipped priors); 0: as is.",
          'guide': "basis: start the chains from this separator's estimates, a method name "
                   '(its shipped model for --task, e.g. unet) or a model folder, at '
                   '--guide_start_level instead of from the mixture split; off: BASIS '
                   "alone; default: the model's (the shipped models: unet; "
                   'docs/generalization.md, "A guided start").',
          'guide_start_level': "basis: the level a --guide's start begins at when "
                               "--start_level is not given; default: the model's (shipped: "
                               'piano-violin 5, speech-noise 7), else 5.'})
flags.adopt_module_key_flags(flag_groups)   # --help lists the sampler flags
flag_groups.define_precision_flags()


def _method_options(method):
  """The basis options the flags set (the model folder's are the defaults).

  Args:
    method: the method name of --method, or None.

  Returns:
    ``(options, given_as)``: ``given_as`` names the flag of each option given on the
    command line (``precision`` without --precision / --bfloat16 is a default that a
    method spec may override).
  """
  basis_names = BASIS_FLAGS + SAMPLER_FLAGS + ('prior_dir', 'names')
  given = flag_groups.explicit_flags(basis_names)
  method = method or ('basis' if not FLAGS.model_dir else None)
  if given and method not in (None, 'basis'):
    raise ParameterError(f'--{sorted(given)[0]} applies to --method=basis only')
  if method not in (None, 'basis'):
    return {}, {}
  options = {k: v for k, v in given.items() if k not in ('level_steps', 'names', 'prior_dir')}
  given_as = {k: f'--{k}' for k in options}
  if 'level_steps' in given:
    options['steps_per_sigma'] = parse_level_steps(FLAGS.level_steps)
    given_as['steps_per_sigma'] = '--level_steps'
  if FLAGS.input_peak == 0:
    options['input_peak'] = None
  options['precision'] = (FLAGS.precision if FLAGS.bfloat16 is None
                          else 'bfloat16' if FLAGS.bfloat16 else 'float32')
  for name in flag_groups.explicit_flags(('precision', 'bfloat16')):
    given_as['precision'] = f'--{name}'
  if FLAGS.prior_dir:
    options['prior_dirs'] = tuple(FLAGS.prior_dir)
    options['names'] = tuple(FLAGS.names) if FLAGS.names else None
    given_as['prior_dirs'] = '--prior_dir'
    if FLAGS.names:
      given_as['names'] = '--names'
  elif FLAGS.names:
    raise ParameterError('--names goes with --prior_dir (the task names the shipped sources)')
  return options, given_as


def main(argv):
  if len(argv) > 1:
    raise ParameterError(f'unexpected arguments: {argv[1:]}')
  spec = FLAGS.method or None
  method = separators.parse_spec(spec)[0] if spec else None
  options, given_as = _method_options(method)
  if spec:
    method, options = separators.merge_options(spec, options, given_as=given_as)
  config = flag_groups.config_from_flags(separate_files.SeparateFilesConfig, FLAGS,
                                         method=method)
  if options.get('prior_dirs') and config.model_dir:
    raise ParameterError('give --prior_dir or --model_dir, not both')
  separate_files.run(config, method_options=options)


def run():
  cli_errors.run_main(main, 'separate_audio', resumable=True)


if __name__ == '__main__':
  run()
