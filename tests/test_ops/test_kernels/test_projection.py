"""Several 1x1 convolutions as one GEMM: the same values and gradients, no fused weight kept."""
import pytest
import torch
import torch.nn.functional as F
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.ops.kernels.projection import fused_projection


def _convs(with_bias, dtype=torch.float64):
    widths = (3, 4, 2)
    weights = [torch.randn(w, 5, 1, 1, dtype=dtype, requires_grad=True) for w in widths]
    biases = [torch.randn(w, dtype=dtype, requires_grad=True) if with_bias else None
              for w in widths]
    return weights, biases


@pytest.mark.parametrize('with_bias', [True, False])
def test_matches_separate_convolutions(with_bias):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64, requires_grad=True)
    weights, biases = _convs(with_bias)
    fused = fused_projection(x.flatten(2).transpose(1, 2), weights, biases)
    separate = torch.cat([F.conv2d(x, w, b) for w, b in zip(weights, biases)], dim=1)
    separate = separate.flatten(2).transpose(1, 2)
    assert_same_value_and_grads(fused, separate,
                                [x] + weights + [b for b in biases if b is not None],
                                rtol=1e-12, atol=1e-12)


def test_keeps_only_the_input_and_the_weights_themselves_for_backward():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 6, 6, requires_grad=True)
    weights, biases = _convs(True, torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = fused_projection(x.flatten(2).transpose(1, 2), weights, biases)
    assert out.shape == (1, 36, 9)
    owners = [x.untyped_storage().data_ptr()] + [w.untyped_storage().data_ptr()
                                                 for w in weights]
    assert len(saved) == 4 and all(t.untyped_storage().data_ptr() in owners for t in saved)


def test_autocast_computes_in_its_dtype_and_returns_parameter_dtype_grads():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4, requires_grad=True)
    weights, biases = _convs(True, torch.float32)
    seq = x.flatten(2).transpose(1, 2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        fused = fused_projection(seq, weights, biases)
    assert fused.dtype == torch.bfloat16
    grads = torch.autograd.grad(fused.float().sum(), [x] + weights + biases)
    assert all(g.dtype == torch.float32 for g in grads)
    reference = torch.cat([F.conv2d(x, w, b) for w, b in zip(weights, biases)], dim=1)
    torch.testing.assert_close(fused.float(), reference.flatten(2).transpose(1, 2),
                               rtol=0.02, atol=0.05)
