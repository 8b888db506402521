"""The spectrogram-inversion study (Magron & Virtanen 2023) on the speech + noise set.

Grid over lambda x iterations on the validation split, then median SDR (BSS Eval
v4) / SI-SDR / PESQ per algorithm and input SNR on the test split, for exact and
mel-estimated magnitudes (experiments.studies.inversion_study). Writes OUT/study.json and OUT/study.md.

  make speech-data
  python inversion_study.py --data_dir=out/speech --out_dir=out/inversion_study
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags

from commandline import cli_errors
from experiments.studies import inversion_study as study

_DATA_DIR = flags.DEFINE_string('data_dir', 'out/speech',
                                'Speech + noise data set (make speech-data).')
_OUT_DIR = flags.DEFINE_string('out_dir', 'out/inversion_study', 'Where results go.')
_SNRS_DB = flags.DEFINE_list('snrs_db', ['10', '0', '-10'], 'Input SNRs, dB.')
_ALGORITHMS = flags.DEFINE_list('algorithms', list(study.ALGORITHMS),
                                'inversion.phase METHODS names.')
_MAGNITUDES = flags.DEFINE_list('magnitudes', list(study.MAGNITUDES),
                                'exact and/or mel (round trip through --n_mels bands).')
_LAMBDAS = flags.DEFINE_list('lambdas', [f'{v:g}' for v in study.DEFAULT_LAMBDAS],
                             'Validation grid of the inconsistency weight.')
_ITERATIONS = flags.DEFINE_list('iterations', [str(i) for i in study.DEFAULT_ITERATIONS],
                                'Validation grid of iteration counts.')
_N_MELS = flags.DEFINE_integer('n_mels', 80, 'Mel bands of the estimated magnitudes.')
_MIX_WEIGHTS = flags.DEFINE_enum('mix_weights', 'magnitude', ['magnitude', 'equal'],
                                 'Mixing weights of Mix+Incons(_hardMag).')
_N_VALIDATION = flags.DEFINE_integer('n_validation', None, 'First clips of validation only.')
_N_TEST = flags.DEFINE_integer('n_test', None, 'First clips of test only.')
_PESQ = flags.DEFINE_bool('pesq', True, 'PESQ on the test split (pesq package).')
_N_FFT = flags.DEFINE_integer('n_fft', 1024, 'FFT size = Hann window length (samples).')
_HOP = flags.DEFINE_integer('hop_length', 256, 'STFT hop (samples).')
_BSS_FILTERS = flags.DEFINE_integer('bss_filters_len', 512, 'BSS Eval v4 filter taps.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = study.StudyConfig(
      data_dir=_DATA_DIR.value, out_dir=_OUT_DIR.value,
      snrs_db=tuple(float(s) for s in _SNRS_DB.value), algorithms=tuple(_ALGORITHMS.value),
      magnitudes=tuple(_MAGNITUDES.value), lambdas=tuple(float(v) for v in _LAMBDAS.value),
      iterations=tuple(int(i) for i in _ITERATIONS.value), n_mels=_N_MELS.value,
      mix_weights=_MIX_WEIGHTS.value, n_validation=_N_VALIDATION.value,
      n_test=_N_TEST.value, pesq=_PESQ.value, n_fft=_N_FFT.value, hop_length=_HOP.value,
      bss_filters_len=_BSS_FILTERS.value)
  study.run(config)


def run():
  cli_errors.run_main(main, 'inversion_study')


if __name__ == '__main__':
  run()
