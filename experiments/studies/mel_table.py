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
