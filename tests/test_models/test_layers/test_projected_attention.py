"""Attention of the fused theta/phi/g projection that keeps only its input for backward."""
import functools

import pytest
import torch
import torch.nn.functional as F
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.models.layers.pairwise import explicit_weights
from nlnet.models.layers.projected_attention import projected_softmax_attention


def _params(channels, width, out_channels, with_bias, dtype=torch.float64):
    shapes = [(width, channels, 1), (width, channels, 1), (out_channels, channels, 1)]
    weights = [torch.randn(s, dtype=dtype, requires_grad=True) for s in shapes]
    biases = [torch.randn(s[0], dtype=dtype, requires_grad=True) if with_bias else None
              for s in shapes]
    return weights, biases


def _explicit(x, weights, biases, scale):
    query, key, value = (F.conv1d(x, w, b).transpose(1, 2) for w, b in zip(weights, biases))
    return explicit_weights('embedded_gaussian', query, key, scale) @ value


def _time_groups(frames, seq):
    """(N, T*P, E) -> (N*P, T, E): each position's sequence over the frames."""
    n, _, e = seq.shape
    return seq.reshape(n, frames, -1, e).transpose(1, 2).reshape(-1, frames, e)


def _time_ungroups(frames, positions, seq):
    e = seq.shape[-1]
    return seq.reshape(-1, positions, frames, e).transpose(1, 2).reshape(-1, frames * positions, e)


@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('chunk_size', [None, 3])
def test_values_and_grads_match_explicit_attention(with_bias, chunk_size):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
    weights, biases = _params(5, 3, 4, with_bias)
    fast = projected_softmax_attention(x.transpose(1, 2), weights, biases, 0.6,
                                       chunk_size=chunk_size)
    assert_same_value_and_grads(fast, _explicit(x, weights, biases, 0.6),
                                [x] + weights + [b for b in biases if b is not None])


def test_grouped_sequences_attend_within_their_group():
    # 'time' scope: 3 frames x 4 positions, each position attends over its frames.
    torch.manual_seed(0)
    frames, positions = 3, 4
    x = torch.randn(2, 5, frames * positions, dtype=torch.float64, requires_grad=True)
    weights, biases = _params(5, 3, 4, True)
    fast = projected_softmax_attention(
        x.transpose(1, 2), weights, biases, 0.6, functools.partial(_time_groups, frames),
        functools.partial(_time_ungroups, frames, positions))
    grouped_x = _time_groups(frames, x.transpose(1, 2)).transpose(1, 2)
    assert_same_value_and_grads(fast, _explicit(grouped_x, weights, biases, 0.6),
                                [x] + weights + biases)


def test_keeps_the_input_not_the_projection_for_backward():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 64, requires_grad=True)
    weights, biases = _params(8, 4, 4, True, torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = projected_softmax_attention(x.transpose(1, 2), weights, biases, 0.5)
    assert out.shape == (1, 64, 4)
    params = {p.untyped_storage().data_ptr() for p in weights + biases}
    others = [t for t in saved if t.untyped_storage().data_ptr() not in params]
    # The input (a view of x), the output y and the log-sum-exp of each query.
    assert sorted(t.numel() for t in others) == [64, 64 * 4, 64 * 8]
    assert any(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in others)


def test_inference_runs_plain_ops_and_autocast_returns_parameter_dtype_grads():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 20, requires_grad=True)
    weights, biases = _params(8, 4, 4, True, torch.float32)
    with torch.no_grad():
        plain = projected_softmax_attention(x.transpose(1, 2), weights, biases, 0.5)
    reference = _explicit(x, weights, biases, 0.5)
    torch.testing.assert_close(plain, reference, rtol=1e-5, atol=1e-5)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        mixed = projected_softmax_attention(x.transpose(1, 2), weights, biases, 0.5)
    assert mixed.dtype == torch.bfloat16
    torch.testing.assert_close(mixed.float(), reference, rtol=0.05, atol=0.05)
    # phi's bias is left out: softmax ignores the q . b_phi it adds to a query's logits,
    # so its exact gradient is 0 and bfloat16 leaves only rounding there.
    leaves = [x] + weights + [biases[0], biases[2]]
    grad_out = torch.randn_like(reference)
    grads = torch.autograd.grad(mixed.float(), leaves, grad_out)
    for got, want in zip(grads, torch.autograd.grad(reference, leaves, grad_out)):
        assert got.dtype == torch.float32
        assert (got - want).norm() <= 0.15 * want.norm()  # bfloat16: 8-bit mantissas
