"""The decoder of separation by synthesis: predicted features -> the voice's waveform.

* ``synthesis`` (mel): the project's mel inversion, the trained refiner (mel -> linear
  magnitude, ``inversion.mel_to_linear``, ``assets/inversion/refiner``) and phase
  retrieval (``inversion.phase``: fast Griffin-Lim by default);
* ``synthesis-linear`` (B1): the predicted magnitude straight into phase retrieval;
* ``synthesis`` with ``decoder='vocoder'``: the predicted mel spoken by the small neural
  vocoder (``inversion.vocoder``, ``assets/inversion/vocoder_speech``); the magnitude and
  phase options do not apply, and its waveform is not tied to the mixture's phase.

Phase retrieval starts from the mixture's phase (``init='mixture'``, default: the
estimate stays aligned with the voice in the mixture, which sample-level scores and the
noise estimate ``mixture - voice`` need) or from a random phase (``init='random'``: pure
synthesis, as a vocoder would speak it; the paper's setting). The voice is scaled back
by the encoder's input gain; the noise estimate is the mixture minus the voice.
"""

import dataclasses
from typing import Optional

import tensorflow as tf

from common.errors import ParameterError
from inversion import mel_to_linear, phase

PHASES = ('fgla', 'gla', 'degli')
INITS = ('mixture', 'random')
MAGNITUDES = ('refiner', 'nnls', 'pinv')
DECODERS = ('inversion', 'vocoder')
DEFAULT_ITERATIONS = {'mel': 0, 'linear': 32}


@dataclasses.dataclass(frozen=True)
class DecoderConfig:
  """Attributes:
    magnitude: mel -> magnitude (``'refiner'``, ``'nnls'``, ``'pinv'``); mel target only.
    phase: phase retrieval without a mixture constraint (``'fgla'``, ``'gla'``,
      ``'degli'``).
    n_iter: int >= 0, phase iterations; None: ``DEFAULT_ITERATIONS`` of the target
      (mel: 0, the refined magnitude on the mixture's phase; linear: 32). Measured on
      the true features of a test clip (tests/test_synthesis.py, docs/synthesis.md):
      iterating from the mixture's phase makes the mel path's magnitude, which no
      signal has exactly, consistent at the cost of the alignment (SI-SDR 9.9 dB at
      0 iterations, 6.2 at 32, 3.7 at 100), while B1's true magnitude gains
      (11.9, 17.8, 14.4 dB).
    init: ``'mixture'`` (the mixture's phase) or ``'random'``.
    seed: int, the random initial phase.
    refiner: a refiner folder (None: the shipped one).
    decoder: ``'inversion'`` (magnitude + phase retrieval) or ``'vocoder'`` (mel target
      only: the neural vocoder speaks the predicted mel).
    vocoder: a vocoder folder (None: the shipped one); ``decoder='vocoder'`` only.
  """
  magnitude: str = 'refiner'
  phase: str = 'fgla'
  n_iter: Optional[int] = None
  init: str = 'mixture'
  seed: int = 0
  refiner: Optional[str] = None
  decoder: str = 'inversion'
  vocoder: Optional[str] = None

  def __post_init__(self):
    for name, allowed in (('magnitude', MAGNITUDES), ('phase', PHASES), ('init', INITS),
                          ('decoder', DECODERS)):
      if getattr(self, name) not in allowed:
        raise ParameterError(f'synthesis {name} must be one of {list(allowed)}, got '
                             f'{getattr(self, name)!r}')
    if self.n_iter is not None and (isinstance(self.n_iter, bool) or
                                    not isinstance(self.n_iter, int) or self.n_iter < 0):
      raise ParameterError(f'synthesis n_iter must be an int >= 0, got {self.n_iter!r}')


def prepare(model, config: DecoderConfig):
  """Loads the decoder's networks (refiner, DeGLI) eagerly, also when called while
  tracing a ``tf.function`` (their variables must not be made inside the trace)."""
  from inversion import nets  # pylint: disable=g-import-not-at-top
  t = model.features.transform
  if config.decoder == 'vocoder':
    if model.config.target != 'mel':
      raise ParameterError('synthesis decoder=vocoder speaks a mel target; '
                           f'{model.config.method!r} predicts the linear magnitude')
    from inversion import vocoder  # pylint: disable=g-import-not-at-top
    with tf.init_scope():
      vocoder.load_vocoder(config.vocoder, features=t.config)
    return
  with tf.init_scope():
    if model.config.target == 'mel' and config.magnitude == 'refiner':
      nets.load_net(config.refiner, 'refiner', transform=t)
    if config.phase == 'degli':
      nets.load_net(None, 'degli', transform=t)


def magnitude(model, unit, config: DecoderConfig):
  """The voice's linear magnitude ``[batch, nb_frames, nb_bins]`` from output features."""
  f = model.features
  values = f.to_magnitude_or_mel(unit)
  if model.config.target == 'linear':
    return values
  extra = {'refiner': config.refiner} if config.magnitude == 'refiner' else {}
  return mel_to_linear.mel_to_magnitude(values, method=config.magnitude,
                                        transform=f.transform, **extra)


def voice_from_magnitude(model, mags, scaled_mixture, config: DecoderConfig):
  """Phase retrieval: ``mags [batch, nb_frames, nb_bins]`` -> float32 ``[batch, n_samples]``.

  ``scaled_mixture``: the mixture at the encoder's level ``[batch, n_samples]``
  (its phase starts the iterations with ``init='mixture'``; its length is the output's).
  """
  t = model.features.transform
  n = tf.shape(scaled_mixture)[-1]
  method = phase.get_method(config.phase)
  mixture_stft = t.stft(scaled_mixture) if config.init == 'mixture' else None
  # The length only where it is static (the checks compare it with the frames in
  # Python); otherwise the frames' own length, padded to the mixture's.
  static = scaled_mixture.shape[-1]
  n_iter = (DEFAULT_ITERATIONS[model.config.target] if config.n_iter is None
            else config.n_iter)
  rec = method(mags, mixture_stft, transform=t, length=static, n_iter=n_iter,
               seed=config.seed)
  y = rec.waveform
  return tf.pad(y, [[0, 0], [0, tf.maximum(n - tf.shape(y)[-1], 0)]])[:, :n]


def separate(model, mixture, config: DecoderConfig):
  """``mixture [batch, n_samples]`` -> float32 ``[batch, 2, n_samples]``: voice, mixture - voice."""
  prepare(model, config)
  mixture = tf.convert_to_tensor(mixture, tf.float32)
  unit, gain = model.predict(mixture)
  scaled = mixture * gain[:, None]
  if config.decoder == 'vocoder':
    from inversion import vocoder  # pylint: disable=g-import-not-at-top
    voice = vocoder.mel_to_waveform(model.features.to_magnitude_or_mel(unit),
                                    vocoder=config.vocoder, length=tf.shape(mixture)[-1])
  else:
    voice = voice_from_magnitude(model, magnitude(model, unit, config), scaled, config)
  voice = voice / gain[:, None]
  return tf.stack([voice, mixture - voice], axis=1)
