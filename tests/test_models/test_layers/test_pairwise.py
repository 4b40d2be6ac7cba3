"""The sequence-level kernels of the non-local operator against the explicit N x M forms."""
import math

import pytest
import torch
import torch.nn.functional as F
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.models.layers.pairwise import (_log_sum_exp, _loops_over_keys,
                                          concatenation_attention, dot_product_attention,
                                          explicit_weights, fused_softmax_attention_with_lse,
                                          softmax_attention, softmax_attention_backward)


def _grads(out, inputs, grad_out):
    return torch.autograd.grad(out, inputs, grad_out)


def _leaves(*shapes, dtype=torch.float64, scale=1.0):
    return [(scale * torch.randn(*s, dtype=dtype)).requires_grad_() for s in shapes]


# (queries, keys, width D, channels C', whether the backward loops over key chunks)
ATTENTION_SHAPES = [(11, 7, 6, 6, True), (11, 3, 6, 6, False), (11, 5, 7, 3, False),
                    (11, 7, 3, 7, True)]


@pytest.mark.parametrize('num_queries,num_keys,width,channels,over_keys', ATTENTION_SHAPES)
@pytest.mark.parametrize('chunk_size', [None, 1, 4])
def test_softmax_attention_matches_explicit(num_queries, num_keys, width, channels, over_keys,
                                            chunk_size):
    # Backward chunks of 1 or 4 keys or queries (uneven last chunk) or the default one.
    torch.manual_seed(0)
    assert _loops_over_keys(num_queries, num_keys, width, channels) is over_keys
    q, k, v = _leaves((2, num_queries, width), (2, num_keys, width), (2, num_keys, channels))
    fast = softmax_attention(q, k, v, scale=0.7, chunk_size=chunk_size)
    explicit = explicit_weights('embedded_gaussian', q, k, scale=0.7) @ v
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
    explicit = explicit_weights('gaussian', q, k) @ v
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
    want = _grads(explicit_weights('gaussian', q64, k64) @ v64, [q64, k64, v64], grad_out)
    got = _grads(softmax_attention(q32, k32, v32, scale=1.0), [q32, k32, v32], grad_out.float())
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-4 * w.abs().max().item())


def test_dot_product_attention_matches_explicit():
    torch.manual_seed(0)
    q, k, v = _leaves((3, 9, 5), (3, 4, 5), (3, 4, 2))
    assert_same_value_and_grads(dot_product_attention(q, k, v),
                                 explicit_weights('dot_product', q, k) @ v, [q, k, v])


def test_dot_product_sum_beyond_half_range_average_within():
    # sum_j k_j v_j = 64 * 100 * 100 = 6.4e5 > 65504, its average 1e4 is not.
    key = torch.full((1, 64, 2), 100.0, dtype=torch.float16)
    value = torch.full((1, 64, 3), 100.0, dtype=torch.float16)
    query = torch.full((1, 5, 2), 0.5, dtype=torch.float16)
    out = dot_product_attention(query, key, value)
    torch.testing.assert_close(out, torch.full((1, 5, 3), 1e4, dtype=torch.float16))


def test_concatenation_attention_matches_explicit():
    torch.manual_seed(0)
    a, b, v = _leaves((2, 13), (2, 8), (2, 8, 3))
    assert_same_value_and_grads(concatenation_attention(a, b, v),
                                 explicit_weights('concatenation', a, b) @ v, [a, b, v])


def test_concatenation_attention_ties_and_unreached_queries():
    # Integer values make a_i + b_j == 0 exactly (ReLU'(0) = 0 on both sides), give
    # duplicate keys, and leave query 0 (a = -9) with no key: its output must be 0.
    a = torch.tensor([[-9., -2., 0., 1., 3.]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[2., -1., 2., 0., -3., 1.]], dtype=torch.float64, requires_grad=True)
    v = torch.randn(1, 6, 4, dtype=torch.float64, requires_grad=True)
    fast = concatenation_attention(a, b, v)
    assert torch.equal(fast[0, 0], torch.zeros(4, dtype=torch.float64))
    assert_same_value_and_grads(fast, explicit_weights('concatenation', a, b) @ v, [a, b, v])


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


def test_explicit_weights_rows_are_normalised():
    torch.manual_seed(0)
    q, k = torch.randn(2, 5, 3), torch.randn(2, 7, 3)
    weights = explicit_weights('gaussian', q, k)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 5))
    torch.testing.assert_close(explicit_weights('dot_product', q, k), q @ k.transpose(1, 2) / 7)
    a, b = q[..., 0], k[..., 0]
    torch.testing.assert_close(explicit_weights('concatenation', a, b),
                               F.relu(a[..., None] + b[:, None]) / 7)


@pytest.mark.parametrize('chunk_size', [None, 2])
def test_backward_over_keys_may_write_dk_dv_over_k_v(chunk_size):
    torch.manual_seed(0)
    q, k, v = _leaves((2, 9, 4), (2, 9, 4), (2, 9, 3))
    scale = 0.5
    assert _loops_over_keys(9, 9, 4, 3)
    explicit = explicit_weights('embedded_gaussian', q, k, scale) @ v
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
