"""The console scripts: installed command name -> top-level script module.

Read by setup.py (the modules to install) and by :mod:`commandline.startup`
(the launcher every entry point goes through); :func:`source_digest` tells
whether the flag index was written for these sources. Standard library only.
"""

import hashlib
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPTS = {
    'wav_to_spec': 'wav_to_spec',
    'train_ncsn': 'train_ncsn',
    'train_glow': 'train_glow',
    'run_basis_sep': 'run_basis_sep',
    'render_instruments': 'render_instruments',
    'render_music': 'render_music',
    'make_voice_noise': 'make_voice_noise',
    'basis_demo': 'demo',
    'separate_audio': 'separate_audio',
    'mel_to_wav': 'mel_to_wav',
    'melspec_inversion_basis': 'melspec_inversion_basis',
    'oracle_systems': 'oracle_systems',
    'evaluate_separation': 'evaluate_separation',
    'evaluate_audio_priors': 'evaluate_audio_priors',
    'prior_quality': 'prior_quality',
    'make_speech_noise': 'make_speech_noise',
    'inversion_study': 'inversion_study',
    'basis_calls_study': 'basis_calls_study',
    'train_inversion_net': 'train_inversion_net',
    'mel_inversion_table': 'mel_inversion_table',
    'select_priors': 'select_priors',
    'evaluate_generalization': 'evaluate_generalization',
    'train_separator': 'train_separator',
    'train_vocoder': 'train_vocoder',
}

# The project's packages (setup.py installs them beside the script modules).
PACKAGES = ('common', 'commandline', 'datagen', 'pipeline', 'training', 'ncsn', 'basis',
            'flow_models', 'evaluation', 'inversion', 'baselines', 'synthesis', 'experiments')


def source_digest(root: str = ROOT) -> str:
  """sha256 of the project's ``.py`` sources under ``root`` (packages and script modules)."""
  h = hashlib.sha256()
  paths = [f'{m}.py' for m in sorted(set(SCRIPTS.values()))]
  for package in PACKAGES:
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
      dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
      paths += [os.path.relpath(os.path.join(dirpath, f), root)
                for f in sorted(filenames) if f.endswith('.py')]
  for rel in paths:
    try:
      with open(os.path.join(root, rel), 'rb') as f:
        data = f.read()
    except OSError:
      data = b'<missing>'
    h.update(rel.replace(os.sep, '/').encode() + b'\0' + data + b'\0')
  return h.hexdigest()
