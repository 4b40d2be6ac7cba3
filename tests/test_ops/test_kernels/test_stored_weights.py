"""Softmax attention that keeps its weights (the ``stored`` route) against the explicit N x M
weights."""
import math

import pytest
import torch
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.ops.kernels import stored_weights
from nlnet.ops.kernels.stored_weights import stored_softmax_attention


def _explicit(q, k, v, scale=1.0):
    return (scale * q @ k.transpose(1, 2)).softmax(dim=-1) @ v


def _leaves(*shapes, dtype=torch.float64, scale=1.0):
    return [(scale * torch.randn(*s, dtype=dtype)).requires_grad_() for s in shapes]


@pytest.mark.parametrize('num_queries,num_keys,width,channels', [(11, 7, 6, 3), (5, 9, 3, 7)])
def test_values_and_grads_match_explicit(num_queries, num_keys, width, channels):
    torch.manual_seed(0)
    q, k, v = _leaves((2, num_queries, width), (2, num_keys, width), (2, num_keys, channels))
    fast = stored_softmax_attention(q, k, v, scale=0.7)
    assert fast.shape == (2, num_queries, channels)
    assert_same_value_and_grads(fast, _explicit(q, k, v, scale=0.7), [q, k, v])


@pytest.mark.parametrize('tile', [4, 1024])
def test_self_attention_grads_match_explicit(monkeypatch, tile):
    # key=None: the keys are the queries, and dq sums both roles through the logits'
    # gradient made symmetric in place, tile by tile (4: uneven last tiles off the
    # diagonal; 1024: one tile).
    monkeypatch.setattr(stored_weights, '_TILE', tile)
    torch.manual_seed(0)
    x, v = _leaves((2, 13, 5), (2, 13, 4))
    fast = stored_softmax_attention(x, None, v, scale=0.5)
    assert_same_value_and_grads(fast, _explicit(x, x, v, scale=0.5), [x, v])


def test_backward_blocks_of_rows_cover_every_query(monkeypatch):
    # Blocks of 3 rows of dY V^T (2 batches x 7 keys = 14 elements per row): the last is
    # shorter.
    monkeypatch.setattr(stored_weights, '_BLOCK_ELEMENTS', 3 * 14)
    torch.manual_seed(0)
    q, k, v = _leaves((2, 11, 6), (2, 7, 6), (2, 7, 3))
    assert_same_value_and_grads(stored_softmax_attention(q, k, v, 1.0), _explicit(q, k, v),
                                [q, k, v])


def test_peaked_weights_match_float64():
    # The plain Gaussian on raw features: logits spread over hundreds, so that float32
    # weights would be subnormal; those are flushed, which must leave the float32
    # values and gradients equal to the exact float64 ones up to float32 rounding (dx is
    # nearly 0 here, each weight row being nearly one-hot: absolute tolerance).
    torch.manual_seed(0)
    x64, v64 = _leaves((1, 40, 16), (1, 40, 8), scale=4.0)
    x32, v32 = (t.detach().float().requires_grad_() for t in (x64, v64))
    logits = x64 @ x64.transpose(1, 2)
    assert ((logits.amax(-1, keepdim=True) - logits) > 100 * math.log(2)).float().mean() > 0.5
    grad_out = torch.randn(1, 40, 8, dtype=torch.float64)
    explicit = _explicit(x64, x64, v64)
    want = [explicit] + list(torch.autograd.grad(explicit, [x64, v64], grad_out))
    fast = stored_softmax_attention(x32, None, v32, 1.0)
    got = [fast] + list(torch.autograd.grad(fast, [x32, v32], grad_out.float()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-4)


def test_half_precision_computes_in_float32_and_returns_input_dtype():
    torch.manual_seed(0)
    q, k, v = _leaves((1, 9, 4), (1, 6, 4), (1, 6, 3), dtype=torch.bfloat16)
    out = stored_softmax_attention(q, k, v, 1.0)
    grads = torch.autograd.grad(out, [q, k, v], torch.ones_like(out))
    assert out.dtype == torch.bfloat16 and all(g.dtype == torch.bfloat16 for g in grads)
    want = _explicit(*(t.detach().float() for t in (q, k, v)))
    torch.testing.assert_close(out.float(), want, rtol=1e-2, atol=1e-2)


def test_second_backward_is_refused():
    # The backward turns the kept weights into their gradient in place.
    q, k, v = _leaves((1, 4, 3), (1, 5, 3), (1, 5, 2))
    out = stored_softmax_attention(q, k, v, 1.0).sum()
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="runs once.*impl='chunked'"):
        out.backward()


def test_inference_runs_the_fused_kernel_and_keeps_nothing():
    torch.manual_seed(0)
    q, v = torch.randn(1, 6, 4), torch.randn(1, 6, 3)
    with torch.no_grad(), torch.profiler.profile() as prof:
        out = stored_softmax_attention(q, None, v, 0.5)
    ops = {event.name for event in prof.events()}
    assert any(op.startswith('aten::_scaled_dot_product') for op in ops), sorted(ops)
    assert 'aten::_softmax' not in ops
    torch.testing.assert_close(out, _explicit(q, q, v, scale=0.5))
