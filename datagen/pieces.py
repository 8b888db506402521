"""Real pieces from the music21 corpus as violin lines and piano parts.

The music21 package (PyPI) ships its corpus inside the package (3,194 works;
nothing is downloaded). ``CATALOGUE`` names the works used here and the role
each part plays:

* violin lines: the first and second violin of string quartets (Haydn, Mozart,
  Beethoven op. 18 / 59, Schumann op. 41), Corelli's trio sonata, and fiddle
  tunes (Ryan's Mammoth Collection, O'Neill's 1850), each a monophonic line
  (the top note where a part plays a chord);
* piano parts: keyboard works (Joplin, Chopin, C. P. E. Bach, Clara Schumann,
  the Mozart sonata K. 545, the piano parts of songs by Schubert, Schumann,
  Handel, Beach, Weber...) and Bach chorales played on the keyboard (all four
  voices);
* ensembles: a quartet movement also gives its lower three parts as a piano
  reduction, and a chorale its soprano as a violin line, so a clip can play
  the violin and piano of one work together (same tempo and bars).

:func:`build_index` parses the catalogue once (music21 is slow: 0.1-10 s a
file) into a json cache, one file per corpus file, so a second run reads the
cache. :func:`segment_notes` cuts a clip's worth of a piece at a tempo,
transposed into the instrument's range; ``datagen.music_set`` renders it.

Notes are ``(onset, duration, pitch)`` with onset and duration in quarter
notes (music21's ``quarterLength``) and MIDI pitch.
"""

import concurrent.futures
import dataclasses
import json
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.atomic import write_json_atomic
from common.errors import ParameterError
from datagen import midi
from datagen.recorded import stable_fraction

INDEX_VERSION = 1
ROLES = ('violin', 'piano')
# Where a role may sound (MIDI pitches, inclusive): the violin's G3 to A6
# (the range the fiddle and quartet parts use), the piano's A0 to C8 kept
# away from the extreme octaves where soundfonts are thin.
ROLE_RANGE = {'violin': (55, 93), 'piano': (24, 103)}
INSTALL_HINT = ('install the data extra: `pip install -c requirements/constraints.txt '
                '-e .[data]` (`make data` does it); music21 ships its corpus, nothing is '
                'downloaded')


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
  """A group of corpus files and how their parts are used.

  Attributes:
    pattern: regex matched against the corpus-relative path (``bach/bwv1.6.mxl``).
    collection: a short name recorded per piece.
    kind: ``'tune'`` (one melodic line: a violin line), ``'quartet'`` (violin
      parts, plus the others as a piano reduction), ``'keyboard'`` (the parts
      named piano, or all parts when none is), ``'chorale'`` (all voices on
      the piano, plus the soprano as a violin line).
    limit: at most this many files (every k-th of the sorted matches), or None.
  """
  pattern: str
  collection: str
  kind: str
  limit: Optional[int] = None


CATALOGUE: Tuple[CatalogueEntry, ...] = (
    CatalogueEntry(r'^ryansMammoth/.*\.abc$', 'ryans_mammoth', 'tune', 360),
    CatalogueEntry(r'^oneills1850/.*\.abc$', 'oneills1850', 'tune', 4),
    CatalogueEntry(r'^haydn/.*\.mxl$', 'haydn_quartets', 'quartet'),
    CatalogueEntry(r'^mozart/k(80|155|156|458)/.*\.mxl$', 'mozart_quartets', 'quartet'),
    CatalogueEntry(r'^beethoven/opus(18no1/.*|59no\d/movement[24])\.mxl$',
                   'beethoven_quartets', 'quartet'),
    CatalogueEntry(r'^schumann_robert/opus41no1/.*\.mxl$', 'schumann_quartet', 'quartet'),
    CatalogueEntry(r'^corelli/.*\.xml$', 'corelli', 'quartet'),
    CatalogueEntry(r'^bach/bwv.*\.mxl$', 'bach_chorales', 'chorale', 240),
    CatalogueEntry(
        r'^(joplin|chopin|cpebach|schumann_clara|handel|schubert|beach|weber|'
        r'johnson_j_r|liliuokalani)/.*|^mozart/k545/.*|^schumann_robert/(dichterliebe|opus48).*',
        'keyboard', 'keyboard'),
)


@dataclasses.dataclass(frozen=True)
class Piece:
  """One part of one work in one role.

  Attributes:
    piece_id: ``corpus path[#k]`` (``#k`` numbers the tunes of a collection
      file); the violin and piano entries of one work share it.
    role: ``'violin'`` or ``'piano'``.
    collection: the catalogue's name for the group.
    title: the work's title where the file gives one.
    part: which parts: e.g. ``'Violin I'``, ``'reduction'``, ``'all'``.
    tempo_qpm: the first metronome mark, quarter notes per minute, or None.
    notes: ``((onset_ql, duration_ql, pitch), ...)`` sorted by onset.
  """
  piece_id: str
  role: str
  collection: str
  title: str
  part: str
  tempo_qpm: Optional[float]
  notes: Tuple[Tuple[float, float, int], ...]

  @property
  def length_ql(self) -> float:
    """End of the last note, quarter notes."""
    return max((o + d for o, d, _ in self.notes), default=0.0)

  def to_json(self):
    return dict(dataclasses.asdict(self), notes=[list(n) for n in self.notes])

  @classmethod
  def from_json(cls, d) -> 'Piece':
    return cls(**dict(d, notes=tuple((float(o), float(q), int(p)) for o, q, p in d['notes'])))


def _music21():
  try:
    import music21  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ParameterError(f'music21 is not installed; {INSTALL_HINT}') from e
  return music21


def corpus_files() -> List[str]:
  """Corpus-relative paths of every file of the installed music21 corpus, sorted.

  Raises:
    ParameterError: if music21 is not installed.
  """
  m21 = _music21()
  out = []
  for p in m21.corpus.getPaths():
    text = str(p).replace(os.sep, '/')
    out.append(text.split('/corpus/', 1)[1] if '/corpus/' in text else text)
  return sorted(out)


def catalogue_files(catalogue: Sequence[CatalogueEntry] = CATALOGUE) -> List[Tuple[str, CatalogueEntry]]:
  """``[(corpus path, entry)]`` that the catalogue selects, each path once."""
  files = corpus_files()
  seen, out = set(), []
  for entry in catalogue:
    matches = [f for f in files if re.search(entry.pattern, f) and f not in seen]
    if entry.limit is not None and len(matches) > entry.limit:
      step = len(matches) / entry.limit
      matches = [matches[int(i * step)] for i in range(entry.limit)]
    seen.update(matches)
    out += [(f, entry) for f in matches]
  return out


def _line(stream_, *, top_only: bool) -> List[Tuple[float, float, int]]:
  """Notes of a (tie-stripped) stream: ``(onset, duration, pitch)``."""
  notes = []
  for el in stream_.flatten().notes:
    dur = float(el.quarterLength)
    if dur <= 0:  # grace notes
      continue
    pitches = sorted(int(p.midi) for p in el.pitches)
    if top_only:
      pitches = pitches[-1:]
    notes += [(float(el.offset), dur, p) for p in pitches]
  notes.sort()
  return notes


def _monophonic(notes):
  """One note at a time: the highest at each onset, cut at the next onset."""
  by_onset = {}
  for o, d, p in notes:
    if o not in by_onset or p > by_onset[o][2]:
      by_onset[o] = (o, d, p)
  line = [by_onset[o] for o in sorted(by_onset)]
  return [(o, min(d, line[i + 1][0] - o) if i + 1 < len(line) else d, p)
          for i, (o, d, p) in enumerate(line)]


def _tempo(score) -> Optional[float]:
  for mark in score.flatten().getElementsByClass('MetronomeMark'):
    try:
      q = float(mark.getQuarterBPM())
    except Exception:  # pylint: disable=broad-except  # music21 raises several kinds
      continue
    if 20 <= q <= 300:
      return q
  return None


def _merge(parts) -> List[Tuple[float, float, int]]:
  notes = []
  for p in parts:
    notes += _line(p, top_only=False)
  return sorted(set(notes))


def pieces_of_score(score, piece_id: str, entry: CatalogueEntry) -> List[Piece]:
  """The violin / piano pieces a parsed music21 score gives under ``entry``."""
  score = score.stripTies()
  parts = list(score.parts) if hasattr(score, 'parts') and len(score.parts) else [score]
  names = [(p.partName or '') for p in parts]
  title = (score.metadata.title if score.metadata and score.metadata.title else '') or ''
  tempo = _tempo(score)
  out = []

  def add(role, part, notes):
    notes = _monophonic(notes) if role == 'violin' else notes
    if len(notes) >= 8:
      out.append(Piece(piece_id, role, entry.collection, str(title), part, tempo,
                       tuple((round(o, 6), round(d, 6), int(p)) for o, d, p in notes)))

  if entry.kind == 'tune':
    add('violin', 'melody', _line(parts[0], top_only=True))
  elif entry.kind == 'quartet':
    violins = [i for i, n in enumerate(names) if re.search(r'viol(in|ino)(?!e)|^vn|^vl', n, re.I)
               and not re.search(r'viola', n, re.I)] or [0]
    for k, i in enumerate(violins[:2]):
      add('violin', names[i] or f'part {i + 1}', _line(parts[i], top_only=True))
    rest = [p for i, p in enumerate(parts) if i not in violins[:1]]
    if rest:
      add('piano', 'reduction', _merge(rest))
  elif entry.kind == 'chorale':
    add('piano', 'all', _merge(parts))
    soprano = [i for i, n in enumerate(names) if re.search(r'soprano', n, re.I)]
    add('violin', 'soprano', _line(parts[soprano[0] if soprano else 0], top_only=True))
  elif entry.kind == 'keyboard':
    piano = [p for p, n in zip(parts, names) if re.search(r'piano|klavier|pianoforte', n, re.I)]
    if not piano:
      instruments = [(p.getInstrument().instrumentName or '') if p.getInstrument() else ''
                     for p in parts]
      piano = [p for p, n in zip(parts, instruments) if re.search(r'piano', n, re.I)] or parts
    add('piano', 'piano', _merge(piano))
  else:
    raise ParameterError(f'catalogue kind {entry.kind!r} is not tune/quartet/chorale/keyboard')
  return out


def parse_file(path: str, entry: CatalogueEntry) -> List[Piece]:
  """Parses one corpus file (a score, or a collection of tunes) into pieces.

  Raises:
    ParameterError: if music21 is missing or cannot parse the file.
  """
  m21 = _music21()
  try:
    parsed = m21.corpus.parse(path)
  except Exception as e:  # pylint: disable=broad-except  # music21 raises many kinds
    raise ParameterError(f'music21 cannot parse corpus file {path!r}: {e}') from e
  scores = list(parsed.scores) if isinstance(parsed, m21.stream.Opus) else [parsed]
  out = []
  for k, score in enumerate(scores):
    pid = f'{path}#{k}' if len(scores) > 1 else path
    out += pieces_of_score(score, pid, entry)
  return out


def _cache_name(path: str) -> str:
  return re.sub(r'[^A-Za-z0-9._-]', '_', path) + '.json'


def _parse_to_cache(args):
  path, entry, cache_file, version = args
  import warnings  # pylint: disable=g-import-not-at-top
  warnings.filterwarnings('ignore')
  try:
    pieces = parse_file(path, entry)
    error = None
  except ParameterError as e:
    pieces, error = [], str(e)
  write_json_atomic(cache_file, {'index_version': version, 'music21_version': _music21().__version__,
                                 'file': path, 'collection': entry.collection,
                                 'error': error, 'pieces': [p.to_json() for p in pieces]},
                    sort_keys=False)
  return path


def build_index(cache_dir: str, *, catalogue: Sequence[CatalogueEntry] = CATALOGUE,
                n_workers: int = 2, progress: bool = True) -> List[Piece]:
  """Parses the catalogue into ``cache_dir`` (once) and returns every piece.

  One json per corpus file (written atomically), so an interrupted build
  resumes and a second build only reads. A file music21 cannot parse is
  recorded with its error and gives no piece.

  Args:
    cache_dir: folder of the cache (created).
    catalogue: what to parse.
    n_workers: int >= 1, processes parsing at once.
    progress: a progress bar on stderr.

  Returns:
    Every :class:`Piece`, sorted by ``(piece_id, role, part)``.

  Raises:
    ParameterError: if music21 is missing or nothing could be parsed.
  """
  m21 = _music21()
  if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
    raise ParameterError(f'n_workers must be a positive int, got {n_workers!r}')
  os.makedirs(cache_dir, exist_ok=True)
  files = catalogue_files(catalogue)
  todo = []
  for path, entry in files:
    cache_file = os.path.join(cache_dir, _cache_name(path))
    try:
      with open(cache_file, encoding='utf-8') as f:
        head = json.load(f)
      if (head.get('index_version') == INDEX_VERSION and
          head.get('music21_version') == m21.__version__ and head.get('collection') == entry.collection):
        continue
    except (OSError, ValueError):
      pass
    todo.append((path, entry, cache_file, INDEX_VERSION))
  if todo:
    from tqdm import tqdm  # pylint: disable=g-import-not-at-top
    with concurrent.futures.ProcessPoolExecutor(n_workers) as pool, tqdm(
        total=len(todo), desc=f'music21 pieces -> {cache_dir}', unit='file',
        disable=not progress, file=sys.stderr) as bar:
      for _ in pool.map(_parse_to_cache, todo, chunksize=4):
        bar.update(1)
  pieces = []
  for path, _ in files:
    with open(os.path.join(cache_dir, _cache_name(path)), encoding='utf-8') as f:
      pieces += [Piece.from_json(d) for d in json.load(f)['pieces']]
  if not pieces:
    raise ParameterError(f'no piece parsed from the {len(files)} catalogue files ({cache_dir})')
  return sorted(pieces, key=lambda p: (p.piece_id, p.role, p.part))


def split_of(piece_id: str, fractions: Dict[str, float]) -> str:
  """The split of a work: ``stable_fraction`` of its corpus path (tunes of one file alike
  would leak style only, so the ``#k`` tune number counts too)."""
  u = stable_fraction('piece:' + piece_id)
  acc = 0.0
  for name, share in fractions.items():
    acc += share
    if u < acc:
      return name
  return list(fractions)[-1]


@dataclasses.dataclass(frozen=True)
class Segment:
  """A clip's worth of a piece, as it will be played.

  Attributes:
    notes: ``midi.Note`` list, seconds from the clip start, transposed.
    start_ql: where in the piece the clip starts, quarter notes.
    tempo_qpm: quarter notes per minute played.
    transpose: semitones added to every pitch.
    looped: whether the piece was repeated to fill the clip.
  """
  notes: Tuple[midi.Note, ...]
  start_ql: float
  tempo_qpm: float
  transpose: int
  looped: bool


def choose_transposition(low: int, high: int, role: str, rng: np.random.Generator,
                         *, max_shift: int = 6) -> int:
  """Semitones that put pitches ``low..high`` inside ``ROLE_RANGE[role]``.

  A shift of at most ``max_shift`` semitones either way is drawn when several
  fit; otherwise the smallest whole-octave-plus-shift that fits, or (a line
  wider than the range) the one that centres it.
  """
  lo, hi = ROLE_RANGE[role]
  fits = [t for t in range(-48, 49) if low + t >= lo and high + t <= hi]
  near = [t for t in fits if abs(t) <= max_shift]
  if near:
    return int(near[int(rng.integers(len(near)))])
  if fits:
    return int(min(fits, key=abs))
  return int(round((lo + hi) / 2 - (low + high) / 2))


def segment_notes(piece: Piece, *, duration_s: float, tempo_qpm: float,
                  rng: np.random.Generator, transpose: Optional[int] = None,
                  start_ql: Optional[float] = None, velocity: int = 80,
                  velocity_jitter: int = 6) -> Segment:
  """Cuts ``duration_s`` of ``piece`` at ``tempo_qpm``, transposed into its role's range.

  The start is a whole beat drawn so that a note begins within a beat of it
  (no long silence at the start); a piece shorter than the clip is repeated.
  Velocities: ``velocity`` with an accent of +8 on whole beats and a uniform
  jitter of +-``velocity_jitter``. Notes are cut at the clip's end.

  Args:
    piece: a :class:`Piece`.
    duration_s: float > 0, seconds.
    tempo_qpm: float in [20, 300], quarter notes per minute.
    rng: draws the start, the transposition and the jitter.
    transpose: semitones, or None to draw (:func:`choose_transposition`).
    start_ql: quarter notes, or None to draw.
    velocity: int in [1, 127], the base velocity.
    velocity_jitter: int >= 0.

  Returns:
    :class:`Segment`.

  Raises:
    ParameterError: for a piece without notes or a bad tempo.
  """
  if not piece.notes:
    raise ParameterError(f'piece {piece.piece_id!r} ({piece.role}) has no notes')
  if not 20 <= tempo_qpm <= 300:
    raise ParameterError(f'tempo_qpm must be in [20, 300], got {tempo_qpm!r}')
  span = duration_s * tempo_qpm / 60.0
  length = max(piece.length_ql, 1.0)
  notes = list(piece.notes)
  looped = length < span + 1
  if looped:
    reps = int(np.ceil((span + 1) / length)) + 1
    notes = [(o + r * length, d, p) for r in range(reps) for o, d, p in piece.notes]
    length *= reps
  if start_ql is None:
    onsets = np.array([o for o, _, _ in notes])
    beats = np.arange(0, max(length - span, 0) + 1e-9, 1.0)
    good = [b for b in beats if np.any((onsets >= b) & (onsets < b + 1))]
    start_ql = float(good[int(rng.integers(len(good)))] if good else 0.0)
  window = [(o - start_ql, d, p) for o, d, p in notes if start_ql <= o < start_ql + span]
  if not window:
    raise ParameterError(f'piece {piece.piece_id!r}: no note in {span:.1f} quarter notes '
                         f'from {start_ql}')
  pitches = [p for _, _, p in window]
  if transpose is None:
    transpose = choose_transposition(min(pitches), max(pitches), piece.role, rng)
  lo, hi = ROLE_RANGE[piece.role]
  sec = 60.0 / tempo_qpm
  out = []
  for o, d, p in window:
    q = p + transpose
    while q < lo:
      q += 12
    while q > hi:
      q -= 12
    start = o * sec
    end = min((o + d) * sec, duration_s)
    if end - start < 0.02:
      continue
    accent = 8 if abs(o + start_ql - round(o + start_ql)) < 1e-6 else 0
    v = int(np.clip(velocity + accent + rng.integers(-velocity_jitter, velocity_jitter + 1), 1, 127))
    out.append(midi.Note(int(q), v, round(start, 6), round(end, 6), 'melody'))
  out.sort(key=lambda n: (n.start_s, n.pitch))
  return Segment(tuple(out), float(start_ql), float(tempo_qpm), int(transpose), bool(looped))


def segment_phrase(segment: Segment, *, role: str, duration_s: float, seed: int) -> midi.Phrase:
  """A ``midi.Phrase`` that plays a segment (for ``midi.write_midi``)."""
  program = midi.INSTRUMENTS[role].program
  tempo_us = int(round(60e6 / segment.tempo_qpm))
  return midi.Phrase(instrument=role, program=program, seed=int(seed), tempo_us=tempo_us,
                     tonic=0, mode='piece', duration_s=float(duration_s), chord_beats=0,
                     chords=(), notes=segment.notes, controls=())
