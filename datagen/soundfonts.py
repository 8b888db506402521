"""The General MIDI soundfonts Debian ships, and which split may use which.

Timbre is the axis the priors must generalise over, so the multi-soundfont
set (``datagen.music_set``) renders training clips with some soundfonts and
keeps others unseen for validation and test (``DEFAULT_SPLIT_SOUNDFONTS``):

* train: FluidR3_GM (``fluid-soundfont-gm``; what every earlier prior saw),
  FluidR3Mono_GM (``fluidr3mono-gm-soundfont``, MuseScore's mono re-edit of
  FluidR3: close to it, log-spectral distance 2.7 dB piano / 2.8 dB violin on
  one phrase) and TimGM6mb (``timgm6mb-soundfont``, a small bank: 17 dB /
  9.4 dB from FluidR3);
* validation: MuseScore_General (``musescore-general-soundfont``, HQ; 21 dB /
  3.7 dB from FluidR3), never used for training, so checkpoints and defaults
  are chosen on unseen timbre;
* test: MuseScore_General and the csound GM bank (``csound-soundfont``,
  sf_GMbank: its piano is unseen, 6.2 dB from TimGM6mb, but its violin is
  nearly TimGM6mb's, 1.0 dB).

FluidR3_GS (``fluid-soundfont-gs``) is not used: it holds the GS variation
banks only and renders silence for GM programs 0 and 40 (measured).
"""

import dataclasses
import os
from typing import Dict, Tuple

from common.errors import ParameterError
from datagen import render


@dataclasses.dataclass(frozen=True)
class Soundfont:
  """A soundfont the data sets may use.

  Attributes:
    name: short name used in flags and manifests.
    path: where the Debian package installs it.
    package: the Debian package.
    licence: its licence (from ``/usr/share/doc/<package>/copyright``).
  """
  name: str
  path: str
  package: str
  licence: str


SOUNDFONTS: Dict[str, Soundfont] = {s.name: s for s in (
    Soundfont('fluidr3_gm', '/usr/share/sounds/sf2/FluidR3_GM.sf2', 'fluid-soundfont-gm', 'MIT'),
    Soundfont('fluidr3mono_gm', '/usr/share/sounds/sf3/FluidR3Mono_GM.sf3',
              'fluidr3mono-gm-soundfont', 'MIT'),
    Soundfont('timgm6mb', '/usr/share/sounds/sf2/TimGM6mb.sf2', 'timgm6mb-soundfont', 'GPL-2'),
    Soundfont('musescore_general', '/usr/share/sounds/sf3/MuseScore_General.sf3',
              'musescore-general-soundfont', 'MIT'),
    Soundfont('csound_gmbank', '/usr/share/sounds/sf2/sf_GMbank.sf2', 'csound-soundfont',
              'LGPL-2.1+'),
)}
TRAIN_SOUNDFONTS = ('fluidr3_gm', 'fluidr3mono_gm', 'timgm6mb')
VALIDATION_SOUNDFONT = 'musescore_general'
TEST_SOUNDFONTS = ('musescore_general', 'csound_gmbank')
DEFAULT_SPLIT_SOUNDFONTS: Dict[str, Tuple[str, ...]] = {
    'train': TRAIN_SOUNDFONTS, 'validation': (VALIDATION_SOUNDFONT,), 'test': TEST_SOUNDFONTS}
PACKAGES = tuple(s.package for s in SOUNDFONTS.values())


def soundfont_path(name: str) -> str:
  """The installed file of soundfont ``name`` (a key of ``SOUNDFONTS``, or a path).

  Raises:
    ParameterError: for an unknown name or a file that is not a soundfont.
    render.RenderDependencyError: if the package is not installed.
  """
  if name in SOUNDFONTS:
    sf = SOUNDFONTS[name]
    if not os.path.isfile(sf.path):
      raise render.RenderDependencyError(
          f'soundfont {name} ({sf.path}) is not installed; run `make system-render-deps` or '
          f'`sudo apt-get install {sf.package}`')
    return render.check_sf2(os.path.realpath(sf.path), f'soundfont {name}')
  if os.path.sep in name or name.endswith(('.sf2', '.sf3')):
    return render.find_soundfont(name)
  raise ParameterError(f'unknown soundfont {name!r}; choose from {sorted(SOUNDFONTS)} or pass '
                       f'a path to an .sf2/.sf3 file')
