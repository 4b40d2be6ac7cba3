"""The block exported to ONNX: route ``exported`` while ``torch.onnx.export`` traces it, equal
to the paper's form in float64, and onnxruntime equal to PyTorch's eager forward (max relative
difference <= 1e-4 in float32) for every mode x dim x sub-sampling x scope.

The full matrix exports with the legacy TorchScript exporter (several times faster here), the
batch (and time) axes dynamic; the dynamo exporter (PyTorch's default) exports every mode of a
sub-sampled 3D block with dynamic batch and time axes.
"""
import io
import warnings

import pytest
import torch
import torch.nn as nn

from nlnet.ops import MODES, NonLocalBlock, export_onnx
from nlnet.ops.exported import exported_forward, merged_concatenation
from nlnet.ops.kernels.concatenation import concatenation_attention
from nlnet.ops.onnx_export import OnnxMismatchError, relative_difference, run_onnxruntime
from nlnet.ops.reference import reference_forward

# (dim, input size, scope, sub_sample, pool_kernel, pool_position): odd sizes so that
# pooling floors, every scope and both pooling positions.
LAYOUTS = [
    (1, (7, ), 'spacetime', False, None, 'before'),
    (1, (7, ), 'spacetime', True, None, 'after'),
    (2, (5, 6), 'spacetime', False, None, 'before'),
    (2, (5, 6), 'spacetime', True, None, 'before'),
    (2, (5, 6), 'spacetime', True, None, 'after'),
    (3, (3, 5, 4), 'spacetime', False, None, 'before'),
    (3, (3, 5, 4), 'spacetime', True, None, 'before'),
    (3, (3, 5, 4), 'space', False, None, 'before'),
    (3, (3, 5, 4), 'space', True, (1, 2, 2), 'after'),
    (3, (5, 3, 4), 'time', False, None, 'before'),
    (3, (5, 3, 4), 'time', True, (2, 1, 1), 'before'),
]
CHANNELS = 8


def _block(mode, dim, scope, sub_sample, pool_kernel, pool_position):
    """A block whose residual branch matters: random weights, BN with random statistics."""
    block = NonLocalBlock(CHANNELS, dim=dim, mode=mode, scope=scope, sub_sample=sub_sample,
                          pool_kernel=pool_kernel, pool_position=pool_position, zero_init=False,
                          init_std=0.3)
    bn = block.conv_out.norm
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_(1, 0.2)
        bn.bias.normal_(0, 0.1)
    return block.eval()


class _EveryMode(nn.Module):
    """One block per mode on the same input: one export checks all four outputs."""

    def __init__(self, layout):
        super().__init__()
        self.blocks = nn.ModuleList(_block(mode, *layout) for mode in MODES)
        self.eval()

    def forward(self, x):
        return tuple(block(x) for block in self.blocks)


def _assert_every_mode_matches(model, x, onnx_model):
    with torch.no_grad():
        expected = model(x)
    for mode, got, want in zip(MODES, run_onnxruntime(onnx_model, x), expected):
        assert relative_difference(got, want) <= 1e-4, mode
        # The branch is a sizeable part of z, so a wrong branch cannot hide under x.
        assert (want - x).abs().max() > 0.05 * x.abs().max(), mode


@pytest.mark.parametrize('layout', LAYOUTS, ids=lambda layout: '-'.join(map(str, layout)))
def test_onnxruntime_equals_pytorch_for_every_mode(layout):
    torch.manual_seed(0)
    dim, size = layout[:2]
    model = _EveryMode(layout[:1] + layout[2:])
    x = torch.randn(2, CHANNELS, *size)
    video = dim == 3
    result = export_onnx(model, x, exporter='torchscript', verbose=False,
                         dynamic_axes={0: 'batch', 2: 'time'} if video else {0: 'batch'})
    assert result.max_relative_difference <= 1e-4
    _assert_every_mode_matches(model, x, result.model)
    # Another batch (and clip length) than traced.
    other = torch.randn(3, CHANNELS, size[0] + 2 if video else size[0], *size[1:])
    _assert_every_mode_matches(model, other, result.model)


def test_dynamo_export_keeps_batch_and_time_dynamic(tmp_path, capsys):
    torch.manual_seed(0)
    model = _EveryMode((3, 'spacetime', True, None, 'before'))
    out_file = tmp_path / 'blocks.onnx'
    result = export_onnx(model, torch.randn(2, CHANNELS, 4, 5, 4), out_file,
                         dynamic_axes={0: 'batch', 2: 'time'})
    assert result.path == str(out_file) and out_file.stat().st_size > 0
    assert 'max relative difference onnxruntime vs PyTorch' in capsys.readouterr().out
    # Another batch and clip length than exported, read back from the file.
    _assert_every_mode_matches(model, torch.randn(3, CHANNELS, 6, 5, 4), out_file)


class _BranchOnTime(nn.Module):

    def forward(self, x):
        return 2 * x if x.shape[2] == 4 else x


def test_a_dynamic_axis_the_network_fixes_is_an_error(tmp_path):
    # The dynamo exporter fixes such an axis without a word (NL-I3D's time at 8 frames,
    # 1 after its strides, was one).
    out_file = tmp_path / 'fixed.onnx'
    with pytest.raises(ValueError, match=r"the exporter fixed the dynamic axes \{2: 'time'\} "
                       r"to the example's sizes \[4\]"):
        export_onnx(_BranchOnTime(), torch.randn(2, 3, 4), out_file,
                    dynamic_axes={0: 'batch', 2: 'time'})
    assert not out_file.exists()


class _RouteRecorder(nn.Module):

    def __init__(self, block):
        super().__init__()
        self.block = block
        self.routes = []

    def forward(self, x):
        self.routes.append(self.block.route(x))
        return self.block(x)


@pytest.mark.parametrize('impl,route', [('auto', 'exported'), ('reference', 'reference')])
def test_route_while_a_user_exports_with_torch_onnx_export(impl, route):
    # As a user calls it: autograd on, parameters requiring grad.
    torch.manual_seed(0)
    block = _block('concatenation', 2, 'spacetime', True, None, 'before')
    block.impl = impl
    recorder = _RouteRecorder(block).eval()  # the export restores this mode in every child
    x = torch.randn(2, CHANNELS, 5, 6)
    assert block.route(x) == ('reference' if impl == 'reference' else 'separable')
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the legacy exporter's deprecation
        torch.onnx.export(recorder, (x, ), buffer, dynamo=False)
    assert recorder.routes == [route]
    got, = run_onnxruntime(_proto(buffer), x)
    with torch.no_grad():
        assert relative_difference(got, block(x)) <= 1e-4


def _proto(buffer):
    import onnx
    return onnx.load_from_string(buffer.getvalue())


@pytest.mark.parametrize('layout', LAYOUTS, ids=lambda layout: '-'.join(map(str, layout)))
def test_exported_route_equals_the_papers_form_in_float64(layout):
    torch.manual_seed(0)
    x = torch.randn(2, CHANNELS, *layout[1], dtype=torch.float64)
    for mode in MODES:
        block = _block(mode, layout[0], *layout[2:]).double()
        with torch.no_grad():
            torch.testing.assert_close(exported_forward(block, x), reference_forward(block, x),
                                       rtol=1e-10, atol=1e-12, msg=mode)


def test_merged_concatenation_equals_the_explicit_form_with_ties():
    # ReLU(a_i + b_j) v_j / M with the N x M matrix formed; some b_j = -a_i exactly.
    torch.manual_seed(0)
    a = torch.randn(3, 7, dtype=torch.float64)
    b = torch.randn(3, 9, dtype=torch.float64)
    b[:, :4] = -a[:, :4]
    value = torch.randn(3, 9, 5, dtype=torch.float64)
    explicit = torch.relu(a[:, :, None] + b[:, None, :]) @ value / 9
    torch.testing.assert_close(merged_concatenation(a, b, value), explicit, rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(merged_concatenation(a, b, value),
                               concatenation_attention(a, b, value), rtol=1e-12, atol=1e-12)


def test_a_difference_above_the_tolerance_is_an_error():
    torch.manual_seed(0)
    block = _block('gaussian', 2, 'spacetime', False, None, 'before')
    with pytest.raises(OnnxMismatchError, match=r'differs from PyTorch by .* above the '
                       r'tolerance 0e\+00'):
        export_onnx(block, torch.randn(2, CHANNELS, 9, 9), exporter='torchscript', tolerance=0.0,
                    verbose=False)


@pytest.mark.parametrize('kwargs,message', [
    (dict(exporter='tracing'), r"exporter must be one of \('dynamo', 'torchscript'\)"),
    (dict(dynamic_axes={4: 'width'}), r'dynamic_axes must map axes of the 4D example'),
    (dict(dynamic_axes={0: 'batch size'}), r'dynamic_axes must map axes'),
    (dict(dynamic_axes={0: 'batch'}, example=torch.randn(1, CHANNELS, 4, 4)),
     r'dynamic_axes \[0\]: the example has size 1 there'),
])
def test_bad_arguments_are_named(kwargs, message):
    block = _block('dot_product', 2, 'spacetime', False, None, 'before')
    example = kwargs.pop('example', torch.randn(2, CHANNELS, 4, 4))
    with pytest.raises(ValueError, match=message):
        export_onnx(block, example, **kwargs)
