"""Voice + noise scores of the separation-by-synthesis methods beside the others (issue 25).

Every method (specs as ``evaluate_separation.py --methods``: ``synthesis``,
``synthesis-linear:n_iter=0``, ``unet``, ``IRM2``...; ``mixture`` is the input itself)
separates each track through the separator seam; the voice estimate is scored with

* SI-SDR (dB; the noise's too),
* BSS Eval v4 SDR (dB, 1 s windows, the median over windows; the noise's too),
* PESQ, ITU-T P.862.2 wide band (the ``pesq`` package called the right way round:
  ``pesq(16000, reference, estimate, 'wb')``; the paper swapped them),
* STOI (``pystoi``, classic),

and the table gives the mean over tracks (SDR: the median over tracks, as the
generalisation matrix) and the separation's seconds per audio second.

Two oracle rows give the decoders' ceiling (the paper's "true features"): ``true-mel``
decodes the clean voice's own mel features (the encoder's target) and ``true-linear``
its own linear magnitude (B1's target), with the default decoders; the noise is the
mixture minus that voice.

Tracks: a split of the voice + noise set (``NNNN/{voice,noise,mix_snr_<s>}.wav``, each
clip at its own SNR) or a references folder (``<track>/{mixture,voice,noise}.wav``, as
``evaluate_generalization.py`` writes per condition).

  python -c "from experiments.studies import synthesis_scores as s; s.main()" \\
      out/speech_data/test out/synthesis_scores/test synthesis synthesis-linear unet \\
      convtasnet IRM2 mixture
"""

import json
import os
import sys
import time
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from common import atomic
from common.errors import ParameterError

RATE = 16000
SOURCES = ('voice', 'noise')


def read_tracks(folder: str, n_tracks: int = 0) -> List[Tuple[str, np.ndarray, np.ndarray]]:
  """``[(name, mixture [n], sources [2, n])]`` of a voice + noise split or references folder.

  Raises:
    ParameterError: a folder of neither layout.
  """
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from pipeline import waveform_pairs as wp  # pylint: disable=g-import-not-at-top
  if not os.path.isdir(folder):
    raise ParameterError(f'{folder} does not exist')
  names = sorted(n for n in os.listdir(folder) if os.path.isdir(os.path.join(folder, n)))
  out = []
  if names and os.path.isfile(os.path.join(folder, names[0], 'mixture.wav')):
    for name in names[:n_tracks or None]:
      read = lambda role: sf.read(os.path.join(folder, name, role + '.wav'), dtype='float32')[0]
      out.append((name, read('mixture'), np.stack([read('voice'), read('noise')])))
    return out
  for clip_dir, snr in wp.check_split(folder, sample_rate=RATE)[:n_tracks or None]:
    read = lambda f: sf.read(os.path.join(clip_dir, f), dtype='float32')[0]
    voice, noise = read(wp.VOICE_WAV), read(wp.NOISE_WAV) * np.float32(wp.noise_gain(snr))
    out.append((os.path.basename(clip_dir), read(wp.mixture_name(snr)),
                np.stack([voice, noise])))
  return out


def _separator(spec: str, references: Dict[str, np.ndarray]):
  from experiments import separators  # pylint: disable=g-import-not-at-top
  if spec in ('true-mel', 'true-linear'):
    return TrueFeatures(spec[len('true-'):], references['voice'])
  name, options = separators.parse_spec(spec)
  if separators.get_method(name).oracle is not None:
    return separators.oracle_separator(name, references, RATE, **options)
  return separators.load_separator(name, task='speech-noise', **options)


class TrueFeatures:
  """The decoder of ``target`` on the true voice's features (an oracle separator)."""

  def __init__(self, target: str, voice: np.ndarray):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from synthesis import decoder, encoder  # pylint: disable=g-import-not-at-top
    self._tf, self._decoder, self._encoder = tf, decoder, encoder
    self.model = encoder.SynthesisEncoder(encoder.named_config('cpu', target=target))
    self.config = decoder.DecoderConfig()
    decoder.prepare(self.model, self.config)
    self.voice = voice

  def separate(self, mixture: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    del sample_rate
    tf, dec, model = self._tf, self._decoder, self.model
    mix = tf.constant(mixture[None].astype(np.float32))
    scaled, gain = self._encoder.normalise(mix, model.config.level_db)
    unit = model.features.target(tf.constant(self.voice[None].astype(np.float32)) *
                                 gain[:, None])
    mags = dec.magnitude(model, unit, self.config)
    voice = (dec.voice_from_magnitude(model, mags, scaled, self.config) / gain[:, None])
    voice = voice.numpy()[0]
    return {'voice': voice, 'noise': mixture - voice}


def score_track(mixture: np.ndarray, sources: np.ndarray, estimates: np.ndarray, *,
                quality: bool = True) -> Dict:
  """Scores of one track: ``estimates`` float ``[2, n]`` (voice, noise).

  PESQ / STOI (with ``quality``) come from ``evaluation.speech_quality``: NaN where a
  pair cannot be scored, the reason under ``notes``.

  Raises:
    ParameterError: ``quality`` without the ``pesq`` / ``pystoi`` packages.
  """
  from evaluation import audio_metrics, bss_eval, speech_quality  # pylint: disable=g-import-not-at-top
  del mixture
  si = audio_metrics.si_sdr(estimates, sources)
  bss = bss_eval.bss_eval_v4(sources, estimates, sample_rate=RATE)
  sdr = bss_eval.nanmedian(bss.sdr, axis=1)
  out = {'si_sdr_voice': float(si[0]), 'si_sdr_noise': float(si[1]),
         'sdr_voice': float(sdr[0]), 'sdr_noise': float(sdr[1])}
  if quality:
    scores = speech_quality.speech_quality(sources[0], estimates[0], RATE)
    out.update(pesq=scores['PESQ'], stoi=scores['STOI'])
    if scores['notes']:
      out['notes'] = scores['notes']
  return out


def run(tracks_dir: str, out_dir: str, methods: Sequence[str], *, n_tracks: int = 0,
        log=print) -> Dict[str, Any]:
  """Scores ``methods`` on the tracks of ``tracks_dir``; writes ``scores.json`` / ``scores.md``.

  Returns:
    ``{method: {'tracks': {name: scores}, 'summary': {...}}}``.
  """
  from evaluation import speech_quality  # pylint: disable=g-import-not-at-top
  tracks = read_tracks(tracks_dir, n_tracks)
  missing = speech_quality.missing()
  if missing:
    log(missing)
  results = {}
  for spec in methods:
    from experiments import separators  # pylint: disable=g-import-not-at-top
    per_track, seconds, audio_s = {}, 0.0, 0.0
    oracle = spec.startswith('true-') or (
        spec != 'mixture' and separators.get_method(spec.split(':')[0]).oracle is not None)
    # Models load once, outside the timing (the first call's tracing is inside it).
    sep = None if spec == 'mixture' or oracle else _separator(spec, {})
    for name, mixture, sources in tracks:
      refs = dict(zip(SOURCES, sources))
      t0 = time.perf_counter()
      if spec == 'mixture':
        est = np.stack([mixture, mixture])
      else:
        if oracle:
          sep = _separator(spec, refs)
        out = sep.separate(mixture, RATE)
        est = np.stack([out['voice'], out['noise']])
      seconds += time.perf_counter() - t0
      audio_s += len(mixture) / RATE
      per_track[name] = score_track(mixture, sources, est.astype(np.float64),
                                    quality=not missing)
    keys = [k for k in next(iter(per_track.values())) if k != 'notes']
    # NaN (a pair PESQ / STOI could not score; its reason is in the track's notes) is
    # left out of the mean.
    summary = {k: float(np.nanmedian([t[k] for t in per_track.values()]) if k.startswith('sdr')
                        else np.nanmean([t[k] for t in per_track.values()])) for k in keys}
    summary['s_per_audio_s'] = seconds / max(audio_s, 1e-9)
    results[spec] = {'tracks': per_track, 'summary': summary}
    log(f'{spec}: ' + ', '.join(f'{k} {v:.3f}' for k, v in summary.items()))
  doc = {'tracks_dir': tracks_dir, 'n_tracks': len(tracks), 'methods': list(methods),
         'command': ' '.join(sys.argv), 'results': results}
  os.makedirs(out_dir, exist_ok=True)
  atomic.write_json_atomic(os.path.join(out_dir, 'scores.json'), doc)
  with open(os.path.join(out_dir, 'scores.md'), 'w', encoding='utf-8') as f:
    f.write(markdown(results))
  return results


def markdown(results: Dict[str, Any]) -> str:
  lines = ['| method | voice SI-SDR | voice SDR | PESQ (WB) | STOI | noise SI-SDR | noise SDR '
           '| s / audio s |', '|---|---:|---:|---:|---:|---:|---:|---:|']
  for spec, r in results.items():
    s = r['summary']
    quality = (f"{s['pesq']:.2f} | {s['stoi']:.3f}" if 'pesq' in s else ' | ')
    lines.append(f"| {spec} | {s['si_sdr_voice']:.1f} | {s['sdr_voice']:.1f} | "
                 f"{quality} | {s['si_sdr_noise']:.1f} | "
                 f"{s['sdr_noise']:.1f} | {s['s_per_audio_s']:.3f} |")
  return '\n'.join(lines) + '\n'


def main(argv: Sequence[str] = None):
  """``TRACKS_DIR OUT_DIR METHOD...`` (the study's recorded command line)."""
  argv = list(sys.argv[1:] if argv is None else argv)
  if len(argv) < 3:
    raise SystemExit('usage: TRACKS_DIR OUT_DIR METHOD [METHOD...]')
  run(argv[0], argv[1], argv[2:])
