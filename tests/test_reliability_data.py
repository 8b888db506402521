"""Damaged TFRecord shards name the file and the record; wav_to_spec warns or refuses
bad audio; a killed writer's staging folder is cleaned on the next run."""

import glob
import os

import numpy as np
import soundfile as sf
import tensorflow as tf

from pipeline import spec_folder
from pipeline import tfrecords
from pipeline.config import FeatureConfig
from common.errors import ParameterError

_SHAPE = (4, 3, 1)


class DamagedShardTest(tf.test.TestCase):

  def _write(self, n=5):
    out = os.path.join(self.create_tempdir().full_path, 'set')
    patches = np.random.default_rng(0).uniform(size=(n,) + _SHAPE).astype(np.float32)
    tfrecords.write_patches(patches, out)
    shard, = glob.glob(os.path.join(out, '*.tfrecord*'))
    return out, shard

  def test_intact_set_reads(self):
    out, _ = self._write()
    self.assertLen(list(tfrecords.patch_dataset(out, split='all', shuffle_buffer=0)), 5)

  def test_truncated_shard_names_file_and_record(self):
    out, shard = self._write()
    size = os.path.getsize(shard)
    with open(shard, 'r+b') as f:
      f.truncate(size - size // 5 - 3)     # cut inside record 3 of 5
    with self.assertRaisesRegex(ParameterError, rf'{os.path.basename(shard)}.* truncated at '
                                'record 3 of 5'):
      tfrecords.patch_dataset(out, split='all')

  def test_flipped_header_byte_names_the_record(self):
    out, shard = self._write()
    record = os.path.getsize(shard) // 5
    with open(shard, 'r+b') as f:
      f.seek(2 * record)                   # the length field of record 2
      f.write(b'\xff')
    with self.assertRaisesRegex(ParameterError, r'record 2 has a damaged header'):
      tfrecords.patch_dataset(out, split='all')

  def test_record_of_another_size_after_the_first_is_named(self):
    out, shard = self._write(n=2)
    good = open(shard, 'rb').read()
    record = len(good) // 2
    example = tf.train.Example(features=tf.train.Features(feature={
        'data': tf.train.Feature(float_list=tf.train.FloatList(value=[0.0] * 10))}))
    path = shard + '.tmp'
    with tf.io.TFRecordWriter(path) as w:
      w.write(example.SerializeToString())
    bad = open(path, 'rb').read()
    os.remove(path)
    with open(shard, 'wb') as f:
      f.write(good[:record] + bad + b'\0' * (record - len(bad)))
    with self.assertRaisesRegex(ParameterError, r'record 1 holds \d+ bytes, the first'):
      tfrecords.patch_dataset(out, split='all')

  def _flip_payload_byte(self, shard, n, index):
    """Flips one byte in the middle of record ``index``'s payload (of ``n``)."""
    record = os.path.getsize(shard) // n
    at = index * record + 12 + (record - 16) // 2
    with open(shard, 'r+b') as f:
      f.seek(at)
      byte = f.read(1)
      f.seek(at)
      f.write(bytes([byte[0] ^ 0xFF]))

  def test_flipped_payload_byte_names_file_and_record(self):
    out, shard = self._write()
    self._flip_payload_byte(shard, 5, 3)
    ds = tfrecords.patch_dataset(out, split='all', shuffle_buffer=0)  # headers intact
    with self.assertRaises(tf.errors.DataLossError):   # what tf.data gives on its own
      list(ds)
    with self.assertRaisesRegex(ParameterError, rf"shard '.*{os.path.basename(shard)}': "
                                r'record 3 of 5 is damaged \(tf\.data: corrupted record'):
      with tfrecords.naming_damaged_records():
        list(ds)

  def test_damaged_record_is_found_past_the_first_scan_batch(self):
    out, shard = self._write(n=600)     # the scan reads 256 records at a time
    self._flip_payload_byte(shard, 600, 517)
    path, index, detail = tfrecords.find_damaged_record([shard])
    self.assertEqual((path, index), (shard, 517))
    self.assertIn('corrupted record', detail)
    self.assertIsNone(tfrecords.find_damaged_record([self._write()[1]]))

  def test_other_data_loss_is_left_alone(self):
    # A DataLossError that no shard explains is re-raised as it was.
    _, shard = self._write()
    with self.assertRaisesRegex(tf.errors.DataLossError, 'not from a shard'):
      with tfrecords.naming_damaged_records([shard]):
        raise tf.errors.DataLossError(None, None, 'not from a shard')


def _tone(seconds, sample_rate, amplitude=0.5):
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


class WavToSpecTest(tf.test.TestCase):

  def _folder(self, **files):
    folder = self.create_tempdir().full_path
    for name, (y, sr, subtype) in files.items():
      sf.write(os.path.join(folder, name + '.wav'), y, sr, subtype=subtype)
    return folder

  def _run(self, folder, **kw):
    out = os.path.join(self.create_tempdir().full_path, 'tfr')
    lines = []
    meta = spec_folder.folder_to_patches(folder, out, progress=False, log=lines.append, **kw)
    return meta, lines, out

  def test_truncated_wav_is_refused_by_name(self):
    folder = self._folder(cut=(_tone(4.5, 16000), 16000, 'PCM_16'))
    path = os.path.join(folder, 'cut.wav')
    with open(path, 'r+b') as f:
      f.truncate(os.path.getsize(path) // 2)
    with self.assertRaisesRegex(ParameterError, r'cut\.wav.* is truncated: its header '
                                r'declares 144000 bytes'):
      self._run(folder)

  def test_upsampled_source_warns_and_records_its_rate(self):
    folder = self._folder(low=(_tone(4.5, 8000), 8000, 'PCM_16'))
    meta, lines, _ = self._run(folder)
    entry, = meta['provenance']['files']
    self.assertEqual(entry['source_sample_rate'], 8000)
    self.assertLen(lines, 1)
    self.assertIn('low.wav is at 8000 Hz, upsampled to 16000 Hz', lines[0])
    self.assertEqual(meta['provenance']['warnings'], [lines[0][len('warning: '):]])

  def test_float_peak_above_one_warns(self):
    folder = self._folder(loud=(_tone(4.5, 16000, amplitude=15.0), 16000, 'FLOAT'))
    meta, lines, _ = self._run(folder)
    self.assertAlmostEqual(meta['provenance']['files'][0]['peak'], 15.0, places=2)
    self.assertTrue(any('peak 15 > 1' in l for l in lines), lines)

  def test_clean_file_gives_no_warning(self):
    meta, lines, _ = self._run(self._folder(ok=(_tone(4.5, 16000), 16000, 'PCM_16')))
    self.assertEqual(lines, [])
    self.assertEqual(meta['provenance']['files'][0]['source_sample_rate'], 16000)

  def test_empty_mel_bands_are_refused_with_their_count(self):
    folder = self._folder(ok=(_tone(4.5, 16000), 16000, 'PCM_16'))
    with self.assertRaisesRegex(ParameterError, r'--n_mels=1500 with --n_fft=2048 .*leaves '
                                '338 of 1500 mel bands empty'):
      self._run(folder, features=FeatureConfig(n_mels=1500))

  def test_orphaned_staging_folder_is_removed_on_the_next_run(self):
    folder = self._folder(ok=(_tone(4.5, 16000), 16000, 'PCM_16'))
    out = os.path.join(self.create_tempdir().full_path, 'tfr')
    orphan = os.path.join(out, '.staging-0123abcd')     # a killed run's (no live owner)
    os.makedirs(orphan)
    with open(os.path.join(orphan, 'shard-00000.tfrecord'), 'wb') as f:
      f.write(b'x' * 100)
    alive = os.path.join(out, '.staging-live')          # a running writer's: kept
    os.makedirs(alive)
    with open(os.path.join(alive, 'owner'), 'w') as f:
      import socket  # pylint: disable=g-import-not-at-top
      f.write(f'{socket.gethostname()} {os.getpid()}')
    lines = []
    spec_folder.folder_to_patches(folder, out, progress=False, log=lines.append)
    self.assertFalse(os.path.exists(orphan))
    self.assertTrue(os.path.exists(alive))
    self.assertEqual(sorted(n for n in os.listdir(out) if n.startswith('.staging')),
                     ['.staging-live'])


class SoundfontTest(tf.test.TestCase):

  def test_text_file_as_soundfont_is_refused_by_name(self):
    from datagen import render  # pylint: disable=g-import-not-at-top
    text = self.create_tempfile('notes.sf2', content='just some text\n').full_path
    with self.assertRaisesRegex(ParameterError, r"soundfont '.*notes\.sf2' is not a "
                                'SoundFont 2 file'):
      render.find_soundfont(text)
    good = self.create_tempfile('ok.sf2', content='RIFF\x10\0\0\0sfbkLIST').full_path
    self.assertEqual(render.find_soundfont(good), good)


if __name__ == '__main__':
  tf.test.main()
