"""experiments.progress: the per-level report of a separation batch, on and off a terminal."""

import contextlib
import io

from absl.testing import absltest

from experiments.progress import LevelProgress, format_eta


class FormatEtaTest(absltest.TestCase):

  def test_minutes_and_hours(self):
    self.assertEqual(format_eta(187), '3m07s')
    self.assertEqual(format_eta(3900), '1h05m')
    self.assertEqual(format_eta(0.4), '0m00s')


class LevelProgressTest(absltest.TestCase):

  def _report(self, tty, sigmas=(1.0, 0.1), batches=(0, 1)):
    lines, err = [], io.StringIO()
    progress = LevelProgress(lines.append, len(sigmas), len(batches), tty=tty)
    with contextlib.redirect_stderr(err):
      for batch in batches:
        progress.start(batch)
        for level, sigma in enumerate(sigmas):
          progress(level, sigma)
      progress.close()
    return lines, err.getvalue()

  def test_off_a_terminal_one_log_line_per_level_and_nothing_on_stderr(self):
    lines, err = self._report(tty=False)
    self.assertEqual(err, '')
    self.assertLen(lines, 4)
    self.assertTrue(lines[0].startswith('  batch 1/2: level 1/2 (sigma 1), 0m00s in'), lines[0])
    self.assertTrue(lines[3].startswith('  batch 2/2: level 2/2 (sigma 0.1)'), lines[3])
    self.assertTrue(lines[3].endswith('batch ETA 0m00s'), lines[3])

  def test_on_a_terminal_a_tqdm_bar_per_batch_and_no_log_lines(self):
    lines, err = self._report(tty=True)
    self.assertEqual(lines, [])
    # tqdm redraws with carriage returns; the last drawing of each batch's bar is complete.
    final = [line.split('\r')[-1] for line in err.split('\n') if line.strip()]
    self.assertLen(final, 2)
    for batch, line in enumerate(final, start=1):
      self.assertIn(f'batch {batch}/2: 100%', line)
      self.assertIn('2/2', line)
      self.assertIn('sigma 0.1', line)

  def test_a_resumed_batch_draws_no_bar(self):
    # Batch 1 comes from the resume cache: start() but no finished level.
    progress, err = LevelProgress(print, 2, 2, tty=True), io.StringIO()
    with contextlib.redirect_stderr(err):
      progress.start(0)
      progress.start(1)
      progress(0, 1.0)
      progress(1, 0.1)
    self.assertNotIn('batch 1/2', err.getvalue())
    self.assertIn('batch 2/2: 100%', err.getvalue())


if __name__ == '__main__':
  absltest.main()
