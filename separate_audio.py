"""Separates a mixture recording into one wav per source with BASIS and mel priors.

  python separate_audio.py --input=MIX.wav --out_dir=out/sep        # shipped piano + violin priors
  python separate_audio.py --input=MIX.wav --out_dir=out/sep --phase=misi
  python separate_audio.py --input=MIX.wav --prior_dir=A --prior_dir=B --names=a,b --out_dir=D

Any length and sample rate; the mixture is resampled to the priors' rate, cut
into overlapping patches, separated, stitched, inverted to audio (Wiener
filtering of the mixture by default) and written as DIR/<source>.wav with a
spectrogram figure and separation.json. Rerunning an interrupted command
resumes from its finished batches. See docs/audio_separation.md.
"""

import sys

from absl import app
from absl import flags

from basis import sampler_options
from basis.sampler import parse_level_steps
from experiments import audio_separation as lib
from inversion import phase
from commandline import flag_groups
from common import compute
from common.errors import ParameterError

FLAGS = flags.FLAGS
flags.DEFINE_string('input', None, 'Mixture audio file (wav, flac, ogg, ...).')
flags.DEFINE_string('out_dir', 'out/separate_audio', 'Output folder.')
flags.DEFINE_multi_string('prior_dir', None, 'One exported NCSN mel prior per source '
                          '(default: the shipped piano and violin priors).')
flags.DEFINE_list('names', None, 'Source names (default: from the prior folders).')
flags.DEFINE_integer('hop_frames', 48, 'Frames between patch starts (64: no overlap).')
flag_groups.define_sampler_flags(warm_start='start_level', constraint=False,
                                     step_size_default=2e-5, help={
    'sampler': 'fast: warm start at the third level, 25 steps on each of the 8 levels left, '
               'Tweedie step (201 score calls per source; measured in docs/basis.md); paper: '
               '100 steps on all 10 levels (1,000 calls). The flags below override it.',
    'steps_per_sigma': "Langevin steps per noise level (default: the sampler's, fast 25, "
                       'paper 100).',
    'step_size': 'BASIS delta (eta_i = delta (sigma_i / sigma_L)^2).',
    'start_level': "Warm start at this level (index into the priors' schedule, 0: cold) from "
                   "the mixture split 3 dB down per source plus noise (default: the "
                   "sampler's, fast 2, paper 0).",
    'likelihood_scale': 'Multiplies the 1 / sigma^2 mixture weight.'})
flags.adopt_module_key_flags(flag_groups)   # --help lists them
flags.DEFINE_integer('batch_size', 8, 'Patches per compiled call.')
flags.DEFINE_enum('magnitude', 'auto', ['auto', 'refiner', 'nnls', 'pinv'],
                  'Mel -> linear magnitude (auto: the shipped refiner where it fits, else NNLS).')
flags.DEFINE_enum('phase', 'wiener', sorted(phase.METHODS), 'Phase / waveform method.')
flags.DEFINE_integer('phase_iterations', 20, 'Iterations of the iterative phase methods.')
flags.DEFINE_integer('seed', 0, 'Langevin noise seed.')
flags.DEFINE_float('input_peak', 0.3, 'Scale the mixture to this peak before separating (the '
                   'level of the priors\' training data; estimates are scaled back). 0: as is.')
flags.DEFINE_boolean('resume', True, 'Reuse finished batches in <out_dir>/partial.')
flag_groups.define_precision_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.input:
    raise app.UsageError('--input (the mixture audio file) is required')
  try:
    level_steps = parse_level_steps(FLAGS.level_steps)
    config = lib.AudioSeparationConfig(
        input=FLAGS.input, out_dir=FLAGS.out_dir,
        prior_dirs=tuple(FLAGS.prior_dir or lib.DEFAULT_PRIOR_DIRS),
        names=tuple(FLAGS.names) if FLAGS.names else None, hop_frames=FLAGS.hop_frames,
        steps_per_sigma=level_steps if level_steps is not None else FLAGS.steps_per_sigma,
        step_size=FLAGS.step_size,
        sampler=FLAGS.sampler, start_level=FLAGS.start_level, denoise=FLAGS.denoise,
        likelihood_scale=FLAGS.likelihood_scale, batch_size=FLAGS.batch_size,
        precision=(FLAGS.precision if FLAGS.bfloat16 is None
                   else 'bfloat16' if FLAGS.bfloat16 else 'float32'),
        magnitude=FLAGS.magnitude, phase=FLAGS.phase,
        phase_iterations=FLAGS.phase_iterations, seed=FLAGS.seed, resume=FLAGS.resume,
        input_peak=FLAGS.input_peak or None)
    lib.run(config)
  except ParameterError as e:
    print(f'separate_audio: error: {e}', file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:
    print('\nseparate_audio: interrupted; rerun the same command to resume', file=sys.stderr)
    sys.exit(130)


def run():
  app.run(main)


if __name__ == '__main__':
  run()
