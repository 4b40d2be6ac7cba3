"""Exact softmax attention, y_i = sum_j softmax_j(scale q_i . k_j) v_j, without the N x M matrix.

The (embedded) Gaussian forms of the block, Eq. 2 and 3. The functions take a
batch of query/key/value sequences:

- ``query``: (B, N, D) - theta(x_i) (or x_i for the plain Gaussian),
- ``key``:   (B, M, D) - phi(x_j),
- ``value``: (B, M, C') - g(x_j),

and return ``y`` of shape (B, N, C'). ``B`` folds the batch and, for restricted
scopes, the frames (``space``) or the spatial positions (``time``).

The forward is always ``F.scaled_dot_product_attention``. The backward is either
its own (``backward='native'``: PyTorch's fused flash / memory-efficient kernels
on CUDA, which keep no N x M matrix either) or :class:`_SoftmaxAttention`'s, which
recomputes the weights block by block as plain GEMMs (``'chunked'``: the CPU
route, where it was measured faster than PyTorch's fused CPU backward).

:func:`projected_softmax_attention` is the chunked route for the embedded Gaussian
without sub-sampling, where theta, phi and g are one fused projection of the
block's input (:mod:`.projection`) into a (B, L, 2D + C') tensor. Autograd would
keep that tensor from the forward to the backward: 1.5 times the input at the
default D = C' = C/2. Its Function keeps the input instead, which the caller holds
anyway, projects it again in the backward (3 GEMMs of L C (2D + C') multiply-adds,
linear in L where the attention's backward is quadratic) and writes dK and dV over
the recomputed keys and values once a key chunk is done with them.
"""
import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .common import autocast_dtype, flush_threshold, records_grad
from .projection import project, projection_backward

# Elements of one block of the backward (batch x queries x key chunk, or batch x query
# chunk x keys): small next to any affinity matrix worth avoiding. Blocks over key
# chunks get 1.5 times that: each re-reads and re-writes the whole (N, D) dQ, so fewer,
# larger key chunks pay for themselves (both sizes chosen by timing the backward).
_CHUNK_ELEMENTS = 2**20
_KEY_CHUNK_ELEMENTS = 3 * 2**19


def softmax_attention(query, key, value, scale, backward='chunked', chunk_size=None):
    """(Embedded) Gaussian: y_i = sum_j softmax_j(scale * q_i . k_j) v_j.

    The forward is ``F.scaled_dot_product_attention``, whose fused CPU/CUDA
    kernels never form the N x M weights. They need unit channel stride and one
    common width, so ``query``/``key`` or ``value`` is zero-padded there to the
    larger of D and C' (zero channels add nothing to q.k and give zero outputs
    that are dropped). With ``backward='native'`` autograd differentiates it
    (PyTorch's fused backward). The chunked backward (:class:`_SoftmaxAttention`)
    recomputes the weights for ``chunk_size`` keys (or queries) at a time from the unpadded q,
    k, v and the forward's log-sum-exp of each query, so only O((N + M) D) is
    kept between the passes and it runs as plain GEMMs.
    Unlike PyTorch's fused CPU backward, it flushes the subnormal weights of a
    peaked softmax (the plain Gaussian on raw features), which x86 CPUs
    otherwise compute in slow microcode assists (:func:`.common.flush_threshold`).

    Both passes accumulate the logits and the softmax in float32 at least: the
    fused forward kernels do for float16/bfloat16 inputs, and the backward
    computes in float32 for them. Under autocast the inputs are cast to its
    dtype as autocast would cast them for ``scaled_dot_product_attention``.

    Args:
        query (Tensor): (B, N, D).
        key (Tensor): (B, M, D).
        value (Tensor): (B, M, C').
        scale (float): factor on the logits.
        backward (str): ``'chunked'`` or ``'native'``, see above.
        chunk_size (int | None): keys (or queries) per chunked backward block;
            ``None`` keeps a block near ``_KEY_CHUNK_ELEMENTS`` (or
            ``_CHUNK_ELEMENTS``) elements.

    Returns:
        Tensor: (B, N, C').
    """
    dtype = autocast_dtype(query, key, value)
    with torch.autocast(query.device.type, enabled=False):
        query, key, value = query.to(dtype), key.to(dtype), value.to(dtype)
        if backward == 'native' or not records_grad(query, key, value):
            return fused_softmax_attention(query, key, value, scale)  # also to tracers
        return _SoftmaxAttention.apply(query, key, value, scale, chunk_size)


def fused_softmax_attention(query, key, value, scale):
    """``F.scaled_dot_product_attention`` on (B, N, D), (B, M, D), (B, M, C') -> (B, N, C')."""
    query, key, value, channels = _fused_kernel_inputs(query, key, value)
    return F.scaled_dot_product_attention(query, key, value, scale=scale).squeeze(1)[..., :channels]


def fused_softmax_attention_with_lse(query, key, value, scale):
    """The fused attention and the log-sum-exp of each query's logits, (B, N).

    PyTorch's CPU flash kernel returns both; on other devices the log-sum-exp
    takes one more chunked pass over the logits, and so it does for float64 under
    ``torch.compile``: up to torch 2.10 the kernel's fake (meta) function declares a
    float32 log-sum-exp where the kernel returns float64, and inductor's code then
    reads the float64 values as float32 (pytorch/pytorch#185539, fixed by #185573).
    """
    if query.device.type != 'cpu' or (query.dtype == torch.float64
                                      and torch.compiler.is_compiling()):
        rows_per_block = max(1, _CHUNK_ELEMENTS // (key.shape[0] * key.shape[1]))
        return (fused_softmax_attention(query, key, value, scale),
                _log_sum_exp(query, key, scale, rows_per_block))
    query, key, value, channels = _fused_kernel_inputs(query, key, value)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
        query, key, value, 0.0, False, attn_mask=None, scale=scale)
    return out.squeeze(1)[..., :channels], lse.squeeze(1)


def _fused_kernel_inputs(query, key, value):
    """(B, 1, L, E) heads of one common width E for the fused kernels, and C'."""
    width, channels = query.shape[-1], value.shape[-1]
    if width < channels:
        query = F.pad(query, (0, channels - width))
        key = F.pad(key, (0, channels - width))
    elif channels < width:
        value = F.pad(value, (0, width - channels))
    heads = [_unit_channel_stride(t).unsqueeze(1) for t in (query, key, value)]
    return (*heads, channels)


def _unit_channel_stride(seq):
    """``seq`` itself when its channels are adjacent in memory (all the fused kernels
    need; rows may be strided, e.g. slices of one fused projection), else a copy."""
    return seq if seq.stride(-1) == 1 else seq.contiguous()


def _log_sum_exp(query, key, scale, chunk):
    """log sum_j exp(scale q_i . k_j) for (B, N, D) queries and (B, M, D) keys -> (B, N),
    ``chunk`` queries at a time, in float32 at least."""
    query, key = (t.to(torch.promote_types(t.dtype, torch.float32)) for t in (query, key))
    lse = query.new_empty(query.shape[:2])
    for start in range(0, query.shape[1], chunk):
        rows = slice(start, start + chunk)
        logits = torch.baddbmm(query.new_zeros(()), query[:, rows], key.transpose(1, 2),
                               beta=0, alpha=scale)
        lse[:, rows] = torch.logsumexp(logits, -1)
    return lse


class _SoftmaxAttention(torch.autograd.Function):
    """Fused softmax attention whose backward recomputes the weights block by block
    (:func:`softmax_attention_backward`)."""

    @staticmethod
    def forward(ctx, query, key, value, scale, chunk_size):
        out, lse = fused_softmax_attention_with_lse(query, key, value, scale)
        ctx.save_for_backward(query, key, value, out, lse)
        ctx.scale = scale
        ctx.chunk_size = chunk_size
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        query, key, value, out, lse = ctx.saved_tensors
        acc_dtype = torch.promote_types(query.dtype, torch.float32)
        q, k, v = (t.to(acc_dtype) for t in (query, key, value))
        # Row-major whatever the inputs' strides: the plain Gaussian's q and k are x seen
        # channel-last, and the blocks write rows of dK (and accumulate all of dQ), which
        # in x's channel-major layout are strided scatters.
        grads = [torch.empty_like(t, memory_format=torch.contiguous_format) for t in (q, k, v)]
        softmax_attention_backward(q, k, v, out, grad_out, lse, ctx.scale, ctx.chunk_size, *grads)
        return (*(g.to(t.dtype) for g, t in zip(grads, (query, key, value))), None, None)


def softmax_attention_backward(q, k, v, out, grad_out, lse, scale, chunk_size, grad_q, grad_k,
                               grad_v):
    """Gradients of softmax attention from its inputs, output and log-sum-exp, in place.

    With lse_i the log-sum-exp of query i's logits, the weights of any block of
    queries x keys are exact on their own, P = exp(scale Q K^T - lse); with
    delta_i = dy_i . y_i the gradients are

        dV = sum P^T dY,   dS = P * (dY V^T - delta),
        dK = scale sum dS^T Q,   dQ = scale sum dS K.

    The blocks span all queries and a chunk of keys, or all keys and a chunk of
    queries, whichever leaves the smaller gradient to accumulate over the loop
    (:func:`_loops_over_keys`); the other gradients are written once per block.
    Looping over keys, a chunk's keys and values are not read again once its
    block is done, so ``grad_k`` and ``grad_v`` may be ``k`` and ``v`` themselves.

    Args:
        q, k, v (Tensor): (B, N, D), (B, M, D), (B, M, C') in float32 or wider.
        out, grad_out (Tensor): y and dy, (B, N, C').
        lse (Tensor): (B, N) log-sum-exp of each query's scaled logits.
        scale (float): factor on the logits.
        chunk_size (int | None): keys (or queries) per block; ``None`` keeps a
            block near ``_KEY_CHUNK_ELEMENTS`` (or ``_CHUNK_ELEMENTS``) elements.
        grad_q, grad_k, grad_v (Tensor): written with dQ, dK, dV (q's dtype).
    """
    batch, num_queries, width = q.shape
    num_keys, channels = v.shape[1:]
    blocks = _WeightBlocks(q, k, v, grad_out.to(q.dtype), lse, out.to(q.dtype), scale)
    over_keys = _loops_over_keys(num_queries, num_keys, width, channels)
    if not over_keys and (grad_k is k or grad_v is v):
        raise ValueError('grad_k/grad_v may be k/v only where the blocks loop over keys '
                         f'(N * D <= M * (D + C\'), got N={num_queries}, M={num_keys}, '
                         f'D={width}, C\'={channels})')
    loop_length, span = (num_keys, num_queries) if over_keys else (num_queries, num_keys)
    elements = _KEY_CHUNK_ELEMENTS if over_keys else _CHUNK_ELEMENTS
    chunk = chunk_size or max(1, elements // (batch * span))
    for start in range(0, loop_length, chunk):
        part = slice(start, start + chunk)
        accumulate = 0 if start == 0 else 1  # beta: the first block overwrites
        if over_keys:
            weights, grad_s = blocks(slice(None), part)
            grad_q.baddbmm_(grad_s, k[:, part], beta=accumulate)
            grad_v[:, part] = torch.bmm(weights.transpose(1, 2), blocks.dy)
            grad_k[:, part] = torch.bmm(grad_s.transpose(1, 2), q)
        else:
            weights, grad_s = blocks(part, slice(None))
            grad_v.baddbmm_(weights.transpose(1, 2), blocks.dy[:, part], beta=accumulate)
            grad_k.baddbmm_(grad_s.transpose(1, 2), q[:, part], beta=accumulate)
            grad_q[:, part] = torch.bmm(grad_s, k)
    grad_q.mul_(scale)
    grad_k.mul_(scale)


def _loops_over_keys(num_queries, num_keys, width, channels):
    """Whether the backward's blocks run over key chunks (accumulating dQ, N x D) rather
    than query chunks (accumulating dK and dV, M x (D + C'))."""
    return num_queries * width <= num_keys * (width + channels)


class _WeightBlocks:
    """The weights P and dS of a block of queries x keys for the backward, float32 at least.

    Weights under :func:`.common.flush_threshold` are zeroed (subnormals); logits are
    clamped first so that exp itself never returns a subnormal.
    """

    def __init__(self, q, k, v, dy, lse, y, scale):
        self.q, self.k, self.v, self.dy, self.scale = q, k, v, dy, scale
        self.neg_lse = lse.to(q.dtype).neg().unsqueeze(-1)
        self.neg_delta = torch.einsum('bnc,bnc->bn', dy, y).neg_().unsqueeze(-1)
        self.flush_below = flush_threshold(q.dtype)
        self.lowest_logit = math.log(self.flush_below) - 1
        self.buffers = None

    def __call__(self, rows, cols):
        """P and dS, (B, rows, cols), in two buffers reused from block to block, the last
        (smaller) one included (fresh multi-MiB blocks cost page faults and memory)."""
        q, dy, k, v = self.q[:, rows], self.dy[:, rows], self.k[:, cols], self.v[:, cols]
        size = (q.shape[0], q.shape[1], k.shape[1])
        numel = math.prod(size)
        if self.buffers is None or self.buffers[0].numel() < numel:
            self.buffers = (q.new_empty(numel), q.new_empty(numel))
        weights, grad_s = (buffer[:numel].view(size) for buffer in self.buffers)
        torch.baddbmm(self.neg_lse[:, rows].expand(size), q, k.transpose(1, 2),
                      alpha=self.scale, out=weights).clamp_min_(self.lowest_logit).exp_()
        F.threshold_(weights, self.flush_below, 0.0)
        torch.baddbmm(self.neg_delta[:, rows].expand(size), dy, v.transpose(1, 2),
                      out=grad_s).mul_(weights)
        return weights, grad_s


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
            :func:`softmax_attention`.

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
