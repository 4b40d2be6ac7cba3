"""The non-local block's forward in ops that ONNX expresses: route ``exported``.

:meth:`~nlnet.ops.NonLocalBlock.route` picks it while ``torch.onnx.export`` traces
the block (either exporter: ``torch.onnx.is_in_onnx_export()``). The other routes
run custom autograd Functions (a ``PythonOp`` the TorchScript exporter cannot
convert), ``aten::searchsorted`` (no ONNX op) or PyTorch's CPU flash-attention op,
and choose among themselves by the input's size, which would fix the sizes of an
exported graph. This one is the inference forward in plain ops, the same for every
size, so an ONNX graph may keep the batch (and time) axes dynamic:

- embeddings and W_z with its norm: the block's own convolution modules (ONNX
  ``Conv``, ``MaxPool``, ``BatchNormalization``), as :mod:`.reference` applies them;
- (embedded) Gaussian: MatMul, Softmax, MatMul (the dynamo exporter takes
  ``scaled_dot_product_attention`` only on 4D heads, and both exporters decompose
  it so anyway): onnxruntime holds the (B, N, M) weights, N M values per sequence;
- dot product: keys first, (K^T V) / M, O((N + M) D C') and no N x M tensor;
- concatenation: :func:`merged_concatenation`, ReLU(a_i + b_j) by one sort of keys
  and queries together, O((N + M) C') memory and no ``searchsorted``.
"""
import torch

from .reference import _embeddings, _feature_map, _scope_sequences


def exported_forward(block, x):
    """z = norm(W_z y) + x of ``block`` on ``x`` in ONNX-expressible ops.

    Args:
        block (NonLocalBlock): any mode, scope and sub-sampling.
        x (Tensor): (N, C, *S), the block's input.

    Returns:
        Tensor: (N, C, *S).
    """
    query, key, value = (_scope_sequences(t, block.scope) for t in _embeddings(block, x))
    if block.mode in ('gaussian', 'embedded_gaussian'):
        logits = (query @ key.transpose(1, 2)) * block._softmax_scale()
        y = logits.softmax(dim=-1) @ value
    elif block.mode == 'dot_product':
        y = query @ ((key.transpose(1, 2) @ value) / key.shape[1])
    else:
        w_theta, w_phi = block._concat_weights()
        # Products and sums, not ``query @ w_theta``: onnxruntime 1.32's MatmulTransposeFusion
        # folds the transpose before a MatMul by a vector wrongly (outputs off by O(1)).
        y = merged_concatenation((query * w_theta).sum(-1), (key * w_phi).sum(-1), value)
    return x + block.conv_out(_feature_map(y, block.scope, x))


def merged_concatenation(query_proj, key_proj, value):
    """Concatenation: y_i = 1/M sum_j ReLU(a_i + b_j) v_j, with one sort and no N x M tensor.

    ReLU(a_i + b_j) is non-zero exactly when b_j > -a_i, so y_i = 1/M sum over those
    keys of (a_i v_j + b_j v_j). The keys b_j and the thresholds -a_i are sorted
    together; a suffix sum over that order of the keys' [v_j, b_j v_j] (zero for the
    queries) read at each query's position sums exactly the keys above its threshold.
    Where b_j = -a_i the term is (a_i + b_j) v_j = 0 whichever side of the query the
    key sorts, so ties need no rule. Ops: sort (ONNX ``TopK``), gather, scatter,
    cumulative sum, flip; O((N + M) log(N + M)) time and O((N + M) C') memory.

    Args:
        query_proj (Tensor): (B, N), a_i = w_theta . theta(x_i).
        key_proj (Tensor): (B, M), b_j = w_phi . phi(x_j).
        value (Tensor): (B, M, C'), g(x_j).

    Returns:
        Tensor: (B, N, C').
    """
    batch, num_keys, channels = value.shape
    num_queries = query_proj.shape[1]
    order = torch.sort(torch.cat([key_proj, -query_proj], dim=1), dim=1).indices
    payload = torch.cat([torch.cat([value, key_proj.unsqueeze(-1) * value], dim=-1),
                         value.new_zeros(batch, num_queries, 2 * channels)], dim=1)
    sorted_payload = torch.gather(payload, 1, order.unsqueeze(-1).expand(-1, -1, 2 * channels))
    suffix = sorted_payload.flip(1).cumsum(1).flip(1)
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    position_of = torch.empty_like(order).scatter(1, order, positions)
    picked = torch.gather(suffix, 1,
                          position_of[:, num_keys:].unsqueeze(-1).expand(-1, -1, 2 * channels))
    sum_v, sum_bv = picked.split(channels, dim=-1)
    return (query_proj.unsqueeze(-1) * sum_v + sum_bv) / num_keys
