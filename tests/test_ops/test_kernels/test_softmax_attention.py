"""Softmax attention kernels (chunked and native backward, projected) against the explicit
N x M weights."""
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.ops.kernels.softmax_attention import (_log_sum_exp, _loops_over_keys,
                                                   fused_softmax_attention_with_lse,
                                                   projected_softmax_attention, softmax_attention,
                                                   softmax_attention_backward)
from nlnet.ops.kernels.concatenation import concatenation_attention
from nlnet.ops.kernels.dot_product import dot_product_attention


def _explicit(q, k, v, scale=1.0):
    """sum_j softmax_j(scale q_i . k_j) v_j with the (B, N, M) weights formed."""
    return (scale * q @ k.transpose(1, 2)).softmax(dim=-1) @ v


def _grads(out, inputs, grad_out):
    return torch.autograd.grad(out, inputs, grad_out)


def _leaves(*shapes, dtype=torch.float64, scale=1.0):
    return [(scale * torch.randn(*s, dtype=dtype)).requires_grad_() for s in shapes]


# (queries, keys, width D, channels C', whether the backward loops over key chunks)
ATTENTION_SHAPES = [(11, 7, 6, 6, True), (11, 3, 6, 6, False), (11, 5, 7, 3, False),
                    (11, 7, 3, 7, True)]


@pytest.mark.parametrize('num_queries,num_keys,width,channels,over_keys', ATTENTION_SHAPES)
@pytest.mark.parametrize('backward,chunk_size', [('chunked', None), ('chunked', 1),
                                                  ('chunked', 4), ('native', None)])
def test_softmax_attention_matches_explicit(num_queries, num_keys, width, channels, over_keys,
                                            backward, chunk_size):
    # Chunked backward blocks of 1 or 4 keys or queries (uneven last chunk) or the
    # default one; the native backward is PyTorch's own (the CUDA route).
    torch.manual_seed(0)
    assert _loops_over_keys(num_queries, num_keys, width, channels) is over_keys
    q, k, v = _leaves((2, num_queries, width), (2, num_keys, width), (2, num_keys, channels))
    fast = softmax_attention(q, k, v, scale=0.7, backward=backward, chunk_size=chunk_size)
    explicit = _explicit(q, k, v, scale=0.7)
    assert fast.shape == (2, num_queries, channels)
    assert_same_value_and_grads(fast, explicit, [q, k, v])


def test_backward_accumulates_the_smaller_gradient():
    # MMSeg's NLHead at 512x1024 (N = M): dQ is the smaller; NL-I3D res3 with 2x2
    # sub-sampling (N = 4M): dK and dV together are.
    assert _loops_over_keys(8192, 8192, 256, 256)
    assert not _loops_over_keys(6272, 1568, 256, 256)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.bfloat16])
def test_log_sum_exp_of_the_fused_kernel_and_of_the_chunked_pass(dtype):
    # The backward rebuilds each weight as exp(logit - lse): on CPU the lse comes from
    # the fused kernel, on other devices from a chunked pass; both are the exact one.
    torch.manual_seed(0)
    q, k, v = (t.to(dtype) for t in (torch.randn(2, 9, 6), torch.randn(2, 5, 6),
                                      torch.randn(2, 5, 3)))
    want = torch.logsumexp(0.7 * q.double() @ k.double().transpose(1, 2), -1)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    out, lse = fused_softmax_attention_with_lse(q, k, v, 0.7)
    torch.testing.assert_close(out, softmax_attention(q, k, v, 0.7))
    for got in (lse, _log_sum_exp(q, k, 0.7, chunk=4)):
        assert got.shape == (2, 9) and got.dtype == torch.promote_types(dtype, torch.float32)
        torch.testing.assert_close(got.double(), want, **tol)


def test_softmax_attention_strided_inputs():
    # The block passes slices of one fused projection (rows strided) and, for the
    # plain Gaussian, x itself seen channel-last (channels strided).
    torch.manual_seed(0)
    fused = torch.randn(2, 9, 12, dtype=torch.float64, requires_grad=True)
    channel_first = torch.randn(2, 4, 9, dtype=torch.float64, requires_grad=True)
    q, k = fused[..., :4], channel_first.transpose(1, 2)
    v = fused[..., 4:10]
    fast = softmax_attention(q, k, v, scale=1.0, chunk_size=2)
    explicit = _explicit(q, k, v)
    assert_same_value_and_grads(fast, explicit, [fused, channel_first])


def test_softmax_attention_peaked_weights_match_float64():
    # Logits spread over hundreds make most weights tiny, many of them subnormal in
    # float32; the backward flushes weights under 2**-100 (below rounding), which
    # must leave the float32 gradients equal to the exact float64 ones.
    torch.manual_seed(0)
    q64, k64, v64 = _leaves((1, 40, 16), (1, 30, 16), (1, 30, 8), scale=4.0)
    q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q64, k64, v64))
    logits = q64 @ k64.transpose(1, 2)
    spread = logits.amax(-1, keepdim=True) - logits
    assert (spread > 100 * math.log(2)).float().mean() > 0.5
    grad_out = torch.randn(1, 40, 8, dtype=torch.float64)
    want = _grads(_explicit(q64, k64, v64), [q64, k64, v64], grad_out)
    got = _grads(softmax_attention(q32, k32, v32, scale=1.0), [q32, k32, v32], grad_out.float())
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-4 * w.abs().max().item())


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_kernels_stay_finite(dtype):
    # Logits q.k of about 200 * 200 * 8 = 3.2e5 overflow float16 (max 65504) if
    # formed in it, yet every output below is well inside the float16 range, as
    # float32 shows: the half-precision kernels must give finite values close to it.
    torch.manual_seed(0)
    q, k, v = _leaves((2, 40, 8), (2, 10, 8), (2, 10, 8), dtype=dtype)
    a, b = _leaves((2, 40), (2, 10), dtype=dtype)
    with torch.no_grad():
        for t in (q, k, a, b):
            t.mul_(200)
    small_v = (v.detach() / 100).requires_grad_()
    kernels = {
        'softmax': (lambda *t: softmax_attention(*t[:3], scale=1.0), (q, k, v)),
        'dot_product': (dot_product_attention, (q, k, small_v)),
        'concatenation': (concatenation_attention, (a, b, small_v)),
    }
    for name, (kernel, inputs) in kernels.items():
        out = kernel(*inputs)
        want = kernel(*[t.detach().float() for t in inputs])
        assert out.dtype == dtype, name
        assert torch.isfinite(want).all(), name
        assert torch.isfinite(out).all(), name
        torch.testing.assert_close(out.float(), want, rtol=3e-2, atol=3e-2 * want.abs().max())
        upstream = torch.randn(out.shape) / 1000
        half_grads = torch.autograd.grad(out, inputs, upstream.to(dtype))
        want_leaves = [t.detach().float().requires_grad_() for t in inputs]
        want_grads = torch.autograd.grad(kernel(*want_leaves), want_leaves, upstream)
        for got, ref in zip(half_grads, want_grads):
            assert ref.abs().max() < torch.finfo(torch.float16).max / 10, name
            assert torch.isfinite(got).all(), name
            # Gradients below float16 resolution (softmax near one-hot) flush to 0.
            torch.testing.assert_close(got.float(), ref, rtol=3e-2,
                                       atol=3e-2 * ref.abs().max() + 1e-6)


@pytest.mark.parametrize('chunk_size', [None, 2])
def test_backward_over_keys_may_write_dk_dv_over_k_v(chunk_size):
    torch.manual_seed(0)
    q, k, v = _leaves((2, 9, 4), (2, 9, 4), (2, 9, 3))
    scale = 0.5
    assert _loops_over_keys(9, 9, 4, 3)
    explicit = _explicit(q, k, v, scale)
    grad_out = torch.randn_like(explicit)
    want = _grads(explicit, [q, k, v], grad_out)
    out, lse = fused_softmax_attention_with_lse(q.detach(), k.detach(), v.detach(), scale)
    k_buffer, v_buffer = k.detach().clone(), v.detach().clone()
    grad_q = torch.empty_like(q)
    softmax_attention_backward(q.detach(), k_buffer, v_buffer, out, grad_out, lse, scale,
                               chunk_size, grad_q, k_buffer, v_buffer)
    for got, expected in zip((grad_q, k_buffer, v_buffer), want):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_backward_over_queries_refuses_to_write_over_k_v():
    q, k, v = (torch.randn(1, 11, 6), torch.randn(1, 3, 6), torch.randn(1, 3, 6))
    assert not _loops_over_keys(11, 3, 6, 6)
    out, lse = fused_softmax_attention_with_lse(q, k, v, 1.0)
    with pytest.raises(ValueError, match='N=11, M=3'):
        softmax_attention_backward(q, k, v, out, torch.ones_like(out), lse, 1.0, None,
                                   torch.empty_like(q), k, v)


# The fused theta/phi/g projection's attention, keeping only its input ---------------------


def _params(channels, width, out_channels, with_bias, dtype=torch.float64):
    shapes = [(width, channels, 1), (width, channels, 1), (out_channels, channels, 1)]
    weights = [torch.randn(s, dtype=dtype, requires_grad=True) for s in shapes]
    biases = [torch.randn(s[0], dtype=dtype, requires_grad=True) if with_bias else None
              for s in shapes]
    return weights, biases


def _explicit_projected(x, weights, biases, scale):
    query, key, value = (F.conv1d(x, w, b).transpose(1, 2) for w, b in zip(weights, biases))
    return _explicit(query, key, value, scale)


def _time_groups(frames, seq):
    """(N, T*P, E) -> (N*P, T, E): each position's sequence over the frames."""
    n, _, e = seq.shape
    return seq.reshape(n, frames, -1, e).transpose(1, 2).reshape(-1, frames, e)


def _time_ungroups(frames, positions, seq):
    e = seq.shape[-1]
    return seq.reshape(-1, positions, frames, e).transpose(1, 2).reshape(-1, frames * positions, e)


@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('chunk_size', [None, 3])
def test_projected_values_and_grads_match_explicit_attention(with_bias, chunk_size):
    torch.manual_seed(0)
    x = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
    weights, biases = _params(5, 3, 4, with_bias)
    fast = projected_softmax_attention(x.transpose(1, 2), weights, biases, 0.6,
                                       chunk_size=chunk_size)
    assert_same_value_and_grads(fast, _explicit_projected(x, weights, biases, 0.6),
                                [x] + weights + [b for b in biases if b is not None])


def test_projected_grouped_sequences_attend_within_their_group():
    # 'time' scope: 3 frames x 4 positions, each position attends over its frames.
    torch.manual_seed(0)
    frames, positions = 3, 4
    x = torch.randn(2, 5, frames * positions, dtype=torch.float64, requires_grad=True)
    weights, biases = _params(5, 3, 4, True)
    fast = projected_softmax_attention(
        x.transpose(1, 2), weights, biases, 0.6, functools.partial(_time_groups, frames),
        functools.partial(_time_ungroups, frames, positions))
    grouped_x = _time_groups(frames, x.transpose(1, 2)).transpose(1, 2)
    assert_same_value_and_grads(fast, _explicit_projected(grouped_x, weights, biases, 0.6),
                                [x] + weights + biases)


def test_projected_keeps_the_input_not_the_projection_for_backward():
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


def test_projected_inference_runs_plain_ops_and_autocast_returns_parameter_dtype_grads():
    torch.manual_seed(0)
    x = torch.randn(1, 8, 20, requires_grad=True)
    weights, biases = _params(8, 4, 4, True, torch.float32)
    with torch.no_grad():
        plain = projected_softmax_attention(x.transpose(1, 2), weights, biases, 0.5)
    reference = _explicit_projected(x, weights, biases, 0.5)
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
