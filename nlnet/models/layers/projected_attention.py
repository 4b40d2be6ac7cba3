"""(Embedded) Gaussian attention of the fused theta/phi/g projection, keeping only its input.

Without sub-sampling, theta, phi and g are one fused projection of the block's input
(:mod:`.fused_projection`) into a (B, L, 2D + C') tensor. Autograd would keep that
tensor from the forward to the backward: 1.5 times the input at the default D = C' =
C/2. This Function keeps the input instead, which the caller holds anyway, projects
it again in the backward (3 GEMMs of L C (2D + C') multiply-adds, about 2 % of an
NLHead-sized block's step) and writes dK and dV over the recomputed keys and values
once a key chunk is done with them (:func:`.pairwise.softmax_attention_backward`).
At MMSeg's NLHead size (1 x 512 x 64 x 128) that takes the block's peak of live
tensors from 96 to 77 MiB.
"""
import torch
from torch.autograd.function import once_differentiable

from .fused_projection import project, projection_backward
from .pairwise import (autocast_dtype, fused_softmax_attention, fused_softmax_attention_with_lse,
                       records_grad, softmax_attention_backward)


def _identity(seq):
    return seq


def projected_softmax_attention(seq, weights, biases, scale, group=_identity, ungroup=_identity,
                                chunk_size=None):
    """y_i = sum_j softmax_j(scale theta(x_i) . phi(x_j)) g(x_j) from the input positions.

    Args:
        seq (Tensor): (N, L, C), the block's input channel-last (any strides).
        weights (list[Tensor]): theta, phi, g 1x1 convolution weights, (D, C, 1, ...),
            (D, C, 1, ...), (C', C, 1, ...).
        biases (list[Tensor | None]): their (D,), (D,), (C',) biases or None.
        scale (float): factor on the logits.
        group (callable): (N, L, E) -> (B, L', E), the positions' sequences of one
            scope each (the identity for ``spacetime``); ``ungroup`` its inverse.
        chunk_size (int | None): keys per backward block, as in
            :func:`.pairwise.softmax_attention`.

    Returns:
        Tensor: (B, L', C') in ``group``'s layout, in autocast's dtype under autocast.
    """
    dtype = autocast_dtype(seq)
    if not records_grad(seq, *weights, *biases):
        qkv = group(project(seq, weights, biases, dtype))
        return fused_softmax_attention(*_unpack(qkv, weights), scale)
    return _ProjectedSoftmaxAttention.apply(seq, dtype, scale, (group, ungroup), chunk_size,
                                            *weights, *biases)


def _unpack(qkv, weights):
    """(B, L, 2D + C') -> query, key, value views, widths from the theta/phi/g weights."""
    return qkv.split([w.shape[0] for w in weights], dim=-1)


class _ProjectedSoftmaxAttention(torch.autograd.Function):

    @staticmethod
    def forward(ctx, seq, dtype, scale, grouping, chunk_size, *weights_and_biases):
        weights, biases = weights_and_biases[:3], weights_and_biases[3:]
        with torch.autocast(seq.device.type, enabled=False):
            qkv = grouping[0](project(seq, weights, biases, dtype))
            out, lse = fused_softmax_attention_with_lse(*_unpack(qkv, weights), scale)
        ctx.save_for_backward(seq, out, lse, *weights, *biases)
        ctx.dtype, ctx.scale, ctx.grouping, ctx.chunk_size = dtype, scale, grouping, chunk_size
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        seq, out, lse, *params = ctx.saved_tensors
        weights, biases = params[:3], params[3:]
        group, ungroup = ctx.grouping
        with torch.autocast(seq.device.type, enabled=False):
            acc_dtype = torch.promote_types(ctx.dtype, torch.float32)
            # The recomputed projection becomes its own gradient: dK and dV are
            # written over k and v chunk by chunk, dQ over q at the end.
            qkv = group(project(seq, weights, biases, ctx.dtype)).to(acc_dtype)
            q, k, v = _unpack(qkv, weights)
            grad_q = torch.empty_like(q)
            softmax_attention_backward(q, k, v, out, grad_out, lse, ctx.scale, ctx.chunk_size,
                                       grad_q, k, v)
            q.copy_(grad_q)
            del grad_q  # before projection_backward allocates the input gradient
            grad_qkv = ungroup(qkv.to(ctx.dtype))
            grad_seq, grad_weights, grad_biases = projection_backward(
                seq, weights, [b is not None for b in biases], grad_qkv, ctx.needs_input_grad[0])
        return (grad_seq, None, None, None, None, *grad_weights, *grad_biases)
