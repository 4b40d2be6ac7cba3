"""Softmax attention that keeps its N x M weights for a backward of plain GEMMs (Eq. 2 and 3).

The chunked route (:mod:`.softmax_attention`) never keeps the weights, so its
backward forms the logits again (N M D multiply-adds), and its fused forward pads
the values to the keys' width D where C' < D (N M (D - C') more). This route spends
the memory instead: the forward is one GEMM for the logits, a softmax in place and
one GEMM for y; the backward turns the kept weights into the logits' gradient in
place, so the only N x M tensor ever held is the weights, plus a bounded block.
That is mmcv's op count, N M (3 D + 3 C'), with fewer passes and no copies.

Where the keys are the queries (the plain Gaussian without sub-sampling, where q
and k are both x), the logits' gradient dS enters dx twice, dS x + dS^T x; it is
made symmetric in place and multiplied once, N M D multiply-adds fewer:
N M (2 D + 3 C') in all.
"""
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .common import autocast_dtype, flush_threshold, records_grad
from .softmax_attention import fused_softmax_attention

# Elements of one block of the backward's dY V^T (rows x keys, all batches), and the
# side of the square tiles of the in-place symmetrisation: few enough
# ops (32 and 36 at N = M = 8192) that on a loaded machine, where every op's threads
# wait for each other, they cost little next to the GEMMs.
_BLOCK_ELEMENTS = 2**21
_TILE = 1024


def stored_softmax_attention(query, key, value, scale):
    """y_i = sum_j softmax_j(scale * q_i . k_j) v_j, keeping the weights for backward.

    Args:
        query (Tensor): (B, N, D).
        key (Tensor | None): (B, M, D), or None where the keys are the queries
            (self-attention, M = N): the backward then multiplies once for dq.
        value (Tensor): (B, M, C').
        scale (float): factor on the logits.

    Returns:
        Tensor: (B, N, C'), in autocast's dtype under autocast; the weights and
        the backward are computed in float32 at least. Without autograd recording
        nothing is kept: the forward is :func:`.softmax_attention.fused_softmax_
        attention`, the op that tracers (``get_flops``) see on every route.
    """
    dtype = autocast_dtype(*(t for t in (query, key, value) if t is not None))
    with torch.autocast(query.device.type, enabled=False):
        query, value = query.to(dtype), value.to(dtype)
        key = None if key is None else key.to(dtype)
        if not records_grad(query, key, value):
            return fused_softmax_attention(query, query if key is None else key, value, scale)
        return _StoredSoftmaxAttention.apply(query, key, value, scale)


class _StoredSoftmaxAttention(torch.autograd.Function):

    @staticmethod
    def forward(ctx, query, key, value, scale):
        acc_dtype = torch.promote_types(query.dtype, torch.float32)
        q, v = query.to(acc_dtype), value.to(acc_dtype)
        k = q if key is None else key.to(acc_dtype)
        logits = torch.baddbmm(q.new_zeros(()), q, k.transpose(1, 2), beta=0, alpha=scale)
        weights = torch._softmax(logits, -1, False, out=logits)
        F.threshold_(weights, flush_threshold(acc_dtype), 0.0)
        out = torch.bmm(weights, v)
        ctx.save_for_backward(query, key, value, weights, out)
        ctx.scale = scale
        return out.to(query.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        if getattr(ctx, 'weights_consumed', False):
            raise RuntimeError('stored_softmax_attention: the backward turns the kept weights '
                               'into their gradient in place, so it runs once; call '
                               "backward once, or use impl='chunked'")
        ctx.weights_consumed = True
        query, key, value, weights, out = ctx.saved_tensors
        acc_dtype = weights.dtype
        q, v, dy = query.to(acc_dtype), value.to(acc_dtype), grad_out.to(acc_dtype)
        k = q if key is None else key.to(acc_dtype)
        grad_v = torch.bmm(weights.transpose(1, 2), dy)
        grad_logits = _logits_gradient_in_place(weights, dy, v, out)
        if key is None:
            _symmetrise_in_place(grad_logits)
            grad_q = torch.bmm(grad_logits, q).mul_(ctx.scale)
            grad_k = None
        else:
            grad_q = torch.bmm(grad_logits, k).mul_(ctx.scale)
            grad_k = torch.bmm(grad_logits.transpose(1, 2), q).mul_(ctx.scale).to(key.dtype)
        return grad_q.to(query.dtype), grad_k, grad_v.to(value.dtype), None


def _logits_gradient_in_place(weights, dy, v, out):
    """dS = P * (dY V^T - delta), delta_i = dy_i . y_i, written over P (B, N, M), a block
    of rows at a time so that dY V^T never takes a second N x M tensor."""
    batch, num_queries, num_keys = weights.shape
    neg_delta = torch.einsum('bnc,bnc->bn', dy, out).neg_().unsqueeze(-1)
    rows = max(1, _BLOCK_ELEMENTS // (batch * num_keys))
    buffer = weights.new_empty(batch, min(rows, num_queries), num_keys)
    for start in range(0, num_queries, rows):
        part = slice(start, start + rows)
        block = buffer[:, :weights[:, part].shape[1]]
        torch.baddbmm(neg_delta[:, part].expand_as(block), dy[:, part], v.transpose(1, 2),
                      out=block)
        weights[:, part].mul_(block)
    return weights


def _symmetrise_in_place(square):
    """square <- square + square^T for a (B, N, N) tensor, tile pair by tile pair."""
    size = square.shape[1]
    for row in range(0, size, _TILE):
        rows = slice(row, row + _TILE)
        for col in range(row, size, _TILE):
            cols = slice(col, col + _TILE)
            tile = square[:, rows, cols] + square[:, cols, rows].transpose(1, 2)
            square[:, rows, cols] = tile
            square[:, cols, rows] = tile.transpose(1, 2)
