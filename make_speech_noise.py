"""Speech + noise mixtures at chosen input SNRs, offline (espeak-ng; see datagen.speech).

Writes ``out_dir/{train,validation,test}/NNNN/`` with ``voice.wav``,
``noise.wav`` (the noise at 0 dB SNR) and ``mix_snr_<snr>.wav`` (``10``, ``0``,
``-10``: voice + 10 ** (-snr / 20) * noise), 16 kHz mono float wavs, plus
``manifest.json``. Needs the Debian package ``espeak-ng`` (and fluidsynth for
instrument noise); ``make speech-data`` installs them and runs this script.
Resumable: finished clip folders are kept.

  python make_speech_noise.py --out_dir=out/speech \
      --splits=train:100:60,validation:200:20,test:300:20 --duration_s=3
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

from absl import app
from absl import flags
from absl import logging

from commandline import cli_errors
from datagen import speech
from common.errors import ParameterError

_OUT_DIR = flags.DEFINE_string('out_dir', 'out/speech', 'Folder to write the data set to.')
_SPLITS = flags.DEFINE_list(
    'splits', [f'{n}:{s}:{c}' for n, s, c in speech.DEFAULT_SPLITS],
    'name:seed:n_clips per split; clip i of a split comes from (seed, i).')
_DURATION_S = flags.DEFINE_float('duration_s', 3.0, 'Seconds per clip.')
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate of the wavs, Hz.')
_SNRS_DB = flags.DEFINE_list('snrs_db', ['10', '0', '-10'],
                             'Input SNRs (dB), one mixture file each.')
_NOISE_KINDS = flags.DEFINE_list(
    'noise_kinds', None, f'Noise kinds, round-robin over clips, from {speech.NOISE_KINDS}; '
    'default all (instrument only where fluidsynth is installed).')
_N_BABBLE = flags.DEFINE_integer('n_babble_talkers', 5, 'Talkers in a babble noise.')
_VOICE_RMS = flags.DEFINE_float('voice_rms_dbfs', -26.0, 'RMS level of the voice, dBFS.')
_N_WORKERS = flags.DEFINE_integer('n_workers', 2, 'Clips made at once.', lower_bound=1)
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace clip folders made with other settings.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    config = speech.SpeechNoiseConfig(
        out_dir=_OUT_DIR.value, splits=tuple(_SPLITS.value),
        duration_s=_DURATION_S.value, sample_rate=_SAMPLE_RATE.value,
        snrs_db=tuple(float(s) for s in _SNRS_DB.value),
        noise_kinds=tuple(_NOISE_KINDS.value) if _NOISE_KINDS.value else None,
        n_babble_talkers=_N_BABBLE.value, voice_rms_dbfs=_VOICE_RMS.value,
        n_workers=_N_WORKERS.value, overwrite=_OVERWRITE.value)
    manifest = speech.run(config)
  except (speech.SpeechDependencyError, ParameterError, ValueError) as e:
    logging.error('%s', e)
    return 1
  counts = ', '.join(f'{k} {v["n_clips"]}' for k, v in manifest['splits'].items())
  logging.info('%s: %s clips of %.2f s at %d Hz, SNRs %s dB, noise %s (espeak-ng %s)',
               _OUT_DIR.value, counts, manifest['duration_s'], manifest['sample_rate'],
               manifest['snrs_db'], manifest['noise_kinds'], manifest['espeak_ng_version'])
  return 0


def run():
  cli_errors.run_main(main, 'make_speech_noise')


if __name__ == '__main__':
  run()
