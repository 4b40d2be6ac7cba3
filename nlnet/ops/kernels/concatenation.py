"""The concatenation form's aggregation, separably, without the N x M matrix."""
import torch


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
