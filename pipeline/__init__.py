"""Audio -> mel spectrogram -> TFRecord pipeline and tf.data datasets."""

from common.errors import ParameterError
from pipeline.config import FeatureConfig
from pipeline.filterbank import mel_filterbank
from pipeline.audio import load, write_wav, validate_audio, resample, to_mono
