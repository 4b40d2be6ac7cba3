"""Several 1x1 convolutions of one input as one GEMM, without keeping their fused weight.

theta, phi and g read the same input; side by side they are one (B, L, C) x (C, sum C_k)
product. Built from ``torch.cat`` of the weights, autograd would keep that
concatenated copy for the backward: per non-local block as large as its weights
(1.5 C^2 values at C' = C/2), which across a video backbone's blocks outweighs what the
fusion saves. Here the backward concatenates again instead.
"""
import torch

from .common import autocast_dtype, records_grad


class _FusedProjection(torch.autograd.Function):

    @staticmethod
    def forward(ctx, seq, num_convs, *weights_and_biases):
        weights, biases = weights_and_biases[:num_convs], weights_and_biases[num_convs:]
        ctx.has_bias = [b is not None for b in biases]
        ctx.save_for_backward(seq, *weights)
        return project(seq, weights, biases, autocast_dtype(seq))

    @staticmethod
    def backward(ctx, grad):
        seq, *weights = ctx.saved_tensors
        grad_seq, grad_weights, grad_biases = projection_backward(
            seq, weights, ctx.has_bias, grad, ctx.needs_input_grad[0])
        return (grad_seq, None, *grad_weights, *grad_biases)


def project(seq, weights, biases, dtype):
    """The fused GEMM of (B, L, C) ``seq`` in ``dtype`` -> (B, L, sum C_k)."""
    with torch.autocast(seq.device.type, enabled=False):
        weight = _fused_weight(weights, dtype)
        bias = torch.cat([b if b is not None else weight.new_zeros(w.shape[0])
                          for w, b in zip(weights, biases)]).to(dtype)
        return torch.baddbmm(bias, seq.to(dtype), weight.t().expand(seq.shape[0], -1, -1))


def projection_backward(seq, weights, has_bias, grad, needs_seq_grad=True):
    """Gradients of :func:`project` from its output gradient (B, L, sum C_k).

    Returns:
        tuple: the gradient of ``seq`` (None unless ``needs_seq_grad``) and lists
        of the weights' and biases' gradients (None where a bias is None), each in
        its parameter's dtype.
    """
    with torch.autocast(grad.device.type, enabled=False):
        grad_seq = None
        if needs_seq_grad:
            weight = _fused_weight(weights, grad.dtype)
            grad_seq = torch.bmm(grad, weight.expand(grad.shape[0], -1, -1)).to(seq.dtype)
        grad_weight = torch.bmm(grad.transpose(1, 2), seq.to(grad.dtype)).sum(0)
        grad_bias = grad.sum((0, 1))
    sizes = [w.shape[0] for w in weights]
    grad_weights = [g.reshape(w.shape).to(w.dtype)
                    for g, w in zip(grad_weight.split(sizes), weights)]
    grad_biases = [g.to(w.dtype) if with_bias else None
                   for g, w, with_bias in zip(grad_bias.split(sizes), weights, has_bias)]
    return grad_seq, grad_weights, grad_biases


def _fused_weight(weights, dtype):
    return torch.cat([w.flatten(1) for w in weights]).to(dtype)


def fused_projection(seq, weights, biases):
    """The 1x1 convolutions (``weights[k]``, ``biases[k]``) of ``seq``, side by side.

    Without autograd recording (inference) the GEMM runs as it is, also to tracers
    such as ``tools/analysis/get_flops.py``.

    Args:
        seq (Tensor): (B, L, C), the positions of the input channel-last (any strides).
        weights (list[Tensor]): (C_k, C, 1, ...) convolution weights.
        biases (list[Tensor | None]): (C_k,) biases or None.

    Returns:
        Tensor: (B, L, sum C_k), the outputs in the order of ``weights``.
    """
    if records_grad(seq, *weights, *biases):
        return _FusedProjection.apply(seq, len(weights), *weights, *biases)
    return project(seq, weights, biases, autocast_dtype(seq))
