"""The ``synthesis`` and ``synthesis-linear`` methods of the separator seam.

An export folder (``baselines.export``: ``separator.json``, ``config.json`` with the
encoder's config and training record, ``weights.*``) written by
``train_separator.py --model=synthesis|synthesis-linear --task=speech-noise``; shipped
under ``assets/separators/speech-noise/<method>/``.

  sep = experiments.separators.load_separator('synthesis', task='speech-noise')
  est = sep.separate(y, sample_rate)       # {'voice': ..., 'noise': mixture - voice}

Options (keyword arguments of ``load_separator``, the fields of
:class:`synthesis.decoder.DecoderConfig`): ``magnitude`` (mel -> magnitude, mel only),
``phase``, ``n_iter``, ``init`` (``'mixture'`` or ``'random'``), ``seed``, ``refiner``,
``decoder`` (``'inversion'`` or ``'vocoder'``: ``synthesis:decoder=vocoder``) and ``vocoder``
(a vocoder folder); and ``chunk_s``.
"""

import dataclasses
import hashlib
import os
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from baselines import export
from common.errors import ParameterError
from synthesis import decoder, encoder


class SynthesisSeparator:
  """A trained synthesis encoder + decoder behind the separator protocol.

  Args:
    model_dir: an export folder.
    doc: its ``separator.json`` (names the method).
    chunk_s: seconds per chunk of the seam's overlap-add.
    **decoder_options: fields of :class:`synthesis.decoder.DecoderConfig`.

  Raises:
    ParameterError: a bad folder (one line naming it), bad options.
  """

  overlap_s = 0.5

  def __init__(self, model_dir: str, doc: Optional[Dict[str, Any]] = None, *,
               chunk_s: float = 20.0, **decoder_options):
    method = (doc or {}).get('method')
    if method not in encoder.METHODS.values():
      config_path = os.path.join(model_dir, export.CONFIG_FILE)
      method = 'synthesis'
      if os.path.isfile(config_path):
        import json  # pylint: disable=g-import-not-at-top
        try:
          with open(config_path, encoding='utf-8') as f:
            method = json.load(f).get('model', method)
        except (OSError, ValueError, AttributeError):
          pass   # export.read names the problem
    config, prefix = export.read(model_dir, method)
    where = os.path.join(model_dir, export.CONFIG_FILE)
    self.config = export.parse_network(encoder.EncoderConfig, config['network'], where)
    if self.config.method != method:
      raise ParameterError(f'{where}: a {method!r} export holds a {self.config.target!r} '
                           'encoder')
    unknown = sorted(set(decoder_options) - {f.name for f in
                                             dataclasses.fields(decoder.DecoderConfig)})
    if unknown:
      raise ParameterError(f'unknown {method} options {unknown} (it takes chunk_s, '
                           f'{", ".join(f.name for f in dataclasses.fields(decoder.DecoderConfig))})')
    self.decoder = decoder.DecoderConfig(**decoder_options)
    self.method = method
    self.sources = tuple(config['sources'])
    if self.sources != ('voice', 'noise'):
      raise ParameterError(f'{where}: sources must be ["voice", "noise"], got {list(self.sources)}')
    self.sample_rate = int(config['sample_rate'])
    if self.sample_rate != self.config.sample_rate:
      raise ParameterError(f'{where}: sample_rate {self.sample_rate} differs from the '
                           f'encoder\'s {self.config.sample_rate}')
    self.model = encoder.SynthesisEncoder(self.config)
    export.restore(prefix, self.model)
    self.chunk_s = float(chunk_s)
    with open(prefix + '.index', 'rb') as f:
      self._fingerprint = hashlib.sha256(f.read()).hexdigest()[:16]
    model, dec = self.model, self.decoder
    decoder.prepare(model, dec)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def forward(x):
      return decoder.separate(model, x, dec)

    self._forward = forward

  def identity(self) -> Dict[str, Any]:
    return {'method': self.method, 'weights': self._fingerprint, **self.settings()}

  def settings(self) -> Dict[str, Any]:
    out = dataclasses.asdict(self.decoder)
    if out['decoder'] == 'inversion':   # the settings (and result keys) from before the vocoder
      del out['decoder'], out['vocoder']
    if out['n_iter'] is None:
      out['n_iter'] = decoder.DEFAULT_ITERATIONS[self.config.target]
    return out

  def separate_batch(self, mixtures: np.ndarray) -> np.ndarray:
    """float32 ``[batch, n_samples]`` -> ``[batch, 2, n_samples]`` (voice, noise)."""
    return self._forward(tf.constant(np.asarray(mixtures, np.float32))).numpy()

  def separate(self, audio: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    """float32 ``[n_samples]`` at ``self.sample_rate`` -> ``{'voice', 'noise'}`` ``[n_samples]``.

    Raises:
      ParameterError: another rate.
    """
    if sample_rate != self.sample_rate:
      raise ParameterError(f'{self.method} separates at {self.sample_rate} Hz, got {sample_rate}')
    est = self.separate_batch(np.asarray(audio, np.float32)[None])[0]
    return {name: est[k] for k, name in enumerate(self.sources)}


def load(model_dir: str, doc: Optional[Dict[str, Any]] = None, **options) -> SynthesisSeparator:
  """The loader of ``synthesis`` and ``synthesis-linear`` (``experiments.separators``)."""
  options.pop('precision', None)   # float32 throughout (small network)
  return SynthesisSeparator(model_dir, doc, **options)
