"""The non-local block as the paper writes it (Wang et al., CVPR 2018, Eq. 1-6).

    y_i = 1/C(x) sum_j f(x_i, x_j) g(x_j)                      (Eq. 1)
    z_i = W_z y_i + x_i                                          (Eq. 6)

with every normalised pairwise weight f(x_i, x_j)/C(x) formed as a matrix. This
is the one reference for :class:`~nlnet.models.layers.NonLocalBlock`: its fast
routes are tested against it, ``impl='reference'`` runs it as the block's
forward, ``tools/analysis/get_flops.py`` counts the explicit form through it (as
MMAction2's mmcv blocks compute it), and attention maps for visualisation come
from :func:`reference_weights`. It reads only the block's parameters and settings
(mode, scope, sub_sample, pool_kernel, pool_position, use_scale, norm).

Notation: theta, phi, g are the block's 1x1 convolutions, C' their width; the
keys j run over the key grid (max-pooled when sub-sampling, Sec. 3.3) and, for
``scope='space'`` / ``'time'`` (Table 2d), only over the query's own frame /
spatial position.
"""
import math

import torch


def reference_forward(block, x):
    """z = norm(W_z y) + x of ``block`` on ``x``, forming the (B, L, M) weights.

    Args:
        block (NonLocalBlock): any mode, scope and sub-sampling.
        x (Tensor): (N, C, *S), the block's input.

    Returns:
        Tensor: (N, C, *S).
    """
    query, key, value = _embeddings(block, x)
    weights = _normalised_weights(block, _scope_sequences(query, block.scope),
                                  _scope_sequences(key, block.scope))
    y = weights @ _scope_sequences(value, block.scope)  # Eq. 1: sum_j f/C(x) g(x_j)
    return x + block.conv_out(_feature_map(y, block.scope, x))  # Eq. 6, W_z with its norm


def reference_weights(block, x, query_index):
    """Normalised weights f(x_i, x_j)/C(x) of chosen queries: only these Q rows are formed.

    Args:
        block (NonLocalBlock): any mode, scope and sub-sampling.
        x (Tensor): (N, C, *S), the block's input.
        query_index (Tensor | list[int]): Q flat indices into the S grid.

    Returns:
        Tensor: (N, Q, M) weights over the M positions of the (sub-sampled) key
        grid in its flat order; keys outside a query's scope are 0.
    """
    query, key, _ = _embeddings(block, x)
    query_index = torch.as_tensor(query_index, device=x.device).long()
    in_scope = _scope_mask(block.scope, query.shape[2:], key.shape[2:], query_index)
    queries = query.flatten(2).transpose(1, 2)[:, query_index]
    return _normalised_weights(block, queries, key.flatten(2).transpose(1, 2), in_scope)


def _embeddings(block, x):
    """theta(x_i) on the input grid; phi(x_j) and g(x_j) on the key grid, max-pooled
    before the convolution (official code) or after it (mmcv) when sub-sampling."""
    def on_keys(conv):
        return conv(block.pool(x)) if block.pool_position == 'before' else block.pool(conv(x))

    if block.mode == 'gaussian':  # Eq. 2 compares the inputs themselves
        return x, block.pool(x), on_keys(block.g)
    return block.theta(x), on_keys(block.phi), on_keys(block.g)


def _normalised_weights(block, query, key, in_scope=None):
    """f(x_i, x_j)/C(x) of queries (B, Q, C') and keys (B, M, C') -> (B, Q, M); ``in_scope``
    (Q, M) bool marks the pairs each query may attend to (None: all of them)."""
    if block.mode == 'concatenation':  # Eq. 5: f = ReLU(w_f^T [theta(x_i), phi(x_j)])
        num_queries, num_keys = query.shape[1], key.shape[1]
        pairs = torch.cat([
            query.transpose(1, 2).unsqueeze(-1).expand(-1, -1, -1, num_keys),
            key.transpose(1, 2).unsqueeze(-2).expand(-1, -1, num_queries, -1)], dim=1)
        f = block.concat_project(pairs).squeeze(1)  # the ReLU is concat_project's activation
    else:  # Eq. 2: x_i^T x_j; Eq. 3, 4: theta(x_i)^T phi(x_j)
        f = torch.matmul(query, key.transpose(1, 2))
    if block.mode in ('gaussian', 'embedded_gaussian'):
        # Eq. 2, 3: f = exp(.), C(x) = sum_j f, i.e. a softmax over j; the embedded
        # Gaussian's exponent is scaled by 1/sqrt(C') as in the official code.
        if block.mode == 'embedded_gaussian' and block.use_scale:
            f = f / math.sqrt(block.inter_channels)
        if in_scope is not None:
            f = f.masked_fill(~in_scope, float('-inf'))
        return f.softmax(dim=-1)
    if in_scope is None:  # Eq. 4, 5: C(x) = the number of positions attended to
        return f / key.shape[1]
    return f * in_scope / in_scope.sum(-1, keepdim=True)


def _scope_sequences(feat, scope):
    """(N, D, *S) -> (B, L, D): the positions each query attends to, one sequence per
    sample (``spacetime``), per sample and frame (``space``) or per sample and spatial
    position (``time``)."""
    n, d = feat.shape[:2]
    if scope == 'spacetime':
        return feat.flatten(2).transpose(1, 2)
    t, h, w = feat.shape[2:]
    if scope == 'space':
        return feat.permute(0, 2, 3, 4, 1).reshape(n * t, h * w, d)
    return feat.permute(0, 3, 4, 2, 1).reshape(n * h * w, t, d)


def _feature_map(seq, scope, like):
    """Inverse of :func:`_scope_sequences` on the grid of ``like`` (N, C, *S)."""
    n, _, *grid = like.shape
    d = seq.shape[-1]
    if scope == 'spacetime':
        return seq.transpose(1, 2).reshape(n, d, *grid)
    t, h, w = grid
    if scope == 'space':
        return seq.reshape(n, t, h, w, d).permute(0, 4, 1, 2, 3)
    return seq.reshape(n, h, w, t, d).permute(0, 4, 3, 1, 2)


def _scope_mask(scope, query_grid, key_grid, query_index):
    """(Q, M) bool: which key positions each chosen query attends to (Table 2d)."""
    device = query_index.device
    num_keys = math.prod(key_grid)
    if scope == 'spacetime':
        return torch.ones(len(query_index), num_keys, dtype=torch.bool, device=device)
    q_t, q_h, q_w = torch.unravel_index(query_index, tuple(query_grid))
    k_t, k_h, k_w = torch.unravel_index(torch.arange(num_keys, device=device), tuple(key_grid))
    if scope == 'space':
        return q_t[:, None] == k_t[None, :]
    return (q_h[:, None] == k_h[None, :]) & (q_w[:, None] == k_w[None, :])
