"""W_z followed by BatchNorm on batch statistics, keeping W_z's input instead of its output.

The block's output branch is BN(W_z y). On batch statistics BN's backward needs the
normalised W_z y, so autograd keeps W_z's output (C channels per position, twice y's
C' = C/2) until the backward, and PyTorch's CPU BatchNorm backward allocates a second
buffer of that size. Here the backward computes W_z y again from y, which W_z's own
weight gradient needs anyway (one GEMM of C C' L multiply-adds), normalises it in place
and turns it into the gradient there: two activation-sized tensors (C values per
position each) less at the backward's BN step.
"""
import torch
from torch.autograd.function import once_differentiable


def output_batch_norm(y, weight, bias, norm, out_shape):
    """norm(W_z y + b) with ``norm`` on batch statistics, updating its running statistics.

    Computes what ``norm(conv(y))`` computes for a ``torch.nn.BatchNorm1d/2d/3d`` in
    training mode (or without running statistics): the output, the gradients, and the
    running mean, unbiased running variance and ``num_batches_tracked`` updates,
    ``momentum=None`` (a cumulative average) included.

    Args:
        y (Tensor): (B, L, C'), the aggregated features in flat grid order (any strides).
        weight (Tensor): (C, C', 1, ...) W_z's convolution weight.
        bias (Tensor | None): (C,) W_z's bias.
        norm (torch.nn.modules.batchnorm._BatchNorm): the BatchNorm after W_z.
        out_shape (tuple[int]): (B, C, *S) with prod(S) = L, the block input's shape.

    Returns:
        Tensor: ``out_shape``, a tensor of its own (not a view), so that the residual
        can be added into it in place.
    """
    if norm.training and y.shape[0] * y.shape[1] == 1:
        raise ValueError('Expected more than 1 value per channel when training, got input '
                         f'size {tuple(out_shape)}')
    out, mean, var = _OutputBatchNorm.apply(y, weight.flatten(1), bias, norm.weight, norm.bias,
                                            norm.eps, tuple(out_shape))
    if norm.training and norm.track_running_stats:
        _update_running_stats(norm, mean, var, num_values=y.shape[0] * y.shape[1])
    return out


def _update_running_stats(norm, mean, var, num_values):
    """The running-statistics update of ``torch.nn.BatchNorm`` from one batch's statistics."""
    with torch.no_grad():
        factor = norm.momentum
        if norm.num_batches_tracked is not None:
            norm.num_batches_tracked.add_(1)
            if norm.momentum is None:
                factor = 1.0 / float(norm.num_batches_tracked)
        if norm.running_mean is None:
            return
        unbiased_var = var * (num_values / (num_values - 1))
        norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), factor)
        norm.running_var.lerp_(unbiased_var.to(norm.running_var.dtype), factor)


def sequence_conv(y, weight, bias, out=None):
    """The 1x1 convolution W y + b of a channel-last sequence, channel-first:
    (B, L, C') with weight (C, C') and bias (C,) or None -> (B, C, L), into ``out``
    where given."""
    weight = weight.expand(y.shape[0], -1, -1)
    if bias is None:
        return torch.bmm(weight, y.transpose(1, 2), out=out)
    return torch.baddbmm(bias[:, None], weight, y.transpose(1, 2), out=out)


def _channel_dot(a, b):
    """sum over batch and positions of a * b per channel, for (B, C, L) tensors, a few
    channels at a time: the products stay near 2**20 elements instead of a full copy."""
    channels_per_block = max(1, 2**20 // (a.shape[0] * a.shape[2]))
    return torch.cat([(a[:, c:c + channels_per_block] * b[:, c:c + channels_per_block]).sum((0, 2))
                      for c in range(0, a.shape[1], channels_per_block)])


class _OutputBatchNorm(torch.autograd.Function):

    @staticmethod
    def forward(ctx, y, weight, bias, gamma, beta, eps, out_shape):
        out = y.new_empty(out_shape)
        seq = sequence_conv(y, weight, bias, out.view(y.shape[0], weight.shape[0], y.shape[1]))
        # Two passes, as PyTorch's CPU BatchNorm: the mean, then the centred squares
        # (var_mean itself is slower on CPU).
        num_values = seq.shape[0] * seq.shape[2]
        mean = seq.sum(2).sum(0) / num_values
        seq.sub_(mean[:, None])
        var = _channel_dot(seq, seq) / num_values
        invstd = torch.rsqrt(var + eps)
        scale = invstd if gamma is None else invstd * gamma
        if beta is None:
            seq.mul_(scale[:, None])
        else:
            torch.addcmul(beta[:, None], seq, scale[:, None], out=seq)
        ctx.save_for_backward(y, weight, bias, gamma, mean, invstd)
        ctx.has_beta = beta is not None
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        y, weight, bias, gamma, mean, invstd = ctx.saved_tensors
        batch, num_positions = y.shape[:2]
        num_values = batch * num_positions
        grad_out = grad_out.reshape(batch, weight.shape[0], num_positions)
        # The normalised values in one GEMM: (invstd W) y + invstd (b - mean).
        centred_bias = -mean if bias is None else bias - mean
        normalised = sequence_conv(y, weight * invstd[:, None], centred_bias * invstd,
                           y.new_empty(grad_out.shape))
        grad_beta = grad_out.sum((0, 2))
        grad_gamma = _channel_dot(grad_out, normalised)
        # d(W_z y + b) = scale (dz - mean(dz) - normalised mean(dz normalised)), with
        # scale = gamma invstd, written over the normalised values in two passes.
        scale = invstd if gamma is None else invstd * gamma
        grad_conv = torch.addcmul((-scale * grad_beta / num_values)[:, None], normalised,
                                  (-scale * grad_gamma / num_values)[:, None], out=normalised)
        grad_conv.addcmul_(grad_out, scale[:, None])
        grad_y = torch.bmm(grad_conv.transpose(1, 2), weight.expand(batch, -1, -1))
        grad_weight = torch.bmm(grad_conv, y).sum(0)
        grad_bias = grad_conv.sum((0, 2)) if bias is not None else None
        return (grad_y, grad_weight, grad_bias, grad_gamma if gamma is not None else None,
                grad_beta if ctx.has_beta else None, None, None)
