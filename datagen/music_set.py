"""The piano + violin set from real pieces and the generator, in several soundfonts.

Each clip of a split (``duration_s``, 8.16 s = 4 patches of 2.04 s by default)
is drawn from ``np.random.SeedSequence([split_seed, index, salt])``:

1. Material: with probability ``piece_share`` real pieces (``datagen.pieces``:
   a violin line and a piano part of the split's works; with probability
   ``ensemble_share`` both from one work, same tempo and bars, where the work
   has both), else the project's generator (``datagen.midi``, the violin
   following the piano's key, tempo and chords). Pieces get a tempo (the
   score's mark, or a drawn one, times U(0.85, 1.15)), a start on a beat, a
   transposition into the instrument's range and a base velocity U(45, 110).
2. Timbre: a soundfont per source from the split's list (``datagen.soundfonts``).
3. Rendering (fluidsynth, dry, 44.1 kHz -> ``sample_rate``, peak 0.5), then a
   room shared by both sources (probability ``room_share``) and an EQ per
   source (probability ``eq_share``): ``datagen.effects``.
4. Levels: the violin-to-piano balance ``20 log10(rms(violin) / rms(piano))``
   is 0 dB with probability ``equal_share`` and otherwise uniform in
   ``ratio_range_db``; then one common gain puts the mixture's peak at a
   log-uniform draw from ``mixture_peak_range``. ``mixture = piano + violin``
   exactly (float wavs).

Splits are by work (``pieces.split_of``: train / validation / test shares of
the catalogue) and by soundfont (``soundfonts.DEFAULT_SPLIT_SOUNDFONTS``:
validation and test use soundfonts that training never hears).

Layout::

  out_dir/pieces/                  the music21 parse cache (shared by the splits)
  out_dir/<split>/piano/00000.wav  the piano as in the mixture
  out_dir/<split>/violin/00000.wav the violin as in the mixture
  out_dir/<split>/mixture/00000.wav
  out_dir/<split>/clips/00000.json this clip's manifest entry, written last
  out_dir/<split>/manifest.json    settings, versions, soundfonts, every clip

A clip whose json exists and was made with the same request is kept, so an
interrupted build resumes; the manifest is written when a split is complete.
"""

import concurrent.futures
import dataclasses
import datetime
import json
import math
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.atomic import read_json_checked, write_json_atomic
from common.errors import ParameterError
from datagen import effects, midi, pieces, render, soundfonts
from pipeline.audio import write_wav

FORMAT_VERSION = 1
MANIFEST_NAME = 'manifest.json'
INSTRUMENTS = ('piano', 'violin')
_SALT = 0x3A51C
DEFAULT_SPLITS = ('train:1000:1200', 'validation:2000:120', 'test:3000:120')
PIECE_FRACTIONS = {'train': 0.8, 'validation': 0.1, 'test': 0.1}


@dataclasses.dataclass(frozen=True)
class SplitSpec:
  """One split: ``name:seed:n_clips[:soundfont+soundfont...]``.

  Attributes:
    name: ``'train'``, ``'validation'`` or ``'test'`` (the piece split it draws from).
    seed: int >= 0.
    n_clips: int >= 1.
    soundfonts: names of ``soundfonts.SOUNDFONTS`` (or paths).
  """
  name: str
  seed: int
  n_clips: int
  soundfonts: Tuple[str, ...]


def parse_split(spec) -> SplitSpec:
  """A :class:`SplitSpec` from ``'name:seed:n[:sf+sf]'`` or a tuple.

  Raises:
    ParameterError: naming the spec when it is malformed.
  """
  if isinstance(spec, SplitSpec):
    return spec
  parts = spec.split(':') if isinstance(spec, str) else list(spec)
  if len(parts) not in (3, 4):
    raise ParameterError(f'split {spec!r} must be name:seed:n_clips[:soundfont+soundfont], '
                         f'e.g. train:1000:1200 or validation:2000:120:musescore_general')
  name = parts[0]
  if name not in PIECE_FRACTIONS:
    raise ParameterError(f'split {spec!r}: name must be one of {tuple(PIECE_FRACTIONS)} (the '
                         f'works are split that way)')
  try:
    seed, n = int(parts[1]), int(parts[2])
  except (TypeError, ValueError) as e:
    raise ParameterError(f'split {spec!r}: seed and n_clips must be integers') from e
  if not 0 <= seed < 2 ** 32 or not 1 <= n <= 99999:
    raise ParameterError(f'split {spec!r}: seed must be in [0, 2**32) and n_clips in [1, 99999]')
  fonts = parts[3] if len(parts) == 4 else soundfonts.DEFAULT_SPLIT_SOUNDFONTS[name]
  if isinstance(fonts, str):
    fonts = tuple(f for f in fonts.split('+') if f)
  fonts = tuple(fonts)
  if not fonts:
    raise ParameterError(f'split {spec!r}: no soundfont')
  for f in fonts:
    if f not in soundfonts.SOUNDFONTS and not f.endswith(('.sf2', '.sf3')):
      raise ParameterError(f'split {spec!r}: unknown soundfont {f!r}; choose from '
                           f'{sorted(soundfonts.SOUNDFONTS)} or give an .sf2/.sf3 path')
  return SplitSpec(name, seed, n, fonts)


def _range(name, value, low, high):
  try:
    lo, hi = (float(v) for v in value)
  except (TypeError, ValueError) as e:
    raise ParameterError(f'{name} must be (low, high), got {value!r}') from e
  if not (math.isfinite(lo) and math.isfinite(hi) and low <= lo <= hi <= high):
    raise ParameterError(f'{name} must be (low, high) with {low} <= low <= high <= {high}, '
                         f'got {value!r}')
  return (lo, hi)


def _share(name, value):
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
    raise ParameterError(f'{name} must be a probability in [0, 1], got {value!r}')
  return float(value)


@dataclasses.dataclass(frozen=True)
class MusicSetConfig:
  """What :func:`build` makes (see the module doc).

  Attributes:
    out_dir: destination folder.
    splits: :class:`SplitSpec` or ``'name:seed:n[:sf+sf]'`` strings.
    duration_s: float in [1, 60], seconds per clip.
    sample_rate: int, Hz.
    piece_share: probability that a clip plays real pieces (else the generator).
    ensemble_share: probability that a piece clip plays one work's violin and
      piano together (where the work has both).
    ratio_range_db: (low, high) of the violin-to-piano RMS balance, dB.
    equal_share: probability of a 0 dB balance.
    mixture_peak_range: (low, high) of the mixture's peak (log-uniform).
    room_share: probability of a room.
    eq_share: probability of an EQ, per source.
    cache_dir: the music21 parse cache, or None for ``out_dir/pieces``.
    catalogue: the corpus files and roles (``pieces.CATALOGUE``).
    n_workers: clips rendered at once (threads running fluidsynth).
    overwrite: replace clips made with other settings (else an error).
  """
  out_dir: str
  splits: Tuple = DEFAULT_SPLITS
  duration_s: float = 8.16
  sample_rate: int = 16000
  piece_share: float = 0.7
  ensemble_share: float = 0.5
  ratio_range_db: Tuple[float, float] = (-18.0, 18.0)
  equal_share: float = 0.2
  mixture_peak_range: Tuple[float, float] = (0.15, 0.45)
  room_share: float = 0.6
  eq_share: float = 0.7
  cache_dir: Optional[str] = None
  catalogue: Tuple[pieces.CatalogueEntry, ...] = pieces.CATALOGUE
  n_workers: int = 2
  overwrite: bool = False

  def __post_init__(self):
    if not isinstance(self.out_dir, str) or not self.out_dir:
      raise ParameterError(f'out_dir must be a folder path, got {self.out_dir!r}')
    object.__setattr__(self, 'catalogue', tuple(self.catalogue))
    splits = tuple(parse_split(s) for s in self.splits)
    names = [s.name for s in splits]
    if not splits or len(set(names)) != len(names):
      raise ParameterError(f'splits must name one or more different splits, got {names}')
    object.__setattr__(self, 'splits', splits)
    if (isinstance(self.duration_s, bool) or not isinstance(self.duration_s, (int, float))
        or not 1 <= self.duration_s <= 60):
      raise ParameterError(f'duration_s must be in [1, 60] s, got {self.duration_s!r}')
    if (isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int)
        or not 8000 <= self.sample_rate <= 48000):
      raise ParameterError(f'sample_rate must be an int in [8000, 48000] Hz, got {self.sample_rate!r}')
    for name in ('piece_share', 'ensemble_share', 'equal_share', 'room_share', 'eq_share'):
      object.__setattr__(self, name, _share(name, getattr(self, name)))
    object.__setattr__(self, 'ratio_range_db', _range('ratio_range_db', self.ratio_range_db, -40, 40))
    object.__setattr__(self, 'mixture_peak_range',
                       _range('mixture_peak_range', self.mixture_peak_range, 1e-3, 1.0))
    if self.mixture_peak_range[0] <= 0:
      raise ParameterError('mixture_peak_range must be above 0')
    if isinstance(self.n_workers, bool) or not isinstance(self.n_workers, int) or not 1 <= self.n_workers <= 64:
      raise ParameterError(f'n_workers must be an int in [1, 64], got {self.n_workers!r}')

  @property
  def n_samples(self) -> int:
    return int(round(self.duration_s * self.sample_rate))

  def settings(self) -> Dict[str, Any]:
    """The settings every clip of a split depends on (for resume checks)."""
    d = dataclasses.asdict(self)
    for k in ('out_dir', 'splits', 'cache_dir', 'n_workers', 'overwrite'):
      d.pop(k)
    return json.loads(json.dumps(d))   # as it reads back from a clip's json


def _db(x: float) -> float:
  return float(20 * math.log10(max(x, 1e-12)))


def clip_rng(seed: int, index: int) -> np.random.Generator:
  """The generator of clip ``index`` of a split: the same whatever ``n_clips`` is."""
  return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), _SALT]))


class PiecePools:
  """The works of each split, per role, and the same-work piano part of a violin line."""

  def __init__(self, all_pieces: Sequence[pieces.Piece], fractions=PIECE_FRACTIONS):
    self.by_split: Dict[str, Dict[str, List[pieces.Piece]]] = {
        s: {r: [] for r in pieces.ROLES} for s in fractions}
    self.piano_of: Dict[str, pieces.Piece] = {}
    for p in all_pieces:
      self.by_split[pieces.split_of(p.piece_id, fractions)][p.role].append(p)
      if p.role == 'piano':
        self.piano_of[p.piece_id] = p

  def counts(self) -> Dict[str, Dict[str, int]]:
    return {s: {r: len(v) for r, v in roles.items()} for s, roles in self.by_split.items()}


def _piece_info(piece: pieces.Piece, seg: pieces.Segment) -> Dict[str, Any]:
  return {'source': 'piece', 'piece_id': piece.piece_id, 'collection': piece.collection,
          'title': piece.title, 'part': piece.part, 'start_ql': seg.start_ql,
          'tempo_qpm': round(seg.tempo_qpm, 3), 'transpose': seg.transpose,
          'looped': seg.looped, 'n_notes': len(seg.notes),
          'pitch_range': [min(n.pitch for n in seg.notes), max(n.pitch for n in seg.notes)]}


def _phrase_info(phrase: midi.Phrase) -> Dict[str, Any]:
  return {'source': 'generator', 'seed': phrase.seed, 'tempo_qpm': round(phrase.tempo_bpm, 3),
          'key': phrase.key_name, 'transpose': 0, 'n_notes': len(phrase.notes),
          'pitch_range': [int(phrase.pitches().min()), int(phrase.pitches().max())]}


def _tempo(base: Optional[float], rng, low: float, high: float) -> float:
  t = base if base is not None else float(rng.uniform(low, high))
  return float(np.clip(t * rng.uniform(0.85, 1.15), 40.0, 200.0))


def draw_material(config: MusicSetConfig, pools: PiecePools, split: str,
                  rng: np.random.Generator):
  """The two phrases of a clip and what they are.

  Returns:
    ``({'piano': midi.Phrase, 'violin': midi.Phrase}, {'piano': info, 'violin': info},
    {'material': 'piece'|'ensemble'|'generator'})``.
  """
  d = config.duration_s
  if rng.random() >= config.piece_share:
    seeds = [int(s) for s in rng.integers(0, 2 ** 32, size=2)]
    piano = midi.make_phrase(instrument='piano', duration_s=d, seed=seeds[0])
    violin = midi.make_phrase(instrument='violin', duration_s=d, seed=seeds[1], accompany=piano)
    return ({'piano': piano, 'violin': violin},
            {'piano': _phrase_info(piano), 'violin': _phrase_info(violin)}, 'generator')
  pool = pools.by_split[split]
  if not pool['violin'] or not pool['piano']:
    raise ParameterError(f'split {split!r} has no {"violin" if not pool["violin"] else "piano"} '
                         f'piece; lower piece_share to 0 or widen the catalogue')
  for _ in range(8):   # a draw that leaves no note in the clip is drawn again
    vpiece = pool['violin'][int(rng.integers(len(pool['violin'])))]
    ensemble = vpiece.piece_id in pools.piano_of and rng.random() < config.ensemble_share
    try:
      tempo = _tempo(vpiece.tempo_qpm, rng, 70, 130)
      vseg = pieces.segment_notes(vpiece, duration_s=d, tempo_qpm=tempo, rng=rng,
                                  velocity=int(rng.integers(45, 111)))
      if ensemble:
        ppiece = pools.piano_of[vpiece.piece_id]
        pseg = pieces.segment_notes(ppiece, duration_s=d, tempo_qpm=tempo, rng=rng,
                                    transpose=vseg.transpose, start_ql=vseg.start_ql,
                                    velocity=int(rng.integers(45, 111)))
      else:
        ppiece = pool['piano'][int(rng.integers(len(pool['piano'])))]
        pseg = pieces.segment_notes(ppiece, duration_s=d, tempo_qpm=_tempo(
            ppiece.tempo_qpm, rng, 60, 130), rng=rng, velocity=int(rng.integers(45, 111)))
    except ParameterError:
      continue
    if len(vseg.notes) < 2 or len(pseg.notes) < 2:
      continue
    seed = int(rng.integers(2 ** 31))
    phrases = {'piano': pieces.segment_phrase(pseg, role='piano', duration_s=d, seed=seed),
               'violin': pieces.segment_phrase(vseg, role='violin', duration_s=d, seed=seed)}
    return (phrases, {'piano': _piece_info(ppiece, pseg), 'violin': _piece_info(vpiece, vseg)},
            'ensemble' if ensemble else 'piece')
  raise ParameterError(f'split {split!r}: 8 draws of pieces gave no playable clip')


def draw_levels(config: MusicSetConfig, rng: np.random.Generator) -> Tuple[bool, float, float]:
  """``(equal, ratio_db, mixture_peak)`` of a clip (see the module doc, step 4)."""
  equal = bool(rng.random() < config.equal_share)
  ratio = 0.0 if equal else float(rng.uniform(*config.ratio_range_db))
  lo, hi = config.mixture_peak_range
  return equal, ratio, float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def make_clip(config: MusicSetConfig, pools: PiecePools, split: SplitSpec, index: int,
              font_paths: Dict[str, str]):
  """Renders clip ``index`` of ``split``: ``(piano, violin, mixture, info)``, float32 ``[n]``."""
  rng = clip_rng(split.seed, index)
  sr = config.sample_rate
  phrases, material, kind = draw_material(config, pools, split.name, rng)
  fonts = {inst: split.soundfonts[int(rng.integers(len(split.soundfonts)))] for inst in INSTRUMENTS}
  room = effects.draw_room(rng, share=config.room_share)
  eqs = {inst: effects.draw_eq(rng, share=config.eq_share) for inst in INSTRUMENTS}
  equal, ratio, peak = draw_levels(config, rng)
  dry, wet = {}, {}
  with tempfile.TemporaryDirectory(prefix='music_clip_') as tmp:
    for k, inst in enumerate(INSTRUMENTS):
      path = os.path.join(tmp, f'{inst}.mid')
      midi.write_midi(path, phrases[inst])
      dry[inst] = render.synthesize_midi(path, sample_rate=sr, duration_s=config.duration_s,
                                         soundfont=font_paths[fonts[inst]], peak=0.5)
      y = effects.apply_room(dry[inst], room, sample_rate=sr,
                             seed=(room['seed'] + k) if room else 0)
      wet[inst] = effects.apply_eq(y, eqs[inst], sample_rate=sr)
  p, v, mix = render.mix_sources(wet['piano'], wet['violin'], ratio_db=ratio, peak=peak)
  out = {'piano': p, 'violin': v}
  info = {'index': index, 'seed_sequence': [split.seed, index, _SALT], 'material': kind, 'equal_level': equal,
          'ratio_db_drawn': round(ratio, 4),
          'ratio_db': round(_db(render.rms(v)) - _db(render.rms(p)), 4),
          'peak_ratio_db': round(_db(float(np.max(np.abs(v)))) - _db(float(np.max(np.abs(p)))), 4),
          'mixture_peak': round(float(np.max(np.abs(mix))), 6),
          'room': room}
  for inst in INSTRUMENTS:
    info[inst] = dict(material[inst], soundfont=fonts[inst], eq=eqs[inst],
                      gain_db=round(_db(render.rms(out[inst])) - _db(render.rms(dry[inst])), 4),
                      rms_dbfs=round(_db(render.rms(out[inst])), 4),
                      peak=round(float(np.max(np.abs(out[inst]))), 6))
  return p, v, mix, info


def _request(config: MusicSetConfig, split: SplitSpec, index: int) -> Dict[str, Any]:
  return {'format_version': FORMAT_VERSION, 'split': split.name, 'split_seed': split.seed,
          'index': index, 'soundfonts': list(split.soundfonts), 'settings': config.settings()}


def _clip_name(index: int) -> str:
  return f'{index:05d}'


def _done(split_dir: str, name: str, request: Dict[str, Any]) -> Optional[Dict[str, Any]]:
  try:
    with open(os.path.join(split_dir, 'clips', f'{name}.json'), encoding='utf-8') as f:
      entry = json.load(f)
  except (OSError, ValueError):
    return None
  if entry.get('request') != request:
    return None
  if not all(os.path.isfile(os.path.join(split_dir, fn)) for fn in entry.get('files', {}).values()):
    return None
  return entry


def _make_one(config, pools, split, index, font_paths, split_dir, request):
  p, v, mix, info = make_clip(config, pools, split, index, font_paths)
  name = _clip_name(index)
  files = {}
  for inst, y in (('piano', p), ('violin', v), ('mixture', mix)):
    files[inst] = f'{inst}/{name}.wav'
    write_wav(os.path.join(split_dir, files[inst]), y, config.sample_rate, subtype='FLOAT')
  entry = dict(info, id=name, files=files, request=request)
  write_json_atomic(os.path.join(split_dir, 'clips', f'{name}.json'), entry, sort_keys=False)
  return entry


def summarize(clips: Sequence[Dict[str, Any]], duration_s: float) -> Dict[str, Any]:
  """Hours, level and material statistics of a split's clips (for the data card)."""
  ratios = np.array([c['ratio_db'] for c in clips])
  count = lambda key: {k: sum(1 for c in clips if key(c) == k) for k in sorted({key(c) for c in clips})}
  hours = lambda: round(len(clips) * duration_s / 3600, 4)
  return {
      'n_clips': len(clips), 'hours_per_source': hours(),
      'material': count(lambda c: c['material']),
      'soundfont_piano': count(lambda c: c['piano']['soundfont']),
      'soundfont_violin': count(lambda c: c['violin']['soundfont']),
      'collection_violin': count(lambda c: c['violin'].get('collection', 'generator')),
      'collection_piano': count(lambda c: c['piano'].get('collection', 'generator')),
      'equal_level_share': round(float(np.mean([c['equal_level'] for c in clips])), 4),
      'ratio_db': {'min': round(float(ratios.min()), 3), 'max': round(float(ratios.max()), 3),
                   'mean': round(float(ratios.mean()), 3),
                   'percentiles_5_25_50_75_95': [round(float(x), 3) for x in
                                                 np.percentile(ratios, [5, 25, 50, 75, 95])]},
      'room_share': round(float(np.mean([c['room'] is not None for c in clips])), 4),
      'eq_share': round(float(np.mean([c[i]['eq'] is not None for c in clips
                                       for i in INSTRUMENTS])), 4),
      'distinct_works': len({c[i]['piece_id'] for c in clips for i in INSTRUMENTS
                             if 'piece_id' in c[i]}),
  }


def build(config: MusicSetConfig, *, progress: bool = True) -> Dict[str, Dict[str, Any]]:
  """Builds (or completes) every split of ``config``.

  Returns:
    ``{split: manifest}`` as written to ``out_dir/<split>/manifest.json``.

  Raises:
    ParameterError: for a clip made with other settings (without
      ``overwrite``), a split without pieces, or music21 missing.
    render.RenderDependencyError: if fluidsynth or a soundfont is missing.
  """
  font_names = sorted({f for s in config.splits for f in s.soundfonts})
  font_paths = {f: soundfonts.soundfont_path(f) for f in font_names}
  version = render.fluidsynth_version()
  cache_dir = config.cache_dir or os.path.join(config.out_dir, 'pieces')
  need_pieces = config.piece_share > 0
  all_pieces = pieces.build_index(cache_dir, catalogue=config.catalogue,
                                  n_workers=config.n_workers,
                                  progress=progress) if need_pieces else []
  pools = PiecePools(all_pieces)
  import music21  # pylint: disable=g-import-not-at-top
  out = {}
  for split in config.splits:
    split_dir = os.path.join(config.out_dir, split.name)
    os.makedirs(os.path.join(split_dir, 'clips'), exist_ok=True)
    entries: List[Optional[Dict[str, Any]]] = [None] * split.n_clips
    todo = []
    for i in range(split.n_clips):
      request = _request(config, split, i)
      entries[i] = _done(split_dir, _clip_name(i), request)
      if entries[i] is None:
        if (os.path.exists(os.path.join(split_dir, 'clips', f'{_clip_name(i)}.json'))
            and not config.overwrite):
          raise ParameterError(
              f'{split_dir}/clips/{_clip_name(i)}.json was made with other settings; pass '
              f'--overwrite to replace it or choose another --out_dir')
        todo.append((i, request))
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    with concurrent.futures.ThreadPoolExecutor(config.n_workers) as pool, tqdm(
        total=len(todo), desc=f'music {split.name}', unit='clip', file=sys.stderr,
        disable=not progress or not todo) as bar:
      futures = {pool.submit(_make_one, config, pools, split, i, font_paths, split_dir, r): i
                 for i, r in todo}
      try:
        for future in concurrent.futures.as_completed(futures):
          entries[futures[future]] = future.result()
          bar.update(1)
      except BaseException:
        for future in futures:
          future.cancel()
        raise
    clips = [dict((k, v) for k, v in e.items() if k != 'request') for e in entries]
    manifest = {
        'format_version': FORMAT_VERSION, 'created_by': 'datagen.music_set.build',
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'split': split.name, 'seed': split.seed, 'n_clips': split.n_clips,
        'duration_s': config.duration_s, 'sample_rate': config.sample_rate,
        'n_samples': config.n_samples, 'settings': config.settings(),
        'ratio_definition': '20 * log10(rms(violin) / rms(piano)), dB',
        'mixture_definition': 'mixture = piano + violin (the saved sources)',
        'seed_rule': 'np.random.SeedSequence([split_seed, index, 0x3A51C]) draws everything',
        'synth': {'program': 'fluidsynth', 'fluidsynth_version': version,
                  'synth_sample_rate': 44100, 'reverb': False, 'chorus': False},
        'soundfonts': {f: dict(dataclasses.asdict(soundfonts.SOUNDFONTS[f]), resolved=font_paths[f])
                       if f in soundfonts.SOUNDFONTS else {'path': font_paths[f]}
                       for f in split.soundfonts},
        'music21_version': music21.__version__ if need_pieces else None,
        'piece_split': {'fractions': PIECE_FRACTIONS, 'rule': 'datagen.pieces.split_of(piece_id)',
                        'works_in_split': pools.counts().get(split.name)},
        'summary': summarize(clips, config.duration_s),
        'clips': clips,
    }
    write_json_atomic(os.path.join(split_dir, MANIFEST_NAME), manifest, sort_keys=False)
    out[split.name] = manifest
  return out


def load_manifest(split_dir: str) -> Dict[str, Any]:
  """Reads ``split_dir/manifest.json``.

  Raises:
    ParameterError: if it is missing or not valid JSON.
  """
  return read_json_checked(os.path.join(split_dir, MANIFEST_NAME), missing=(
      f'{split_dir!r} holds no finished music split (manifest.json missing); build it with '
      f'`make data` or render_music.py'))
