"""The dot product's kernels: the associative aggregation against the explicit N x M
products, the folded branch against W_z y + b_z computed from explicit embeddings."""
import pytest
import torch
from helpers.autograd_checks import assert_same_value_and_grads

from nlnet.ops.kernels.dot_product import (dot_product_attention, folded_dot_product,
                                                     folding_saves_work)


def _affine(weight, bias, x):
    """A 1x1 convolution on (B, C, L) as a contraction."""
    out = torch.einsum('oc,bcl->bol', weight, x)
    return out if bias is None else out + bias[:, None]


def _explicit_branch(query_input, key_input, theta, phi, g, out_weight, out_bias):
    """W_z y + b_z with y_i = 1/M sum_j (theta_i . phi_j) g_j, the N x M products formed."""
    q, k, v = _affine(*theta, query_input), _affine(*phi, key_input), _affine(*g, key_input)
    weights = q.transpose(1, 2) @ k / key_input.shape[-1]  # (B, N, M)
    y = (weights @ v.transpose(1, 2)).transpose(1, 2)  # (B, C', N)
    return _affine(out_weight, out_bias, y)


@pytest.mark.parametrize('with_bias', [True, False])
@pytest.mark.parametrize('shared_input', [True, False])
def test_matches_explicit_branch_values_and_grads(with_bias, shared_input):
    torch.manual_seed(0)
    channels, width, out_channels = 5, 3, 4

    def leaf(*shape):
        return torch.randn(*shape, dtype=torch.float64, requires_grad=True)

    def conv(out_c, in_c):
        return leaf(out_c, in_c), (leaf(out_c) if with_bias else None)

    query_input = leaf(2, channels, 11)
    # Without sub-sampling the keys are the queries' input itself: both gradients add up.
    key_input = query_input if shared_input else leaf(2, channels, 4)
    theta, phi, g = conv(width, channels), conv(width, channels), conv(width, channels)
    out_weight, out_bias = conv(out_channels, width)
    args = (query_input, key_input, theta, phi, g, out_weight, out_bias)
    leaves = [t for t in (query_input, key_input, *theta, *phi, *g, out_weight, out_bias)
              if t is not None]
    leaves = list({id(t): t for t in leaves}.values())

    got, want = folded_dot_product(*args), _explicit_branch(*args)
    assert got.shape == (2, out_channels, 11)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    grad_out = torch.randn_like(want)
    for name, a, b in zip(range(len(leaves)), torch.autograd.grad(got, leaves, grad_out),
                          torch.autograd.grad(want, leaves, grad_out)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f'leaf {name}: {m}')


def test_mean_gram_keeps_float16_sums_in_range():
    # The raw sum of 4096 products of 8 * 8 is 262144, beyond float16; the mean is 64.
    x = torch.full((1, 2, 4096), 8.0, dtype=torch.float16)
    weight = torch.eye(2, dtype=torch.float16)
    out = folded_dot_product(x, x, (weight, None), (weight, None), (weight, None), weight)
    torch.testing.assert_close(out.float(), torch.full((1, 2, 4096), 2 * 64.0 * 8))


@pytest.mark.parametrize('sizes,folds', [
    ((512, 256, 8192, 8192), True),  # MMSeg's NLHead at a 512x1024 crop
    ((512, 256, 6272, 1568), True),  # NL-I3D res3, sub-sampled
    ((1024, 512, 1568, 392), False),  # NL-I3D res4: the fixed C x C cost dominates
    ((512, 128, 8192, 8192), False),  # reduction 4: the projections are the cheaper
    ((512, 256, 8, 4), False),  # a few queries per sequence
])
def test_folding_saves_work_only_where_it_does(sizes, folds):
    assert folding_saves_work(*sizes) is folds


def test_dot_product_attention_matches_explicit():
    torch.manual_seed(0)
    q, k, v = (torch.randn(*s, dtype=torch.float64, requires_grad=True)
               for s in ((3, 9, 5), (3, 4, 5), (3, 4, 2)))
    explicit = (q @ k.transpose(1, 2) / 4) @ v  # the (B, N, M) products, averaged over M
    assert_same_value_and_grads(dot_product_attention(q, k, v), explicit, [q, k, v])


def test_dot_product_sum_beyond_half_range_average_within():
    # sum_j k_j v_j = 64 * 100 * 100 = 6.4e5 > 65504, its average 1e4 is not.
    key = torch.full((1, 64, 2), 100.0, dtype=torch.float16)
    value = torch.full((1, 64, 3), 100.0, dtype=torch.float16)
    query = torch.full((1, 5, 2), 0.5, dtype=torch.float16)
    out = dot_product_attention(query, key, value)
    torch.testing.assert_close(out, torch.full((1, 5, 3), 1e4, dtype=torch.float16))
