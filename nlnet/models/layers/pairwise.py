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

# Queries per group below which splitting the queries for the CPU backward
# costs more in per-call overhead than the extra thread gains.
_MIN_QUERIES_PER_GROUP = 256


def softmax_attention(query, key, value, scale, groups=None):
    """(Embedded) Gaussian: y_i = sum_j softmax_j(scale * q_i . k_j) v_j.

    Runs through ``F.scaled_dot_product_attention``, whose fused kernels keep
    only the output and the per-query log-sum-exp for backward. They need unit
    channel stride and one common width, so ``query``/``key`` or ``value`` is
    zero-padded to the larger of D and C' (zero channels add
    nothing to q.k and give zero outputs that are dropped). Every SDPA backend
    (the fused ones and, since PyTorch 2.5, the math one) accumulates the
    logits and the softmax in float32 for float16/bfloat16 inputs, so half
    precision cannot overflow here where float32 does not.

    Args:
        query (Tensor): (B, N, D).
        key (Tensor): (B, M, D).
        value (Tensor): (B, M, C').
        scale (float): factor on the logits.
        groups (int | None): split the N queries into this many groups that
            share the keys (as heads of a broadcast key/value). The CPU kernel
            parallelises its backward over batch x heads only, so a single long
            sequence would run on one thread; ``None`` picks enough groups to
            occupy every thread when autograd is recording on CPU, else 1.

    Returns:
        Tensor: (B, N, C').
    """
    batch, num_queries, width = query.shape
    channels = value.shape[-1]
    if width < channels:
        query = F.pad(query, (0, channels - width))
        key = F.pad(key, (0, channels - width))
    elif channels < width:
        value = F.pad(value, (0, width - channels))
    if groups is None:
        groups = _cpu_backward_groups(query, key, value)
    padded_queries = -(-num_queries // groups) * groups
    if padded_queries != num_queries:
        query = F.pad(query, (0, 0, 0, padded_queries - num_queries))
    size = (batch, groups) + key.shape[1:]
    out = F.scaled_dot_product_attention(
        _unit_channel_stride(query.reshape(batch, groups, padded_queries // groups, -1)),
        _unit_channel_stride(key).unsqueeze(1).expand(size),
        _unit_channel_stride(value).unsqueeze(1).expand(size[:-1] + value.shape[-1:]),
        scale=scale)
    return out.reshape(batch, padded_queries, -1)[:, :num_queries, :channels]


def _unit_channel_stride(seq):
    """``seq`` itself when its channels are adjacent in memory (all the fused kernels
    need; rows may be strided, e.g. slices of one fused projection), else a copy."""
    return seq if seq.stride(-1) == 1 else seq.contiguous()


def _cpu_backward_groups(query, key, value):
    """Query groups that give the CPU backward one (batch, head) pair per thread."""
    recording = torch.is_grad_enabled() and (query.requires_grad or key.requires_grad
                                              or value.requires_grad)
    if query.device.type != 'cpu' or not recording:
        return 1
    batch, num_queries = query.shape[:2]
    wanted = -(-torch.get_num_threads() // batch)
    return max(1, min(wanted, num_queries // _MIN_QUERIES_PER_GROUP))


def dot_product_attention(query, key, value):
    """Dot product: y_i = 1/M sum_j (q_i . k_j) v_j = q_i (K^T V / M).

    Associativity gives O((N + M) D C') time and a D x C' intermediate. The 1/M
    is the GEMM's alpha, applied to its accumulator (float32 for half inputs), so
    the sum K^T V never has to fit in float16, only the average; and no scaled
    copy of K is made and kept for backward.
    """
    batch, num_keys, width = key.shape
    context = torch.baddbmm(key.new_zeros(()).expand(batch, width, value.shape[-1]),
                            key.transpose(1, 2), value, beta=0, alpha=1 / num_keys)
    return torch.bmm(query, context)


def concatenation_attention(query_proj, key_proj, value):
    """Concatenation: y_i = 1/M sum_j ReLU(a_i + b_j) v_j, separably.

    ``query_proj`` a_i = w_theta . theta(x_i) has shape (B, N); ``key_proj``
    b_j = w_phi . phi(x_j) has shape (B, M). ReLU(a_i + b_j) is non-zero exactly
    when b_j > -a_i, so with b sorted ascending the contributing keys form a
    suffix S_i and

        y_i = 1/M [a_i * sum_{j in S_i} v_j + sum_{j in S_i} b_j v_j],

    read off suffix sums after one binary search per query: O((N + M) log M +
    (N + M) C') time and O((N + M) C') memory. Everything is differentiable
    (sort, cumsum, gather) and gives the explicit form's gradients (ReLU'(0) = 0
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
    """The normalised pairwise weights f(x_i, x_j)/C(x) as a (B, N, M) tensor.

    For visualisation only: this is the matrix the fast paths avoid. For
    ``concatenation`` ``query``/``key`` are the projections a (B, N) and b (B, M);
    ``scale`` multiplies the logits of the softmax modes.
    """
    if mode == 'concatenation':
        return F.relu(query.unsqueeze(-1) + key.unsqueeze(-2)) / key.shape[-1]
    logits = torch.matmul(query, key.transpose(1, 2))
    if mode == 'dot_product':
        return logits / key.shape[1]
    return (logits * scale).softmax(dim=-1)


def embedded_gaussian_scale(channels, use_scale):
    """1/sqrt(channels) when ``use_scale`` else 1."""
    return 1.0 / math.sqrt(channels) if use_scale else 1.0
