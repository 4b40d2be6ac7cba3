"""Exact non-local aggregation y_i = 1/C(x) * sum_j f(q_i, k_j) g_j without the N x M matrix.

All functions take a batch of query/key/value sequences:

- ``query``: (B, N, D) - theta(x_i) (or x_i for the plain Gaussian),
- ``key``:   (B, M, D) - phi(x_j),
- ``value``: (B, M, C') - g(x_j),

and return ``y`` of shape (B, N, C'). ``B`` folds the batch and, for restricted
scopes, the frames (``space``) or the spatial positions (``time``).
"""
import math

import torch
import torch.nn.functional as F

# Largest |logit| that float16 holds with margin for the exp/sum in softmax.
_FP16_SAFE_LOGIT = 3.0e4


def softmax_attention(query, key, value, scale):
    """(Embedded) Gaussian: softmax_j(scale * q_i . k_j) weighted sum of v_j.

    Runs through ``F.scaled_dot_product_attention`` (fused kernels that never
    store the N x M matrix for backward). Under float16 the logits can exceed the
    float16 range where float32 would not: the call is then done in float32.
    """
    if query.dtype == torch.float16 and _logit_bound(query, key, scale) > _FP16_SAFE_LOGIT:
        out = softmax_attention(query.float(), key.float(), value.float(), scale)
        return out.to(value.dtype)
    out = F.scaled_dot_product_attention(
        query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1), scale=scale)
    return out.squeeze(1)


def _logit_bound(query, key, scale):
    """Cauchy-Schwarz bound of max |scale * q_i . k_j| (cheap: O((N + M) D))."""
    with torch.no_grad():
        q_norm = query.float().norm(dim=-1).amax()
        k_norm = key.float().norm(dim=-1).amax()
        return float(q_norm * k_norm * scale)


def dot_product_attention(query, key, value):
    """Dot product: y_i = 1/M sum_j (q_i . k_j) v_j = q_i (K^T V / M).

    Associativity gives O((N + M) D C') time and a D x C' intermediate. K is
    divided by M before the product so that the sum stays in range in float16.
    """
    num_keys = key.shape[1]
    context = torch.matmul((key / num_keys).transpose(1, 2), value)
    return torch.matmul(query, context)


def concatenation_attention(query_proj, key_proj, value):
    """Concatenation: y_i = 1/M sum_j ReLU(a_i + b_j) v_j, separably.

    ``query_proj`` a_i = w_theta . theta(x_i) has shape (B, N); ``key_proj``
    b_j = w_phi . phi(x_j) has shape (B, M). ReLU(a_i + b_j) is non-zero exactly
    when b_j > -a_i, so with b sorted ascending the contributing keys form a
    suffix and

        y_i = 1/M [a_i * sum_{j in S_i} v_j + sum_{j in S_i} b_j v_j],

    read off suffix sums after one binary search per query: O((N + M) log M +
    (N + M) C') time and O((N + M) C') memory. Everything is differentiable
    (sort, cumsum, gather), and gives the explicit form's gradients (ReLU'(0) = 0
    on both sides). Sums are accumulated in float32 at least.
    """
    out_dtype = value.dtype
    acc_dtype = torch.promote_types(out_dtype, torch.float32)
    a = query_proj.to(acc_dtype)
    b = key_proj.to(acc_dtype)
    v = value.to(acc_dtype)
    batch, num_keys, channels = v.shape

    b_sorted, order = torch.sort(b, dim=1)
    v_sorted = torch.gather(v, 1, order.unsqueeze(-1).expand(-1, -1, channels))
    # Suffix sums with a zero row at index M (queries that no key reaches).
    weighted = torch.cat([v_sorted, b_sorted.unsqueeze(-1) * v_sorted], dim=-1)
    zero_row = weighted.new_zeros(batch, 1, 2 * channels)
    suffix = torch.cat([weighted.flip(1).cumsum(1).flip(1), zero_row], dim=1)

    first = torch.searchsorted(b_sorted.detach().contiguous(), (-a).detach().contiguous(),
                               right=True)
    picked = torch.gather(suffix, 1, first.unsqueeze(-1).expand(-1, -1, 2 * channels))
    sum_v, sum_bv = picked.split(channels, dim=-1)
    y = (a.unsqueeze(-1) * sum_v + sum_bv) / num_keys
    return y.to(out_dtype)


def explicit_weights(mode, query, key, scale=1.0):
    """The normalised pairwise weights f(x_i, x_j)/C(x) as an (B, N, M) tensor.

    For visualisation only: this is the matrix the fast paths avoid. For
    ``concatenation`` ``query``/``key`` are the projections a (B, N) and b (B, M).
    """
    if mode == 'concatenation':
        return F.relu(query.unsqueeze(-1) + key.unsqueeze(-2)) / key.shape[-1]
    logits = torch.matmul(query, key.transpose(1, 2))
    if mode == 'dot_product':
        return logits / key.shape[1]
    return (logits * scale).softmax(dim=-1)


def embedded_gaussian_scale(channels, use_scale):
    """1/sqrt(d) when ``use_scale`` else 1."""
    return 1.0 / math.sqrt(channels) if use_scale else 1.0
