"""Seeded random musical phrases for piano and violin, written as MIDI.

The instrument priors are trained on audio that fluidsynth renders from MIDI
files written here (``datagen.render``). A phrase is meant to sound like
music rather than noise, so that a prior learns the timbre *and* the typical
note patterns of its instrument:

* a key (tonic pitch class) and a mode (major, natural or harmonic minor,
  dorian), a tempo and a 4/4 metre;
* a chord progression from a small functional Markov chain (I -> IV/V/vi...,
  V -> I...), ending on I, one chord every two or four beats;
* a melody that moves mostly by scale step, leaps now and then and fills a leap
  by a step the other way, drifts back toward the middle of its range, lands on
  chord tones at chord changes and ends on a tonic-triad tone;
* durations on a sixteenth-note grid (off-beat notes are followed by notes that
  lead back onto the beat); velocities follow a phrase arc (crescendo then
  diminuendo) plus metric accents and a little jitter.

Piano (GM program 0) plays a right-hand melody in MIDI 60-88 (sometimes with a
third or sixth below it) over a left-hand accompaniment in MIDI 36-67: block
chords, Alberti / broken chords, arpeggios or bass-and-chord, with the sustain
pedal in some phrases. Violin (GM program 40) plays one legato line between G3
(55) and E6 (88) in longer notes, with a bow swell (expression, CC 11) on long
notes and the odd breath between sub-phrases; it never plays two notes at once.

Everything is drawn from ``np.random.default_rng(seed)``: one seed gives the
same phrase (and byte-identical MIDI file) on every run.
"""

import dataclasses
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import mido
import numpy as np

from common.atomic import atomic_path
from common.errors import ParameterError

TICKS_PER_BEAT = 480
_EIGHTH = TICKS_PER_BEAT // 2
_SIXTEENTH = TICKS_PER_BEAT // 4
_BAR = 4 * TICKS_PER_BEAT

SCALES = {
    'major': (0, 2, 4, 5, 7, 9, 11),
    'minor': (0, 2, 3, 5, 7, 8, 10),
    'harmonic_minor': (0, 2, 3, 5, 7, 8, 11),
    'dorian': (0, 2, 3, 5, 7, 9, 10),
}
_MODE_WEIGHTS = {'major': 0.5, 'minor': 0.25, 'harmonic_minor': 0.15,
                 'dorian': 0.1}

# Functional harmony on scale degrees 0..6 (I..vii): degree -> {next: weight}.
_PROGRESSION = {
    0: {3: 0.3, 4: 0.3, 5: 0.2, 1: 0.12, 2: 0.08},
    1: {4: 0.7, 6: 0.1, 0: 0.2},
    2: {5: 0.5, 3: 0.5},
    3: {4: 0.4, 0: 0.3, 1: 0.3},
    4: {0: 0.7, 5: 0.2, 3: 0.1},
    5: {1: 0.35, 3: 0.4, 4: 0.25},
    6: {0: 1.0},
}

_PITCH_NAMES = ('C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B')
# mido's key-signature names (major; minor names get an 'm').
_MAJOR_KEYS = ('C', 'Db', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B')
_MINOR_KEYS = ('Cm', 'C#m', 'Dm', 'Ebm', 'Em', 'Fm', 'F#m', 'Gm', 'G#m', 'Am',
               'Bbm', 'Bm')


@dataclasses.dataclass(frozen=True)
class InstrumentSpec:
  """What a phrase generator needs to know about an instrument.

  Attributes:
    name: ``'piano'`` or ``'violin'``.
    program: General MIDI program number, 0-based (0 = Acoustic Grand Piano,
      40 = Violin).
    low: lowest MIDI pitch the instrument plays here.
    high: highest MIDI pitch the instrument plays here.
    polyphonic: whether notes may overlap in time.
    tempo_range_bpm: ``(low, high)`` of the random tempo, beats per minute.
  """
  name: str
  program: int
  low: int
  high: int
  polyphonic: bool
  tempo_range_bpm: Tuple[int, int]


INSTRUMENTS: Dict[str, InstrumentSpec] = {
    'piano': InstrumentSpec('piano', 0, 36, 96, True, (72, 132)),
    'violin': InstrumentSpec('violin', 40, 55, 88, False, (60, 108)),
}

# Sub-ranges of the piano's two hands (MIDI pitches, inclusive).
_PIANO_RH = (60, 88)
_PIANO_BASS = (36, 50)
_PIANO_LH_CHORD = (48, 67)


@dataclasses.dataclass(frozen=True)
class Note:
  """One note of a phrase.

  Attributes:
    pitch: MIDI pitch, 0-127 (60 = middle C).
    velocity: MIDI velocity, 1-127.
    start_s: onset, seconds from the start of the file.
    end_s: release, seconds, ``> start_s``.
    voice: ``'melody'``, ``'harmony'`` (a note doubling the melody) or
      ``'accompaniment'`` (piano left hand).
  """
  pitch: int
  velocity: int
  start_s: float
  end_s: float
  voice: str = 'melody'


@dataclasses.dataclass(frozen=True)
class Control:
  """One MIDI control change of a phrase.

  Attributes:
    time_s: seconds from the start of the file.
    control: MIDI controller number (11 = expression, 64 = sustain pedal).
    value: 0-127.
  """
  time_s: float
  control: int
  value: int


@dataclasses.dataclass(frozen=True)
class Phrase:
  """A generated phrase: its notes and what they were drawn from.

  Attributes:
    instrument: ``'piano'`` or ``'violin'``.
    program: General MIDI program, 0-based.
    seed: the seed it was drawn with.
    tempo_us: tempo as the MIDI file stores it, microseconds per quarter note.
    tonic: tonic pitch class, 0-11 (0 = C).
    mode: a key of ``SCALES``.
    duration_s: length of the file, seconds (the end-of-track time).
    chord_beats: beats per chord (2 or 4).
    chords: scale degrees (0 = I) of the chord progression, in order.
    notes: the notes, sorted by onset then pitch.
    controls: control changes (bow swells, pedal), sorted by time.
  """
  instrument: str
  program: int
  seed: int
  tempo_us: int
  tonic: int
  mode: str
  duration_s: float
  chord_beats: int
  chords: Tuple[int, ...]
  notes: Tuple[Note, ...]
  controls: Tuple[Control, ...] = ()

  @property
  def tempo_bpm(self) -> float:
    """Tempo, quarter notes per minute."""
    return mido.tempo2bpm(self.tempo_us)

  @property
  def key_name(self) -> str:
    """Human-readable key, e.g. ``'D dorian'``."""
    return f'{_PITCH_NAMES[self.tonic]} {self.mode.replace("_", " ")}'

  def pitches(self) -> np.ndarray:
    """MIDI pitches of all notes, int ``[n_notes]``."""
    return np.array([n.pitch for n in self.notes], dtype=np.int64)

  def max_polyphony(self) -> int:
    """Largest number of notes sounding at one instant."""
    events = sorted([(n.start_s, 1) for n in self.notes] +
                    [(n.end_s, -1) for n in self.notes])  # ends sort first
    level = peak = 0
    for _, step in events:
      level += step
      peak = max(peak, level)
    return peak


@dataclasses.dataclass
class _Event:
  tick: int
  pitch: int
  velocity: int
  end_tick: int
  voice: str


def _check_args(instrument, duration_s, seed, tempo_bpm):
  if instrument not in INSTRUMENTS:
    raise ParameterError(
        f'instrument must be one of {sorted(INSTRUMENTS)}, got {instrument!r}')
  if (isinstance(duration_s, bool) or not isinstance(duration_s, (int, float))
      or not math.isfinite(duration_s) or not 0.5 <= duration_s <= 3600):
    raise ParameterError(
        f'duration_s must be a number of seconds in [0.5, 3600], got '
        f'{duration_s!r}')
  if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
      or seed < 0):
    raise ParameterError(f'seed must be a non-negative int, got {seed!r}')
  if tempo_bpm is not None and (
      isinstance(tempo_bpm, bool) or not isinstance(tempo_bpm, (int, float))
      or not 30 <= tempo_bpm <= 300):
    raise ParameterError(
        f'tempo_bpm must be None or in [30, 300] beats per minute, got '
        f'{tempo_bpm!r}')


def _choice(rng: np.random.Generator, weights: Dict):
  keys = list(weights)
  p = np.array([weights[k] for k in keys], dtype=np.float64)
  return keys[rng.choice(len(keys), p=p / p.sum())]


def _degree_pitch(d: int, tonic: int, scale: Sequence[int]) -> int:
  """MIDI pitch of scale index ``d`` (``d = 0`` is the tonic in octave -1)."""
  return tonic + 12 * (d // 7) + scale[d % 7]


def _degrees_in(low: int, high: int, tonic: int, scale) -> List[int]:
  return [d for d in range(0, 80)
          if low <= _degree_pitch(d, tonic, scale) <= high]


def _progression(rng, n_chords: int, mode: str) -> List[int]:
  """Scale degrees of ``n_chords`` chords; four or more end with a cadence."""
  chords = [0 if rng.random() < 0.75 else int(rng.choice([3, 5]))]
  for _ in range(n_chords - 1):
    nxt = _choice(rng, _PROGRESSION[chords[-1]])
    if mode == 'harmonic_minor' and nxt == 2:  # III+ is augmented: use VI.
      nxt = 5
    chords.append(nxt)
  if n_chords >= 4:
    chords[-1] = 0
    if chords[-2] == 0 or rng.random() < 0.5:
      chords[-2] = 4 if chords[-3] != 4 else 3  # V -> I (or IV -> I)
  return chords


def _rhythm(rng, start: int, end: int, menu: Dict[int, float],
            min_last: int) -> List[Tuple[int, int]]:
  """``(onset, length)`` ticks tiling ``[start, end)`` on the grid."""
  out = []
  pos = start
  while pos < end:
    if pos % TICKS_PER_BEAT:  # off the beat: lead back onto it
      length = _EIGHTH if rng.random() < 0.8 else 3 * _EIGHTH
      if pos % _EIGHTH:
        length = _SIXTEENTH
    else:
      length = _choice(rng, menu)
    length = min(length, end - pos)
    if length < min_last and out:  # too short a tail: lengthen the last note
      o, l = out[-1]
      out[-1] = (o, l + length)
    else:
      out.append((pos, length))
    pos += length
  return out


def _melody(rng, rhythm, *, chord_at, tonic, scale, low, high,
            leap_p: float) -> List[int]:
  """Pitches for the onsets of ``rhythm`` (mostly stepwise, see module doc)."""
  degrees = _degrees_in(low, high, tonic, scale)
  lo, hi = degrees[0], degrees[-1]
  centre = (lo + hi) / 2
  chord_tone = lambda d, c: (d - c) % 7 in (0, 2, 4)
  # Start on a chord tone of the first chord in the middle third of the range.
  c0 = chord_at(rhythm[0][0])
  start = [d for d in degrees if chord_tone(d, c0) and
           abs(d - centre) <= (hi - lo) / 4] or [int(round(centre))]
  d = int(rng.choice(start))
  out = [d]
  direction = 1 if rng.random() < 0.5 else -1
  last_leap = 0
  prev_chord = c0
  for i, (onset, _) in enumerate(rhythm[1:], start=1):
    if last_leap and rng.random() < 0.8:  # gap fill: step back after a leap
      interval = -int(np.sign(last_leap))
    else:
      u = rng.random()
      if u < 0.08:
        interval = 0
      elif u < 1 - leap_p:
        # steps keep running in one direction, bent back toward the centre
        pull = (d - centre) / max(hi - centre, 1)
        p_turn = 0.3 + 0.5 * max(0.0, pull * direction)
        if rng.random() < p_turn:
          direction = -direction
        interval = direction * (1 if rng.random() < 0.78 else 2)
      else:
        size = int(rng.choice([2, 3, 4, 5, 7], p=[0.3, 0.3, 0.2, 0.1, 0.1]))
        sign = -1 if d > centre + rng.normal(0, 2) else 1
        interval = sign * size
    nd = d + interval
    if nd < lo or nd > hi:
      nd = d - interval
    nd = min(max(nd, lo), hi)
    chord = chord_at(onset)
    if (chord != prev_chord and not chord_tone(nd, chord) and
        rng.random() < 0.75):
      for delta in (1, -1, 2, -2):
        if lo <= nd + delta <= hi and chord_tone(nd + delta, chord):
          nd += delta
          break
    prev_chord = chord
    last_leap = nd - d if abs(nd - d) >= 3 else 0
    if nd != d:
      direction = 1 if nd > d else -1
    d = nd
    if i == len(rhythm) - 1:  # end on a tonic-triad tone, preferably the tonic
      ends = [e for e in degrees if e % 7 == 0] or degrees
      if rng.random() < 0.35:
        ends = [e for e in degrees if e % 7 in (0, 2, 4)] or degrees
      d = min(ends, key=lambda e: (abs(e - out[-1]), e))
    out.append(d)
  return [_degree_pitch(x, tonic, scale) for x in out]


def _velocity(rng, tick, n_ticks, *, base, swing, peak_at, pitch=None,
              mean_pitch=None) -> int:
  u = tick / max(n_ticks, 1)
  arc = math.sin(math.pi * min(u / peak_at, 1.0) / 2) if u < peak_at else (
      math.cos(math.pi / 2 * (u - peak_at) / max(1 - peak_at, 1e-6)))
  v = base + swing * arc
  beat = (tick % _BAR) / TICKS_PER_BEAT
  v += {0.0: 6, 2.0: 3, 1.0: 0, 3.0: 0}.get(beat, -4)
  if pitch is not None and mean_pitch is not None:
    v += 0.3 * (pitch - mean_pitch)
  v += rng.normal(0, 3)
  return int(np.clip(round(v), 20, 120))


def _triad_pcs(chord: int, tonic: int, scale) -> List[int]:
  return [_degree_pitch(chord + k, tonic, scale) % 12 for k in (0, 2, 4)]


def _voicing(pcs, prev_low: float) -> List[int]:
  """Close-position triad in the left-hand chord range, near ``prev_low``."""
  best = None
  for inv in range(3):
    order = pcs[inv:] + pcs[:inv]
    for octave in range(3, 6):
      notes = [order[0] + 12 * octave]
      for pc in order[1:]:
        n = notes[-1] + 1
        while n % 12 != pc:
          n += 1
        notes.append(n)
      if _PIANO_LH_CHORD[0] <= notes[0] and notes[-1] <= _PIANO_LH_CHORD[1]:
        cost = abs(notes[0] - prev_low)
        if best is None or cost < best[0]:
          best = (cost, notes)
  return best[1]


def _bass(pc: int) -> int:
  b = _PIANO_BASS[0] + (pc - _PIANO_BASS[0]) % 12
  return b


def _accompaniment(rng, segments, *, tonic, scale, n_ticks, velocity_at):
  """Left-hand notes over ``[(start, end, chord), ...]`` chord segments."""
  pattern = _choice(rng, {'block': 0.25, 'alberti': 0.25, 'arpeggio': 0.25,
                          'bass_chord': 0.25})
  events = []
  prev_low = 55.0
  for start, end, chord in segments:
    if rng.random() < 0.15:  # change of texture mid-phrase
      pattern = _choice(rng, {'block': 1, 'alberti': 1, 'arpeggio': 1,
                              'bass_chord': 1})
    pcs = _triad_pcs(chord, tonic, scale)
    upper = _voicing(pcs, prev_low)
    prev_low = upper[0]
    bass = _bass(pcs[0])
    add = lambda t, p, length, accent=0: events.append(_Event(
        t, p, max(1, min(127, velocity_at(t) + accent)),
        min(t + length, n_ticks), 'accompaniment'))
    if pattern == 'block':
      hits = [start]
      if end - start >= _BAR and rng.random() < 0.5:
        hits.append(start + 2 * TICKS_PER_BEAT)
      for k, t in enumerate(hits):
        length = (hits[k + 1] if k + 1 < len(hits) else end) - t
        add(t, bass, length - 20, 4)
        for p in upper:
          add(t, p, length - 20)
    elif pattern == 'alberti':  # low - high - middle - high in eighths
      seq = [upper[0], upper[2], upper[1], upper[2]]
      add(start, bass, end - start - 20, 4)
      for k, t in enumerate(range(start, end, _EIGHTH)):
        add(t, seq[k % 4], _EIGHTH - 10, 0 if k % 2 == 0 else -5)
    elif pattern == 'arpeggio':  # root 5th octave 10th octave 5th in eighths
      r = bass
      fifth = r + (pcs[2] - pcs[0]) % 12
      third = r + (pcs[1] - pcs[0]) % 12
      seq = [r, fifth, r + 12, third + 12, r + 12, fifth]
      for k, t in enumerate(range(start, end, _EIGHTH)):
        add(t, seq[k % len(seq)], 2 * _EIGHTH, 3 if k % len(seq) == 0 else -3)
    else:  # bass on beats 1 and 3, chord on 2 and 4
      for t in range(start, end, TICKS_PER_BEAT):
        if ((t - start) // TICKS_PER_BEAT) % 2 == 0:
          add(t, bass, TICKS_PER_BEAT - 30, 4)
        else:
          for p in upper:
            add(t, p, TICKS_PER_BEAT - 60, -4)
  return events


def make_phrase(*, instrument: str, duration_s: float, seed: int,
                tempo_bpm: Optional[float] = None,
                accompany: Optional[Phrase] = None) -> Phrase:
  """Draws a random phrase for one instrument.

  Args:
    instrument: ``'piano'`` or ``'violin'`` (a key of ``INSTRUMENTS``).
    duration_s: float in [0.5, 3600], length of the phrase in seconds. Notes
      are cut at this time.
    seed: int >= 0; the same seed always gives the same phrase.
    tempo_bpm: quarter notes per minute in [30, 300], or None to draw one from
      the instrument's ``tempo_range_bpm``. Ignored with ``accompany``.
    accompany: another ``Phrase`` to play along with: its tempo, key, mode and
      chord progression are reused (so a piano and a violin phrase form a
      duet); only the notes are drawn from ``seed``.

  Returns:
    A ``Phrase``; its notes lie in ``[0, duration_s]`` and within the
    instrument's pitch range.

  Raises:
    ParameterError: for an unknown instrument or an out-of-range duration,
      seed or tempo.
  """
  _check_args(instrument, duration_s, seed, tempo_bpm)
  spec = INSTRUMENTS[instrument]
  rng = np.random.default_rng(seed)
  if accompany is not None:
    tempo_us, tonic, mode = accompany.tempo_us, accompany.tonic, accompany.mode
    tempo_bpm = mido.tempo2bpm(tempo_us)
  else:
    if tempo_bpm is None:
      tempo_bpm = int(rng.integers(spec.tempo_range_bpm[0],
                                   spec.tempo_range_bpm[1] + 1))
    tempo_us = mido.bpm2tempo(tempo_bpm)  # whole microseconds per beat
    tonic = int(rng.integers(12))
    mode = _choice(rng, _MODE_WEIGHTS)
  sec_per_tick = tempo_us / 1e6 / TICKS_PER_BEAT
  n_ticks = int(math.floor(duration_s / sec_per_tick + 1e-9))
  scale = SCALES[mode]

  # Harmonic rhythm: a chord every 2 or 4 beats (slower tempi change less).
  if accompany is not None:
    seg = accompany.chord_beats * TICKS_PER_BEAT
    n_chords = max(1, -(-n_ticks // seg))
    chords = list(accompany.chords[:n_chords])
    chords += chords[-1:] * (n_chords - len(chords))
  else:
    seg = 2 * TICKS_PER_BEAT if rng.random() < (
        0.6 if tempo_bpm < 100 else 0.3) else _BAR
    n_chords = max(1, -(-n_ticks // seg))
    chords = _progression(rng, n_chords, mode)
  segments = [(k * seg, min((k + 1) * seg, n_ticks), c)
              for k, c in enumerate(chords)]
  chord_at = lambda t: chords[min(t // seg, n_chords - 1)]

  base = float(rng.uniform(55, 75))
  swing = float(rng.uniform(8, 22))
  peak_at = float(rng.uniform(0.4, 0.7))
  events: List[_Event] = []
  controls: List[Tuple[int, int, int]] = []  # (tick, cc number, value)

  if instrument == 'piano':
    menu = {_EIGHTH: 0.3, TICKS_PER_BEAT: 0.4, 3 * _EIGHTH: 0.1,
            2 * TICKS_PER_BEAT: 0.15, _SIXTEENTH: 0.05}
    rhythm = _rhythm(rng, 0, n_ticks, menu, min_last=_SIXTEENTH)
    pitches = _melody(rng, rhythm, chord_at=chord_at, tonic=tonic, scale=scale,
                      low=_PIANO_RH[0], high=_PIANO_RH[1], leap_p=0.15)
    legato = float(rng.uniform(0.8, 0.97))
    mean_pitch = float(np.mean(pitches))
    for (onset, length), p in zip(rhythm, pitches):
      v = _velocity(rng, onset, n_ticks, base=base, swing=swing,
                    peak_at=peak_at, pitch=p, mean_pitch=mean_pitch)
      end = onset + max(_SIXTEENTH // 2, int(length * legato))
      events.append(_Event(onset, p, v, end, 'melody'))
      # Thirds / sixths below the melody on some strong beats.
      if onset % TICKS_PER_BEAT == 0 and rng.random() < 0.2:
        d_below = 2 if rng.random() < 0.6 else 5
        degs = _degrees_in(_PIANO_RH[0] - 12, p - 1, tonic, scale)
        cand = [x for x in degs if _degree_pitch(x, tonic, scale) < p]
        if len(cand) >= d_below:
          hp = _degree_pitch(cand[-d_below], tonic, scale)
          if hp >= spec.low:
            events.append(_Event(onset, hp, max(1, v - 10), end, 'harmony'))
    velocity_at = lambda t: _velocity(
        rng, t, n_ticks, base=base - 12, swing=swing * 0.7, peak_at=peak_at)
    events += _accompaniment(rng, segments, tonic=tonic, scale=scale,
                             n_ticks=n_ticks, velocity_at=velocity_at)
    if rng.random() < 0.5:  # sustain pedal, changed with each chord
      for start, end, _ in segments:
        controls.append((min(start + 40, end - 1), 64, 127))
        controls.append((max(end - 30, start + 41), 64, 0))
  else:
    menu = {_EIGHTH: 0.2, TICKS_PER_BEAT: 0.35, 3 * _EIGHTH: 0.1,
            2 * TICKS_PER_BEAT: 0.2, 3 * TICKS_PER_BEAT: 0.1, _BAR: 0.05}
    pickup = int(rng.choice([0, 0, 0, _EIGHTH, TICKS_PER_BEAT]))
    pickup = pickup if 4 * pickup <= n_ticks else 0
    rhythm = _rhythm(rng, pickup, n_ticks, menu, min_last=_EIGHTH)
    pitches = _melody(rng, rhythm, chord_at=chord_at, tonic=tonic, scale=scale,
                      low=spec.low, high=spec.high, leap_p=0.2)
    mean_pitch = float(np.mean(pitches))
    for k, ((onset, length), p) in enumerate(zip(rhythm, pitches)):
      v = _velocity(rng, onset, n_ticks, base=base, swing=swing,
                    peak_at=peak_at, pitch=p, mean_pitch=mean_pitch)
      end = onset + length  # legato: the next note starts as this one ends
      last = k == len(rhythm) - 1
      if not last and length >= 2 * TICKS_PER_BEAT and rng.random() < 0.12:
        end -= _EIGHTH  # a breath / bow change between sub-phrases
      events.append(_Event(onset, p, v, end, 'melody'))
      if length >= TICKS_PER_BEAT:  # bow swell on long notes
        lo_ex, hi_ex = int(rng.integers(80, 96)), int(rng.integers(108, 124))
        steps = max(2, length // _SIXTEENTH)
        for s in range(steps):
          t = onset + s * length // steps
          shape = math.sin(math.pi * (s + 0.5) / steps)
          controls.append((t, 11, int(round(lo_ex + (hi_ex - lo_ex) * shape))))

  events.sort(key=lambda e: (e.tick, e.pitch))
  notes = tuple(
      Note(pitch=e.pitch, velocity=e.velocity,
           start_s=e.tick * sec_per_tick, end_s=e.end_tick * sec_per_tick,
           voice=e.voice)
      for e in events if e.end_tick > e.tick)
  return Phrase(
      instrument=instrument, program=spec.program, seed=int(seed),
      tempo_us=tempo_us, tonic=tonic, mode=mode,
      duration_s=n_ticks * sec_per_tick, chord_beats=seg // TICKS_PER_BEAT,
      chords=tuple(int(c) for c in chords),
      notes=notes,
      controls=tuple(Control(min(max(t, 0), n_ticks) * sec_per_tick, cc, v)
                     for t, cc, v in sorted(controls)))


def phrase_to_midi(phrase: Phrase) -> mido.MidiFile:
  """Builds a type-1 MIDI file: a conductor track and one instrument track.

  The instrument track sets its General MIDI program on channel 0, full-ish
  channel volume, centre pan and zero reverb/chorus sends (CC 91/93) so the
  rendered audio is dry.

  Args:
    phrase: from ``make_phrase``.

  Returns:
    ``mido.MidiFile`` with ``ticks_per_beat = TICKS_PER_BEAT``.
  """
  tempo_us = phrase.tempo_us
  sec_per_tick = tempo_us / 1e6 / TICKS_PER_BEAT
  to_tick = lambda s: int(round(s / sec_per_tick))
  n_ticks = to_tick(phrase.duration_s)
  mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
  conductor = mido.MidiTrack()
  conductor.append(mido.MetaMessage('set_tempo', tempo=tempo_us, time=0))
  conductor.append(mido.MetaMessage('time_signature', numerator=4,
                                    denominator=4, time=0))
  if phrase.mode in ('major', 'minor', 'harmonic_minor'):
    key = (_MAJOR_KEYS if phrase.mode == 'major' else _MINOR_KEYS)[phrase.tonic]
    conductor.append(mido.MetaMessage('key_signature', key=key, time=0))
  conductor.append(mido.MetaMessage('end_of_track', time=n_ticks))
  mid.tracks.append(conductor)

  track = mido.MidiTrack()
  track.append(mido.MetaMessage('track_name', name=phrase.instrument, time=0))
  timed = [(0, 0, mido.Message('program_change', channel=0,
                               program=phrase.program))]
  for cc, value in ((7, 100), (10, 64), (91, 0), (93, 0), (11, 100), (64, 0)):
    timed.append((0, 0, mido.Message('control_change', channel=0, control=cc,
                                     value=value)))
  # At one tick: note-offs first (legato repeats), then controls, then onsets.
  for n in phrase.notes:
    timed.append((to_tick(n.end_s), -1, mido.Message(
        'note_off', channel=0, note=n.pitch, velocity=64)))
    timed.append((to_tick(n.start_s), 1, mido.Message(
        'note_on', channel=0, note=n.pitch, velocity=n.velocity)))
  for c in phrase.controls:
    timed.append((to_tick(c.time_s), 0, mido.Message(
        'control_change', channel=0, control=c.control, value=c.value)))
  timed.sort(key=lambda x: (x[0], x[1]))
  now = 0
  for tick, _, msg in timed:
    track.append(msg.copy(time=tick - now))
    now = tick
  track.append(mido.MetaMessage('end_of_track', time=max(0, n_ticks - now)))
  mid.tracks.append(track)
  return mid


def write_midi(path: str, phrase: Phrase) -> None:
  """Writes a phrase as a MIDI file atomically (temporary file + rename).

  Args:
    path: destination ``.mid`` file; its folder is created if needed.
    phrase: from ``make_phrase``.
  """
  mid = phrase_to_midi(phrase)
  with atomic_path(path, suffix='.mid.tmp') as tmp:
    mid.save(tmp)


def write_phrase_midi(path: str, *, instrument: str, duration_s: float,
                      seed: int, tempo_bpm: Optional[float] = None) -> Phrase:
  """Draws a phrase (``make_phrase``) and writes it as a MIDI file atomically.

  Args:
    path: destination ``.mid`` file; its folder is created if needed.
    instrument: ``'piano'`` or ``'violin'``.
    duration_s: float in [0.5, 3600], seconds.
    seed: int >= 0.
    tempo_bpm: quarter notes per minute in [30, 300], or None to draw one.

  Returns:
    The ``Phrase`` that was written.

  Raises:
    ParameterError: as ``make_phrase``.
  """
  phrase = make_phrase(instrument=instrument, duration_s=duration_s, seed=seed,
                       tempo_bpm=tempo_bpm)
  write_midi(path, phrase)
  return phrase


def read_midi_notes(path: str) -> List[Note]:
  """Reads the notes of a MIDI file back (all tracks and channels merged).

  Args:
    path: a ``.mid`` file.

  Returns:
    ``Note`` list sorted by onset then pitch, times in seconds (tempo changes
    honoured); ``voice`` is ``'melody'`` for all of them.

  Raises:
    ParameterError: if the file is missing or not a MIDI file.
  """
  if not os.path.exists(path):
    raise ParameterError(f'MIDI file {path!r} does not exist')
  try:
    mid = mido.MidiFile(path)
  except Exception as e:  # mido raises OSError / EOFError / KeyError
    raise ParameterError(f'cannot read MIDI file {path!r}: {e}') from e
  now = 0.0
  sounding: Dict[Tuple[int, int], List[Tuple[float, int]]] = {}
  notes = []
  for msg in mid:  # merged tracks, msg.time in seconds
    now += msg.time
    if msg.type == 'note_on' and msg.velocity > 0:
      sounding.setdefault((msg.channel, msg.note), []).append(
          (now, msg.velocity))
    elif msg.type in ('note_on', 'note_off'):
      stack = sounding.get((msg.channel, msg.note))
      if stack:
        start, vel = stack.pop(0)
        notes.append(Note(msg.note, vel, start, now))
  return sorted(notes, key=lambda n: (n.start_s, n.pitch))
