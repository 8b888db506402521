"""common.compute: which precision each kind of machine gets, and why."""

from unittest import mock

import tensorflow as tf
from absl.testing import parameterized

from common import compute
from common.errors import ParameterError

ZEN3 = frozenset('fpu sse2 avx avx2 fma'.split())
ZEN5 = frozenset('avx2 avx512f avx512_bf16 avx512_vnni'.split())
XEON_AMX = frozenset('avx2 avx512f amx_bf16 amx_tile amx_int8'.split())


class ChoosePrecisionTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((ZEN3, False, True, 'float32'), (ZEN5, False, True, 'bfloat16'),
                            (XEON_AMX, False, True, 'bfloat16'), (ZEN3, True, False, 'bfloat16'),
                            (ZEN3, False, False, 'float32'), (XEON_AMX, False, False, 'float32'))
  def test_auto_picks_bfloat16_only_with_native_bf16_and_onednn_or_a_gpu(self, flags, gpu,
                                                                          onednn, want):
    dtype, reason = compute.choose_precision('auto', gpu=gpu, flags=flags, onednn=onednn)
    self.assertEqual(dtype, want)
    self.assertStartsWith(reason, 'auto: ')

  def test_auto_without_onednn_says_why_not_bfloat16(self):
    _, reason = compute.choose_precision('auto', gpu=False, flags=ZEN5, onednn=False)
    self.assertIn('oneDNN is off', reason)

  def test_auto_reason_names_the_cpu_flag(self):
    _, reason = compute.choose_precision('auto', gpu=False, flags=XEON_AMX, onednn=True)
    self.assertIn('amx_bf16', reason)
    _, reason = compute.choose_precision('auto', gpu=False, flags=ZEN3)
    self.assertIn('no native bfloat16', reason)

  @parameterized.parameters('float32', 'bfloat16')
  def test_explicit_precision_is_kept(self, name):
    for flags in (ZEN3, ZEN5):
      self.assertEqual(compute.choose_precision(name, gpu=False, flags=flags)[0], name)

  def test_bfloat16_on_a_cpu_without_it_warns_in_the_reason(self):
    _, reason = compute.choose_precision('bfloat16', gpu=False, flags=ZEN3)
    self.assertIn('slower than float32', reason)

  def test_bfloat16_without_onednn_warns_in_the_reason(self):
    _, reason = compute.choose_precision('bfloat16', gpu=False, flags=ZEN5, onednn=False)
    self.assertIn('emulate bfloat16', reason)
    _, reason = compute.choose_precision('bfloat16', gpu=False, flags=ZEN5, onednn=True)
    self.assertEqual(reason, '--precision=bfloat16 asked for')

  def test_unknown_precision_raises_naming_it(self):
    with self.assertRaisesRegex(ParameterError, "'fp16'"):
      compute.choose_precision('fp16')

  @mock.patch.object(compute, '_SAID', set())   # other tests may have said it already
  def test_resolve_says_once_and_maps_the_deprecated_flag(self):
    lines = []
    self.assertEqual(compute.resolve_precision('float32', log=lines.append), 'float32')
    compute.resolve_precision('float32', log=lines.append)
    self.assertLen(lines, 1)
    self.assertIn('precision: float32', lines[0])
    got = compute.resolve_precision('auto', bfloat16=False, log=lines.append)
    self.assertEqual(got, 'float32')
    self.assertIn('deprecated --nobfloat16', lines[-1])

  def test_cpu_flags_parse_a_cpuinfo_file(self):
    path = self.create_tempfile(content='processor\t: 0\nmodel name\t: Test CPU 9000\n'
                                'flags\t\t: fpu avx2 avx512_bf16\n').full_path
    self.assertEqual(compute.cpu_flags(path), frozenset({'fpu', 'avx2', 'avx512_bf16'}))
    self.assertEqual(compute.cpu_model(path), 'Test CPU 9000')
    self.assertEqual(compute.cpu_flags(path + '.missing'), frozenset())

  def test_description_names_model_and_onednn(self):
    desc = compute.cpu_description()
    self.assertIn(compute.cpu_model(), desc)
    self.assertIn('oneDNN ' + ('on' if compute.onednn_enabled() else 'off'), desc)


if __name__ == '__main__':
  tf.test.main()
