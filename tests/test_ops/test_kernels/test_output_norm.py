"""W_z + BatchNorm on batch statistics as one Function: nn.BatchNorm's values, gradients and
running statistics, without keeping W_z's output."""
import copy

import pytest
import torch
import torch.nn as nn

from nlnet.ops.kernels.output_norm import output_batch_norm
from nlnet.ops.non_local import NonLocalBlock


def _case(batch, positions, with_bias, affine, momentum, dtype=torch.float64):
    torch.manual_seed(0)
    y = (3 + torch.randn(batch, positions, 4, dtype=dtype)).requires_grad_()
    conv = nn.Conv1d(4, 6, 1, bias=with_bias).to(dtype)
    norm = nn.BatchNorm1d(6, affine=affine, momentum=momentum).to(dtype)
    if affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-1, 1)
    return y, conv, norm


def _leaves(y, conv, norm):
    return [y] + list(conv.parameters()) + list(norm.parameters())


@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('affine', [True, False])
@pytest.mark.parametrize('momentum', [0.1, None])
def test_matches_conv_then_batch_norm(batch, with_bias, affine, momentum):
    y, conv, norm = _case(batch, 7, with_bias, affine, momentum)
    ref_conv, ref_norm = copy.deepcopy(conv), copy.deepcopy(norm)
    for _ in range(2):  # the running statistics over two steps (momentum=None averages)
        out = output_batch_norm(y, conv.weight, conv.bias, norm, (batch, 6, 7))
        reference = ref_norm(ref_conv(y.transpose(1, 2)))
        torch.testing.assert_close(out, reference, rtol=1e-10, atol=1e-10)
        grad_out = torch.randn_like(reference)
        got = torch.autograd.grad(out, _leaves(y, conv, norm), grad_out)
        want = torch.autograd.grad(reference, _leaves(y, ref_conv, ref_norm), grad_out)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(norm.running_mean, ref_norm.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(norm.running_var, ref_norm.running_var, rtol=1e-12, atol=1e-12)
    assert norm.num_batches_tracked.item() == ref_norm.num_batches_tracked.item() == 2


def test_without_running_statistics_normalises_by_the_batch_and_tracks_nothing():
    y, conv, _ = _case(2, 5, True, True, 0.1)
    norm = nn.BatchNorm1d(6, track_running_stats=False).double().eval()
    out = output_batch_norm(y, conv.weight, conv.bias, norm, (2, 6, 5))
    torch.testing.assert_close(out, norm(conv(y.transpose(1, 2))), rtol=1e-10, atol=1e-10)
    assert norm.running_mean is None and norm.num_batches_tracked is None


def test_keeps_the_input_not_the_convolution_output():
    y, conv, norm = _case(2, 50, False, True, 0.1, torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        output_batch_norm(y, conv.weight, conv.bias, norm, (2, 6, 50))
    assert max(t.numel() for t in saved) == y.numel()  # y (2 x 50 x 4) < output (2 x 6 x 50)


def test_one_value_per_channel_fails_as_batch_norm_does():
    y, conv, norm = _case(1, 1, False, True, 0.1)
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        output_batch_norm(y, conv.weight, conv.bias, norm, (1, 6, 1))
    with pytest.raises(ValueError, match='more than 1 value per channel'):
        norm(conv(y.transpose(1, 2)))


@pytest.mark.parametrize('mode', ['embedded_gaussian', 'dot_product', 'concatenation'])
def test_block_in_training_matches_its_plain_ops(mode):
    # Without autograd recording the block runs W_z and nn.BatchNorm3d as they are.
    torch.manual_seed(0)
    block = NonLocalBlock(8, dim=3, mode=mode, sub_sample=True)
    with torch.no_grad():
        block.conv_out.norm.weight.fill_(1.5)
    plain = copy.deepcopy(block)
    x = torch.randn(2, 8, 3, 6, 6, requires_grad=True)
    out = block(x)
    with torch.no_grad():
        expected = plain(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    for name in ('running_mean', 'running_var', 'num_batches_tracked'):
        torch.testing.assert_close(getattr(block.conv_out.norm, name),
                                   getattr(plain.conv_out.norm, name), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('sub_sample', [True, False])
def test_block_in_training_keeps_no_output_sized_tensor_but_its_input(sub_sample):
    torch.manual_seed(0)
    block = NonLocalBlock(8, dim=3, sub_sample=sub_sample)
    x = torch.randn(2, 8, 3, 6, 6, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        block(x)
    output_sized = [t for t in saved if t.numel() == x.numel()]
    assert output_sized
    assert all(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
               for t in output_sized)
