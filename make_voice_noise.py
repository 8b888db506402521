"""Makes the voice + noise training set (recorded and synthetic voices, recorded and synthetic noise).

Writes ``out_dir/{train,validation,test}/NNNN/{voice,noise,mix_snr_<s>}.wav``
(+ ``clip.json``) and ``manifest.json`` (see ``datagen.voice_noise``), then,
with ``--tfr_dir``, mel TFRecords per source: ``<tfr_dir>/{voice,noise}/<split>``.
Needs espeak-ng, flite, ffmpeg and the Asterisk / sonic-pi packages
(``make system-speech-deps``). Resumable: finished clip folders and patch
folders are kept.

  python make_voice_noise.py --out_dir=out/speech_data \
      --splits=train:100:600,validation:200:60,test:300:60 --snr_range_db=-5,5
"""

import commandline.startup  # first: quiet start-up; --help and flag names before TensorFlow

import os

from absl import app
from absl import flags
from absl import logging

from commandline import cli_errors
from common.errors import ParameterError
from datagen import recorded, voice_noise, voices

_OUT_DIR = flags.DEFINE_string('out_dir', 'out/speech_data', 'Folder to write the set to.')
_SPLITS = flags.DEFINE_list('splits', list(voice_noise.DEFAULT_SPLITS),
                            'name:seed:n_clips per split (train, validation, test).')
_DURATION_S = flags.DEFINE_float('duration_s', 4.08, 'Seconds per clip (4.08 s = 2 patches).')
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate of the wavs, Hz.')
_SNR_RANGE = flags.DEFINE_list('snr_range_db', ['-5', '5'],
                               'low,high of the per-clip SNR (uniform), dB.')
_SNR_STEP = flags.DEFINE_float('snr_step_db', 0.1, 'SNRs are rounded to multiples of this, dB.')
_RECORDED_SHARE = flags.DEFINE_float('recorded_share', 0.7,
                                     'Share of clips with a recorded voice (else synthetic).')
_LEVEL_RANGE = flags.DEFINE_list('voice_level_range_dbfs', ['-32', '-20'],
                                 'low,high of the voice RMS, dBFS.')
_N_WORKERS = flags.DEFINE_integer('n_workers', 2, 'Clips made at once.')
_TFR_DIR = flags.DEFINE_string('tfr_dir', None,
                               'Also write mel TFRecords per source and split here.')
_OVERWRITE = flags.DEFINE_bool('overwrite', False,
                               'Replace clip folders made with other settings.')


def _pair(flag, values):
  try:
    return tuple(float(v) for v in values)
  except ValueError as e:
    raise ParameterError(f'--{flag} must be two numbers low,high, got {values}') from e


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = voice_noise.VoiceNoiseConfig(
      out_dir=_OUT_DIR.value, splits=tuple(_SPLITS.value), duration_s=_DURATION_S.value,
      sample_rate=_SAMPLE_RATE.value, snr_range_db=_pair('snr_range_db', _SNR_RANGE.value),
      snr_step_db=_SNR_STEP.value, recorded_share=_RECORDED_SHARE.value,
      voice_level_range_dbfs=_pair('voice_level_range_dbfs', _LEVEL_RANGE.value),
      n_workers=_N_WORKERS.value, overwrite=_OVERWRITE.value)
  manifest = voice_noise.build(config)
  for split, info in manifest['splits'].items():
    logging.info('%s: %s', split, {k: v for k, v in info['summary'].items()})
    if _TFR_DIR.value:
      for source in ('voice', 'noise'):
        meta = voice_noise.write_source_patches(
            os.path.join(_OUT_DIR.value, split), os.path.join(_TFR_DIR.value, source, split),
            source=source)
        logging.info('%s/%s: %d patches', source, split, meta['count'])
  return 0


def run():
  cli_errors.run_main(main, 'make_voice_noise', resumable=True,
                      expected=(voices.SpeechDependencyError, recorded.RecordedDependencyError))


if __name__ == '__main__':
  run()
