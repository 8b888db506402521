"""The synthesis encoders as model families of the shared waveform training.

Importing this module registers ``synthesis`` (mel target) and ``synthesis-linear``
(B1: linear magnitude) with ``baselines.waveform_training``, so that
``train_separator.py --model=synthesis --task=speech-noise`` trains them with the same
data reading (random 2.04 s segments of the voice + noise clips, a random level), the
shared loop (checkpoints, resume, EMA, TensorBoard), and the same export: each kept
checkpoint is scored by validation SI-SDR of the decoded voice and noise
(``SynthesisEncoder.__call__``: the default decoder) and the best is exported.

Loss: L1 on the [0, 1] features (``synthesis.encoder.feature_loss``); segments of one
prior patch (``FeatureConfig.patch_samples``: 64 frames).
"""

from baselines import waveform_training
from synthesis import encoder


def _loss_function(config, model):
  del config

  def fn(batch, seed):
    del seed
    return encoder.feature_loss(model, batch[0], batch[1])
  return fn, fn


def _named_config(target):
  def make(name, **overrides):
    return encoder.named_config(name, **dict(overrides, target=target))
  return make


for _target, _method in encoder.METHODS.items():
  waveform_training.register_model(waveform_training.ModelFamily(
      name=_method, named_config=_named_config(_target),
      build=lambda net, seed=0: encoder.SynthesisEncoder(net, seed=seed),
      loss_function=_loss_function,
      segment_samples=lambda config, net: net.patch_samples, batch_size=16,
      loss_name=lambda config: 'l1', n_sources_field=False, tasks=('speech-noise',)),
      replace=True)
