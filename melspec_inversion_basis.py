"""BASIS mel estimates + the mixture audio -> one wav per source.

  python melspec_inversion_basis.py --basis_dir=out/basis_mel --mixture_wav=MIX.wav \
      --output_dir=out/basis_mel/wav --phase=wiener

--basis_dir is run_basis_sep.py --dataset=melspec's output folder
(estimates.npy, features.json). The mixture's consecutive patch windows must be
the separated patches. Phase methods: inversion.phase.METHODS (mixture phase =
amplitude_mask, wiener, gla, fgla, misi, mix_incons, ...); gla / fgla also run
without --mixture_wav.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags

from experiments import inversion_runs as commands
from inversion import mel_to_linear
from inversion import phase
from commandline import cli_errors

FLAGS = flags.FLAGS
flags.DEFINE_string('basis_dir', None, 'BASIS mel output folder.', required=True)
flags.DEFINE_string('output_dir', None, 'Folder for the wavs; default BASIS_DIR/wav.')
flags.DEFINE_string('mixture_wav', None, 'The mixture audio (needed by all but gla/fgla).')
flags.DEFINE_enum('magnitude', commands.DEFAULT_MAGNITUDE, list(mel_to_linear.MAGNITUDE_METHODS),
                  'Mel -> linear magnitude.')
flags.DEFINE_integer('nnls_iter', mel_to_linear.DEFAULT_NNLS_ITERATIONS, 'NNLS steps.')
flags.DEFINE_string('refiner', None, 'Refiner folder (--magnitude=refiner); default the shipped one.')
flags.DEFINE_string('degli', None, 'DeGLI folder (--phase=degli); default the shipped one.')
flags.DEFINE_enum('phase', 'wiener', sorted(phase.METHODS), 'Phase / separation method.')
flags.DEFINE_integer('n_iter', None, "Iterations; default: the method's.")
flags.DEFINE_float('lam', None, "Inconsistency weight (mix_incons family); default: the method's.")
flags.DEFINE_enum('weights', None, list(phase.WEIGHTS), 'Mixing weights 1/J or V / sum V.')
flags.DEFINE_float('momentum', None, 'Fast GLA momentum.')
flags.DEFINE_boolean('stitch', True, 'One wav per source for the whole signal; else per patch.')
flags.DEFINE_integer('batch_size', 16, 'Patches per compiled call.')


def main(argv):
  del argv
  config = commands.BasisInversionConfig(
      basis_dir=FLAGS.basis_dir, output_dir=FLAGS.output_dir or FLAGS.basis_dir + '/wav',
      mixture_wav=FLAGS.mixture_wav, magnitude=FLAGS.magnitude, nnls_iter=FLAGS.nnls_iter,
      refiner=FLAGS.refiner, degli=FLAGS.degli,
      phase=FLAGS.phase, n_iter=FLAGS.n_iter, lam=FLAGS.lam, weights=FLAGS.weights,
      momentum=FLAGS.momentum, stitch=FLAGS.stitch, batch_size=FLAGS.batch_size)
  commands.run_basis_inversion(config)


def run():
  cli_errors.run_main(main, 'melspec_inversion_basis')


if __name__ == '__main__':
  run()
