"""The dot product, y_i = 1/M sum_j (theta_i . phi_j) g_j, without the N x M matrix.

:func:`dot_product_attention` sums the keys first (associativity). :func:`folded_dot_product`
also folds the 1x1 convolutions into one C x C map and gives the branch W_z y:
with theta, phi and g affine (x -> W x + b), the dot-product aggregation is linear
in the queries' inputs once the keys are summed up:

    y_i = 1/M sum_j (theta_i . phi_j) g_j = A^T theta_i,   A = 1/M sum_j phi_j g_j^T,

and A depends on the key inputs only through their mean outer product. Writing
x~ = [x; 1] and W~ = [W | b]:

    A = W~_phi G~ W~_g^T,   G~ = 1/M sum_j x~_j x~_j^T,
    W_z y_i + b_z = K~ x~_i + b_z,   K~ = W_z A^T W~_theta.

So the branch costs one (C+1) x (C+1) Gram matrix of the key inputs and one
C x C map of the query inputs, whatever the bottleneck width: for C' = C/2 about
two thirds of the multiply-adds of projecting theta, phi and g, and no (N, C')
embedding is formed or kept for backward. :func:`folding_saves_work` says when
it is cheaper than the explicit form.
"""
import torch

from .common import records_grad


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


class _AugmentedMeanGram(torch.autograd.Function):
    """:func:`_augmented_mean_gram` whose backward is one GEMM over the inputs: with
    S = dG~ + dG~^T, dx_j = (S[:C, :C] x_j + S[:C, C]) / M."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _augmented_mean_gram(x)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        channels, num_keys = x.shape[1:]
        sym = grad + grad.transpose(1, 2)
        return torch.baddbmm(sym[:, :channels, channels:], sym[:, :channels, :channels], x,
                             beta=1 / num_keys, alpha=1 / num_keys)


def _augmented_mean_gram(x):
    """(B, C, M) -> G~ = 1/M sum_j x~_j x~_j^T, (B, C + 1, C + 1), with x~ = [x; 1]."""
    batch, channels, num_keys = x.shape
    # alpha divides in the GEMM's accumulator: the sum itself may leave float16's range.
    gram = torch.baddbmm(x.new_zeros(()).expand(batch, channels, channels), x, x.transpose(1, 2),
                         beta=0, alpha=1 / num_keys)
    means = x.mean(-1)
    # Assembled by cat, not written into slices of one buffer: torch.compile traces no
    # GEMM whose out= is a strided view (a graph break per call).
    return torch.cat([torch.cat([gram, means[:, :, None]], dim=2),
                      torch.cat([means, means.new_ones(batch, 1)], dim=1)[:, None]], dim=1)


def _augmented(weight, bias):
    """[W | b], (C_out, C + 1): the affine map of an input with a trailing 1 appended."""
    if bias is None:
        bias = weight.new_zeros(weight.shape[0])
    return torch.cat([weight, bias[:, None]], dim=1)


def folded_dot_product(query_input, key_input, theta, phi, g, out_weight, out_bias=None):
    """W_z y + b_z of the dot-product non-local block, from the inputs of theta and phi/g.

    Args:
        query_input (Tensor): (B, C, N), what theta embeds (the block's input).
        key_input (Tensor): (B, C, M), what phi and g embed (the input, or the
            input max-pooled for sub-sampling).
        theta, phi, g (tuple[Tensor, Tensor | None]): each a 1x1 convolution as
            (weight (C', C), bias (C',) or None).
        out_weight (Tensor): W_z, (C_out, C').
        out_bias (Tensor | None): b_z, (C_out,).

    Returns:
        Tensor: (B, C_out, N).
    """
    channels = key_input.shape[1]
    # Without autograd recording the plain ops run, also to tracers (get_flops).
    gram = (_AugmentedMeanGram.apply(key_input) if records_grad(key_input) else
            _augmented_mean_gram(key_input))
    context = _augmented(*phi) @ gram @ _augmented(*g).t()  # (B, C', C'), = A
    kernel = out_weight @ context.transpose(1, 2) @ _augmented(*theta)  # (B, C_out, C + 1)
    bias = kernel[..., channels:]
    if out_bias is not None:
        bias = bias + out_bias[:, None]
    return torch.baddbmm(bias, kernel[..., :channels], query_input)


def folding_saves_work(channels, inter_channels, num_queries, num_keys):
    """Whether :func:`folded_dot_product` needs fewer multiply-adds for a forward and
    backward than projecting theta (N), phi and g (M) to C' channels, per sequence.

    The folded form does C^2 (3N + 2M) and a fixed 6 C C' (C + C') for its small
    matrices; the explicit one about three times its forward, C' (2C + C') (N + M).
    """
    c, d = channels, inter_channels
    folded = c * c * (3 * num_queries + 2 * num_keys) + 6 * c * d * (c + d)
    explicit = 3 * d * (2 * c + d) * (num_queries + num_keys)
    return folded < explicit
