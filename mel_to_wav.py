"""wav -> mel spectrogram -> wav: how much a mel representation keeps.

  python mel_to_wav.py --input=IN.wav --output=OUT.wav [--magnitude=nnls --phase=fgla]
  python mel_to_wav.py --input=IN.wav --output=OUT.wav --method=vocoder

Prints the spectral convergence against the original (and PESQ / STOI when
the `pesq` / `pystoi` packages are installed); writes OUT.wav and OUT.png.
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags

from experiments import inversion_runs as commands
from inversion import mel_to_linear
from commandline import cli_errors
from pipeline.config import FeatureConfig

FLAGS = flags.FLAGS
flags.DEFINE_enum('method', 'inversion', ['inversion', 'vocoder'],
                  'inversion: --magnitude + --phase; vocoder: the neural vocoder (--vocoder).')
flags.DEFINE_string('vocoder', None, 'Vocoder folder (--method=vocoder); default the shipped '
                    'one (assets/inversion/vocoder_speech).')
flags.DEFINE_string('input', None, 'Audio file to rebuild.', required=True)
flags.DEFINE_string('output', None, 'Wav to write.', required=True)
flags.DEFINE_string('figure', None, "Spectrogram PNG; default OUTPUT with .png, '' for none.")
flags.DEFINE_enum('magnitude', commands.DEFAULT_MAGNITUDE, list(mel_to_linear.MAGNITUDE_METHODS),
                  'Mel -> linear magnitude.')
flags.DEFINE_integer('nnls_iter', mel_to_linear.DEFAULT_NNLS_ITERATIONS, 'NNLS steps.')
flags.DEFINE_string('refiner', None, 'Refiner folder (--magnitude=refiner); default the shipped one.')
flags.DEFINE_string('degli', None, 'DeGLI folder (--phase=degli); default the shipped one.')
flags.DEFINE_enum('phase', commands.DEFAULT_PHASE, ['gla', 'fgla', 'degli'], 'Phase retrieval.')
flags.DEFINE_integer('n_iter', commands.DEFAULT_PHASE_ITERATIONS, 'Phase iterations.')
flags.DEFINE_float('momentum', 0.99, 'Fast GLA momentum.')
flags.DEFINE_boolean('clip', False, 'Clip the mel power to [amin, amax] as the dB features do.')
flags.DEFINE_integer('seed', 0, 'Seed of the initial random phase.')
flags.DEFINE_integer('sample_rate', 16000, 'Hz; the input is resampled to it.')
flags.DEFINE_integer('n_fft', 2048, 'FFT size (samples).')
flags.DEFINE_integer('hop_length', 512, 'Hop (samples).')
flags.DEFINE_integer('n_mels', 96, 'Mel bands.')
flags.DEFINE_float('fmin', 125.0, 'Lowest mel edge (Hz).')
flags.DEFINE_float('fmax', 7600.0, 'Highest mel edge (Hz).')


def main(argv):
  del argv
  features = FeatureConfig(
      sample_rate=FLAGS.sample_rate, n_fft=FLAGS.n_fft, hop_length=FLAGS.hop_length,
      n_mels=FLAGS.n_mels, fmin=FLAGS.fmin, fmax=FLAGS.fmax,
      patch_samples=(FeatureConfig.patch_frames - 1) * FLAGS.hop_length)
  if FLAGS.method == 'vocoder':
    speak_with_vocoder(features)
    return
  config = commands.MelToWavConfig(
      input=FLAGS.input, output=FLAGS.output, figure=FLAGS.figure, features=features,
      clip=FLAGS.clip, magnitude=FLAGS.magnitude, nnls_iter=FLAGS.nnls_iter,
      refiner=FLAGS.refiner, degli=FLAGS.degli,
      phase=FLAGS.phase, n_iter=FLAGS.n_iter, momentum=FLAGS.momentum, seed=FLAGS.seed)
  commands.run_mel_to_wav(config)


def speak_with_vocoder(features):
  from inversion import vocoder  # pylint: disable=g-import-not-at-top
  from pipeline import audio  # pylint: disable=g-import-not-at-top
  y, out, seconds = vocoder.speak_file(FLAGS.input, features=features, vocoder=FLAGS.vocoder)
  scores = commands.quality_scores(y, out, features.sample_rate)
  peak = max(1.0, float(abs(out).max()))
  audio.write_wav(FLAGS.output, out / peak, features.sample_rate)
  print(' '.join(f'{k.upper()} {scores[k]:.3f}' for k in ('pesq', 'stoi') if scores[k] is not None)
        + f'; {seconds:.2f} s; wrote {FLAGS.output}', *scores['notes'], sep='\n')


def run():
  cli_errors.run_main(main, 'mel_to_wav')


if __name__ == '__main__':
  run()
