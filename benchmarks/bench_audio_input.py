"""Input throughput: mel patches from TFRecord shards vs audio streamed by tensorflow-io.

Both paths give the same patches (tests/test_audio_dataset.py); this times
how fast each feeds a training loop: batches of ``--batch_size`` shuffled,
repeated patches, after a warm-up, in alternating rounds.

  python benchmarks/bench_audio_input.py --tfrecords=out/data/tfr/piano/train \
      --audio=out/data/render/train/piano
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from common import compute
from pipeline import datasets

FLAGS = flags.FLAGS
flags.DEFINE_string('tfrecords', 'out/data/tfr/piano/train', 'TFRecord patch folder.')
flags.DEFINE_string('audio', 'out/data/render/train/piano', 'Folder of the same audio.')
flags.DEFINE_integer('batch_size', 32, 'Patches per batch.')
flags.DEFINE_integer('batches', 40, 'Batches per timed round.')
flags.DEFINE_integer('rounds', 3, 'Timed rounds per path; medians are reported.')


def main(argv):
  del argv
  paths = {
      'TFRecord shards (wav_to_spec.py)': ('melspec', FLAGS.tfrecords),
      'audio files, tensorflow-io decode + MelTransform in tf.data': ('audio', FLAGS.audio),
  }
  iters = {}
  for label, (name, folder) in paths.items():
    ds, _ = datasets.get_dataset(name, 'train', batch_size=FLAGS.batch_size, data_dir=folder,
                                 repeat=True, drop_remainder=True, seed=0)
    iters[label] = iter(ds)
    for _ in range(5):
      next(iters[label])                 # warm-up: open files, fill buffers
  times = {label: [] for label in paths}
  for _ in range(FLAGS.rounds):
    for label, it in iters.items():
      t0 = time.perf_counter()
      for _ in range(FLAGS.batches):
        next(it).numpy()
      times[label].append(time.perf_counter() - t0)
  print(f'\n{compute.cpu_description()}; load average {os.getloadavg()[0]:.1f}; batch '
        f'{FLAGS.batch_size}, {FLAGS.batches} batches per round, medians of {FLAGS.rounds}\n')
  print('| input path | patches/s | ms per batch |')
  print('|---|---:|---:|')
  for label in paths:
    t = statistics.median(times[label])
    print(f'| {label} | {FLAGS.batch_size * FLAGS.batches / t:,.0f} | '
          f'{1e3 * t / FLAGS.batches:.1f} |')


if __name__ == '__main__':
  app.run(main)
