"""Installs the generative-prior source separation toolkit.

The pins live in requirements/constraints.txt (a set measured to work together:
TF 2.16.2 is the newest TensorFlow that tensorflow-io 0.37.1 loads in, and it
needs numpy < 2). Install with
``pip install -c requirements/constraints.txt -e .[dev]`` (what ``make`` does).
"""

import setuptools

SCRIPTS = {
    # console script name -> top-level module with a `run()` entry point
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
}

setuptools.setup(
    name='basis-sep',
    version='0.1.0',
    description=('Audio source separation with deep generative priors '
                 '(BASIS with NCSN, Glow and RealNVP priors) in TensorFlow'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9,<3.12',
    packages=setuptools.find_packages(include=[
        'common', 'common.*', 'commandline', 'commandline.*', 'datagen', 'datagen.*',
        'pipeline', 'pipeline.*', 'training', 'training.*', 'ncsn', 'ncsn.*',
        'basis', 'basis.*', 'flow_models', 'flow_models.*', 'evaluation',
        'evaluation.*', 'inversion', 'inversion.*', 'baselines', 'baselines.*',
        'experiments', 'experiments.*', 'assets']),
    py_modules=sorted(set(SCRIPTS.values())),
    # The shipped priors, inversion networks, separator models and demo clips
    # (common.assets finds them through importlib.resources).
    package_data={'assets': ['demo/*', 'priors/*/*', 'priors/*/*/*', 'inversion/*/*',
                             'separators/*/*/*']},
    install_requires=[
        'tensorflow==2.16.2',
        'tensorflow-probability==0.24.0',
        'tf-keras==2.16.0',
        'tensorflow-io==0.37.1',
        'numpy>=1.23,<2',
        'scipy',
        'librosa>=0.10',
        'soundfile',
        'absl-py',
        'mido',
        'matplotlib',
        'tqdm',
        'mlxtend<0.24',
    ],
    extras_require={
        'gpu': ['tensorflow[and-cuda]==2.16.2'],
        # Data generation from real pieces (make data): music21 ships its corpus of
        # 3,194 works inside the package, nothing is downloaded.
        'data': ['music21'],
        # The tests cover data generation too.
        'dev': ['pytest', 'music21'],
        # PESQ / STOI in mel_to_wav and the inversion study (pesq compiles C code).
        'quality': ['pesq', 'pystoi'],
    },
    entry_points={
        'console_scripts': [
            f'{name}={module}:run' for name, module in SCRIPTS.items()],
    },
)
