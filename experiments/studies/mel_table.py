"""The mel -> wav table: every magnitude method x phase method, beside librosa.

Held-out clips (rendered piano and violin of the test split, synthetic speech
of the test split) -> power mel (``n_mels`` Slaney bands) -> linear magnitude
(``pinv``, ``nnls``, ``refiner``) -> phase (``gla``, ``fgla``, ``degli``, from
the same seeded random phase) -> waveform, against
``librosa.feature.inverse.mel_to_audio`` (L-BFGS-B NNLS + its fast
Griffin-Lim) on the same mels. Each rebuilt waveform is scored against the
original: spectral convergence of its STFT (dB, lower is better), PESQ (wide
band) and STOI (``pesq`` / ``pystoi`` packages); medians over the clips of
each group (speech, instruments) and over all, and the seconds per clip.
With ``vocoder_row`` (mel features of the vocoder's, 96 bands 125-7,600 Hz) the
neural vocoder (``inversion.vocoder``) is one more row.

:func:`true_mel_scores`: the voice + noise tracks' clean voice mel decoded by the
vocoder and by the project's refiner + phase retrieval, scored as
``experiments/studies/synthesis_scores`` scores the separators (PESQ / STOI / SI-SDR
/ SDR), with CPU and wall seconds per audio second (docs/vocoder.md).
"""

import dataclasses
import datetime
import glob
import json
import os
import platform
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from experiments import inversion_runs as commands
from inversion import mel_to_linear
from inversion import net_training
from inversion import phase
from inversion import stft as stft_lib
from pipeline import audio
from common import compute
from common.atomic import write_json_atomic, atomic_path
from pipeline.config import FeatureConfig
from common.errors import ParameterError
from pipeline.transforms import MelTransform


def parse_phase(spec: str) -> Tuple[str, Optional[float]]:
  """``'degli@0.9'`` -> ``('degli', 0.9)``; ``'gla'`` -> ``('gla', None)``."""
  name, _, momentum = spec.partition('@')
  if not momentum:
    return name, None
  try:
    return name, float(momentum)
  except ValueError as e:
    raise ParameterError(f'phase {spec!r}: the momentum after @ must be a number') from e


def split_groups(split: str) -> Tuple[Tuple[str, str], ...]:
  """The held-out wav globs of ``split`` (``'test'``, or ``'validation'`` to choose on)."""
  if split not in ('test', 'validation'):
    raise ParameterError(f"split must be 'test' or 'validation', got {split!r}")
  return (('speech', f'out/speech/{split}/*/voice.wav'),
          ('piano', f'out/data/render/{split}/piano/*.wav'),
          ('violin', f'out/data/render/{split}/violin/*.wav'))


@dataclasses.dataclass(frozen=True)
class MelTableConfig:
  """Attributes:
    out_dir: folder for ``table.json``, ``table.md`` and the wavs of the
      first clip of each group, ``<group>_<magnitude>_<phase><n_iter>.wav``
      (and ``<group>_original.wav``), to listen to.
    groups: ``{group: glob}`` of held-out wavs.
    n_per_group: int > 0, clips per group (the first ones, sorted).
    duration_s: float > 0, seconds per clip (from its start).
    n_mels, fmin, fmax: the mel bands (Slaney, power).
    n_fft, hop_length, sample_rate: the STFT (that of the shipped networks).
    magnitudes, phases: methods to cross; magnitude ``'exact'`` is the true
      ``|STFT|`` (phase retrieval alone); a phase ``'name@a'`` runs ``name``
      with momentum ``a`` (``'degli@0.9'``; default: the method's).
    n_iters: phase iterations (each a column set).
    librosa: add ``librosa.feature.inverse.mel_to_audio`` rows.
    refiner, degli: network folders (None: the shipped ones).
    seed: initial random phase.
    vocoder_row: add the neural vocoder's row (its features must be these).
    vocoder: vocoder folder (None: the shipped one).
  """
  out_dir: str
  groups: Tuple[Tuple[str, str], ...] = split_groups('test')
  n_per_group: int = 6
  duration_s: float = 3.0
  n_mels: int = 80
  fmin: float = 0.0
  fmax: float = 8000.0
  n_fft: int = 2048
  hop_length: int = 512
  sample_rate: int = 16000
  magnitudes: Tuple[str, ...] = ('pinv', 'nnls', 'refiner')
  phases: Tuple[str, ...] = ('gla', 'fgla', 'degli')
  n_iters: Tuple[int, ...] = (32, 100)
  librosa: bool = True
  refiner: Optional[str] = None
  degli: Optional[str] = None
  seed: int = 0
  vocoder_row: bool = False
  vocoder: Optional[str] = None

  def __post_init__(self):
    for m in self.magnitudes:
      if m not in mel_to_linear.MAGNITUDE_METHODS + ('exact',):
        raise ParameterError(f'unknown magnitude method {m!r}')
    for p in self.phases:
      name, _ = parse_phase(p)
      if phase.get_method(name).needs_mixture:
        raise ParameterError(f'phase method {name!r} needs a mixture')

  def features(self) -> FeatureConfig:
    return FeatureConfig(sample_rate=self.sample_rate, n_fft=self.n_fft,
                         hop_length=self.hop_length, n_mels=self.n_mels, fmin=self.fmin,
                         fmax=self.fmax, patch_samples=63 * self.hop_length)


def load_clips(config: MelTableConfig) -> Tuple[np.ndarray, List[str], List[str]]:
  """``(waveforms [n, length], groups, files)``; every clip cut to one length.

  Raises:
    ParameterError: a group whose pattern matches too few files.
  """
  n = int(round(config.duration_s * config.sample_rate))
  length = (n // config.hop_length) * config.hop_length
  waves, groups, files = [], [], []
  for group, pattern in config.groups:
    found = sorted(glob.glob(pattern))
    if len(found) < config.n_per_group:
      raise ParameterError(f'group {group!r}: {pattern!r} matches {len(found)} files, '
                           f'need {config.n_per_group} (make data / make speech-data)')
    chosen = found[:config.n_per_group]
    waves += [y[:length] for y in net_training.load_clips(chosen, config.sample_rate, length)]
    groups += [group] * len(chosen)
    files += chosen
  return np.stack(waves).astype(np.float32), groups, files


def _scores(ref: np.ndarray, est: np.ndarray, sr: int) -> Tuple[float, float]:
  try:
    q = commands.quality_scores(ref.astype(np.float64), est.astype(np.float64), sr)
  except Exception:  # pylint: disable=broad-except  (pesq: NoUtterancesError on silence)
    return float('nan'), float('nan')
  nan = float('nan')
  return (q['pesq'] if q['pesq'] is not None else nan,
          q['stoi'] if q['stoi'] is not None else nan)


def score_row(waves: np.ndarray, mags: np.ndarray, rebuilt: np.ndarray,
              transform: MelTransform, sr: int) -> Dict[str, List[float]]:
  """Per-clip spectral convergence (dB), PESQ and STOI of ``rebuilt [n, length]``.

  ``mags`` is ``|STFT(waves)|``, ``[n, n_frames, n_bins]``.
  """
  sc = stft_lib.spectral_convergence(mags, transform.stft(rebuilt).numpy())
  pesq, stoi = zip(*[_scores(a, b, sr) for a, b in zip(waves, rebuilt)])
  return {'sc_db': [float(v) for v in sc], 'pesq': list(pesq), 'stoi': list(stoi)}


def run(config: MelTableConfig, *, log=print) -> Dict[str, Any]:
  """Builds the table; writes ``table.json`` / ``table.md``; returns the results."""
  os.makedirs(config.out_dir, exist_ok=True)
  t = MelTransform(config.features())
  waves, groups, files = load_clips(config)
  sr = config.sample_rate
  length = waves.shape[1]
  true_mags = np.abs(t.stft(waves).numpy())
  mel = t.spectrogram_to_mel(t.spectrogram(waves))
  rows = []
  fns = {}
  for ph in config.phases:
    name, momentum = parse_phase(ph)
    fns[ph] = commands.compiled_phase(phase.get_method(name), t, length=length, options=dict(
        seed=config.seed, degli=config.degli, momentum=momentum))
  for mag_name in config.magnitudes:
    t0 = time.perf_counter()
    extra = {'refiner': config.refiner} if mag_name == 'refiner' else {}
    if mag_name == 'exact':
      mag = tf.constant(true_mags)
    else:
      mag = mel_to_linear.mel_to_magnitude(mel, method=mag_name, transform=t, **extra)
    mag_s = time.perf_counter() - t0
    mag_sc = stft_lib.spectral_convergence(true_mags, mag.numpy())
    for ph in config.phases:
      fn = fns[ph]
      for n_iter in config.n_iters:
        fn(mag, n_iter=tf.constant(1))   # compile outside the timing
        t0 = time.perf_counter()
        rec = fn(mag, n_iter=tf.constant(n_iter))
        out = rec.waveform.numpy()
        seconds = time.perf_counter() - t0 + mag_s
        row = {'magnitude': mag_name, 'phase': ph, 'n_iter': n_iter,
               'seconds_per_clip': seconds / len(waves),
               'magnitude_sc_db': (None if mag_name == 'exact' else
                                   [float(v) for v in mag_sc])}
        row.update(score_row(waves, true_mags, out, t, sr))
        incons = stft_lib.inconsistency(rec.stft, transform=t, length=length).numpy()
        row['inconsistency_db'] = [float(10 * np.log10(max(v, 1e-30))) for v in incons]
        rows.append(row)
        log(_row_line(row, groups))
        _write_examples(config.out_dir, f"{mag_name}_{ph.replace('@', '_m')}{n_iter}", out,
                        groups, sr)
  if config.vocoder_row:
    rows.append(_vocoder_row(config, mel, waves, true_mags, t, groups, log))
  if config.librosa:
    try:
      import librosa  # pylint: disable=g-import-not-at-top
    except ModuleNotFoundError as e:
      raise ParameterError("the librosa rows need librosa: pip install 'basis-sep[compare]' "
                           '(or --nolibrosa)') from e
    mel_np = np.swapaxes(mel.numpy(), -1, -2)          # librosa: [n_mels, frames]
    for n_iter in config.n_iters:
      np.random.seed(config.seed)   # librosa's griffinlim draws its random phase here
      t0 = time.perf_counter()
      out = np.stack([librosa.feature.inverse.mel_to_audio(
          m, sr=sr, n_fft=config.n_fft, hop_length=config.hop_length, power=2.0,
          n_iter=n_iter, length=length, fmin=config.fmin, fmax=config.fmax)
                      for m in mel_np]).astype(np.float32)
      seconds = time.perf_counter() - t0
      row = {'magnitude': 'librosa nnls (L-BFGS-B)', 'phase': 'librosa fgla',
             'n_iter': n_iter, 'seconds_per_clip': seconds / len(waves),
             'magnitude_sc_db': None}
      row.update(score_row(waves, true_mags, out, t, sr))
      rows.append(row)
      log(_row_line(row, groups))
      _write_examples(config.out_dir, f'librosa{n_iter}', out, groups, sr)
  _write_examples(config.out_dir, 'original', waves, groups, sr)
  results = {
      'config': dataclasses.asdict(config), 'files': files, 'groups': groups,
      'rows': rows, 'machine': {'cpu': compute.cpu_description(),
                                'platform': platform.platform(),
                                'tensorflow': tf.__version__},
      'date': datetime.datetime.now().isoformat(timespec='seconds'),
  }
  write_json_atomic(os.path.join(config.out_dir, 'table.json'), results)
  with atomic_path(os.path.join(config.out_dir, 'table.md')) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(markdown(results))
  return results


def _vocoder_row(config, mel, waves, true_mags, t, groups, log):
  """The neural vocoder on ``mel`` ``[n, n_frames, n_mels]``: one table row."""
  from inversion import vocoder  # pylint: disable=g-import-not-at-top
  length = waves.shape[1]
  model, meta = vocoder.load_vocoder(config.vocoder, features=config.features())
  vocoder.mel_to_waveform(mel[:1, :4], vocoder=config.vocoder)   # trace outside the timing
  t0 = time.perf_counter()
  out = vocoder.mel_to_waveform(mel, vocoder=config.vocoder, length=length).numpy()
  seconds = time.perf_counter() - t0
  row = {'magnitude': f"vocoder ({model.config.architecture}, step {meta.get('step')})",
         'phase': '-', 'n_iter': 0, 'seconds_per_clip': seconds / len(waves),
         'magnitude_sc_db': None}
  row.update(score_row(waves, true_mags, out, t, config.sample_rate))
  log(_row_line(row, groups))
  _write_examples(config.out_dir, 'vocoder', out, groups, config.sample_rate)
  return row


class TrueMel:
  """The clean voice's mel (the synthesis encoder's target, at its input level)
  decoded by ``synthesis.decoder`` with ``decoder_config`` (``decoder='vocoder'``: the
  neural vocoder); an oracle separator, the noise is the mixture minus the voice."""

  def __init__(self, decoder_config, voice: np.ndarray):
    from synthesis import decoder, encoder  # pylint: disable=g-import-not-at-top
    self._decoder, self._encoder = decoder, encoder
    self.model = encoder.SynthesisEncoder(encoder.named_config('cpu', target='mel'))
    self.config = decoder_config
    decoder.prepare(self.model, self.config)
    self.voice = voice

  def separate(self, mixture: np.ndarray, sample_rate: int) -> Dict[str, np.ndarray]:
    del sample_rate
    from inversion import vocoder  # pylint: disable=g-import-not-at-top
    dec, model = self._decoder, self.model
    mix = tf.constant(mixture[None].astype(np.float32))
    scaled, gain = self._encoder.normalise(mix, model.config.level_db)
    unit = model.features.target(tf.constant(self.voice[None].astype(np.float32)) *
                                 gain[:, None])
    if self.config.decoder == 'vocoder':
      voice = vocoder.mel_to_waveform(model.features.to_magnitude_or_mel(unit),
                                      vocoder=self.config.vocoder, length=mixture.size)
    else:
      voice = dec.voice_from_magnitude(model, dec.magnitude(model, unit, self.config), scaled,
                                       self.config)
    voice = (voice / gain[:, None]).numpy()[0]
    return {'voice': voice, 'noise': mixture - voice}


TRUE_MEL_ROWS = {
    'true-mel': {},                                        # synthesis's default decoder
    'true-mel:n_iter=32,init=random': {'n_iter': 32, 'init': 'random'},   # pure synthesis
    'true-mel:decoder=vocoder': {'decoder': 'vocoder'},
}


def true_mel_scores(tracks_dir: str, out_dir: str, rows: Sequence[str] = tuple(TRUE_MEL_ROWS), *,
                    vocoder: Optional[str] = None, n_tracks: int = 0,
                    log=print) -> Dict[str, Any]:
  """Scores mel -> wav decoders on the clean voices of voice + noise tracks.

  Args:
    tracks_dir: a voice + noise split or references folder
      (``synthesis_scores.read_tracks``).
    out_dir: folder for ``scores.json`` / ``scores.md`` and ``<row>_<track>.wav`` of the
      first track.
    rows: keys of :data:`TRUE_MEL_ROWS`.
    vocoder: a vocoder folder (None: the shipped one).

  Returns:
    ``{row: {'tracks': {name: scores}, 'summary': {...}}}``; the summary has
    ``cpu_s_per_audio_s`` (process CPU time, all threads) and ``s_per_audio_s`` (wall).
  """
  from experiments.studies import synthesis_scores as ss  # pylint: disable=g-import-not-at-top
  from synthesis import decoder  # pylint: disable=g-import-not-at-top
  unknown = sorted(set(rows) - set(TRUE_MEL_ROWS))
  if unknown:
    raise ParameterError(f'unknown rows {unknown}; choose from {list(TRUE_MEL_ROWS)}')
  tracks = ss.read_tracks(tracks_dir, n_tracks)
  os.makedirs(out_dir, exist_ok=True)
  results = {}
  for row in rows:
    options = dict(TRUE_MEL_ROWS[row])
    if options.get('decoder') == 'vocoder':
      options['vocoder'] = vocoder
    config = decoder.DecoderConfig(**options)
    sep = TrueMel(config, tracks[0][2][0][:ss.RATE])
    sep.separate(tracks[0][1][:ss.RATE], ss.RATE)   # trace outside the timing
    per_track, wall, cpu, audio_s = {}, 0.0, 0.0, 0.0
    for k, (name, mixture, sources) in enumerate(tracks):
      sep.voice = sources[0]
      w0, c0 = time.perf_counter(), time.process_time()
      out = sep.separate(mixture, ss.RATE)
      wall += time.perf_counter() - w0
      cpu += time.process_time() - c0
      audio_s += len(mixture) / ss.RATE
      est = np.stack([out['voice'], out['noise']]).astype(np.float64)
      per_track[name] = ss.score_track(mixture, sources, est)
      if k == 0:
        audio.write_wav(os.path.join(out_dir, f"{row.replace(':', '_').replace(',', '_')}_{name}.wav"),
                        out['voice'] / max(1.0, float(np.abs(out['voice']).max())), ss.RATE)
    keys = [k for k in next(iter(per_track.values())) if k != 'notes']
    summary = {k: float(np.nanmedian([t[k] for t in per_track.values()]) if k.startswith('sdr')
                        else np.nanmean([t[k] for t in per_track.values()])) for k in keys}
    summary['s_per_audio_s'] = wall / audio_s
    summary['cpu_s_per_audio_s'] = cpu / audio_s
    results[row] = {'tracks': per_track, 'summary': summary}
    log(f'{row}: ' + ', '.join(f'{k} {v:.3f}' for k, v in summary.items()))
  doc = {'tracks_dir': tracks_dir, 'n_tracks': len(tracks), 'rows': list(rows),
         'vocoder': vocoder, 'cpu': compute.cpu_description(),
         'load_average': list(os.getloadavg()),
         'date': datetime.datetime.now().isoformat(timespec='seconds'), 'results': results}
  write_json_atomic(os.path.join(out_dir, 'scores.json'), doc)
  with atomic_path(os.path.join(out_dir, 'scores.md')) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(ss.markdown(results))
  return results


def _write_examples(out_dir, name, out, groups, sr):
  seen = set()
  for y, g in zip(out, groups):
    if g not in seen:
      seen.add(g)
      audio.write_wav(os.path.join(out_dir, f'{g}_{name}.wav'),
                      y / max(1.0, float(np.abs(y).max())), sr)


def _median(values) -> float:
  v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
  return float(np.median(v)) if v.size else float('nan')


def _row_line(row, groups) -> str:
  return (f"{row['magnitude']:>24} + {row['phase']:<12} {row['n_iter']:>4} it.: "
          f"SC {_median(row['sc_db']):6.2f} dB, PESQ {_median(row['pesq']):.2f}, "
          f"STOI {_median(row['stoi']):.3f}, {row['seconds_per_clip']:.2f} s/clip")


def markdown(results: Dict[str, Any]) -> str:
  """The table: medians over all clips, then PESQ / STOI per group."""
  groups = results['groups']
  names = list(dict.fromkeys(groups))
  c = results['config']
  lines = [f"Mel ({c['n_mels']} Slaney bands, {c['fmin']:g}-{c['fmax']:g} Hz, power) -> wav "
           f"on {len(groups)} held-out clips of {c['duration_s']:g} s "
           f"({', '.join(f'{groups.count(g)} {g}' for g in names)}); STFT {c['n_fft']} / "
           f"{c['hop_length']} at {c['sample_rate']} Hz; CPU {results['machine']['cpu']}. "
           'Medians over clips; SC = spectral convergence of the rebuilt waveform (dB, lower '
           'is better); magnitude SC = of the estimated magnitude alone; inconsistency = '
           '||Y - P_C(Y)||^2 / ||Y||^2 of the final STFT estimate (dB).', '',
           '| magnitude | phase | it. | SC (dB) | magnitude SC (dB) | inconsistency (dB) | PESQ | STOI | '
           + ' | '.join(f'PESQ / STOI {g}' for g in names) + ' | s / clip |',
           '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | '
           + ' | '.join('---:' for _ in names) + ' | ---: |']
  for r in results['rows']:
    per = []
    for g in names:
      idx = [i for i, x in enumerate(groups) if x == g]
      per.append(f"{_median([r['pesq'][i] for i in idx]):.2f} / "
                 f"{_median([r['stoi'][i] for i in idx]):.3f}")
    msc = f"{_median(r['magnitude_sc_db']):.2f}" if r['magnitude_sc_db'] else '-'
    inc = f"{_median(r['inconsistency_db']):.2f}" if r.get('inconsistency_db') else '-'
    lines.append(f"| {r['magnitude']} | {r['phase']} | {r['n_iter']} | "
                 f"{_median(r['sc_db']):.2f} | {msc} | {inc} | {_median(r['pesq']):.2f} | "
                 f"{_median(r['stoi']):.3f} | " + ' | '.join(per) +
                 f" | {r['seconds_per_clip']:.2f} |")
  return '\n'.join(lines) + '\n'
