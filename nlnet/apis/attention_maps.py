"""Where a non-local block looks from one query: its weights over all frames.

The blocks' inputs are caught once per video (:func:`capture_block_inputs`);
a query's attention then needs only that block's embeddings and one row of
weights, f(x_i, x_j)/C(x) for the chosen i (``reference_weights``, Q x M),
so an interactive page answers a click without running the network again.
Coordinates are those of the model's input: ``(t, y, x)`` for video (clip
frame, pixel of the crop), ``(y, x)`` for images (pixel of the resized image).
"""
from dataclasses import dataclass

import numpy as np
import torch

from nlnet.visualization import BlockGeometry, non_local_blocks, query_attention, top_keys
from nlnet.visualization.attention import box_centre, strongest_queries

__all__ = ['QueryAttentionMap', 'capture_block_inputs', 'default_queries',
           'query_attention_map', 'test_step_with_block_inputs']


@torch.no_grad()
def test_step_with_block_inputs(model, data):
    """Run ``model.test_step(data)`` once and keep each non-local block's input.

    Args:
        model (nn.Module): a recognizer or segmentor.
        data (dict): a batch of one input, e.g. ``VideoInput.data``.

    Returns:
        tuple[list, dict[str, Tensor]]: ``test_step``'s data samples, and module
        path -> the block's input x, (V, C, *S) with V the views (1 for a single
        view); the last call's when a block runs more than once (a segmentor's
        sliding windows).
    """
    block_inputs = {}
    handles = [block.register_forward_pre_hook(
        lambda module, args, name=name: block_inputs.__setitem__(name, args[0].detach()))
        for name, block in non_local_blocks(model).items()]
    try:
        samples = model.test_step(data)
    finally:
        for handle in handles:
            handle.remove()
    return samples, block_inputs


def capture_block_inputs(model, data):
    """module path -> input x of each non-local block of ``model`` on ``data``
    (:func:`test_step_with_block_inputs` without the samples)."""
    return test_step_with_block_inputs(model, data)[1]


@dataclass
class QueryAttentionMap:
    """One query's attention in one block.

    Attributes:
        query (list[float]): the query, in input coordinates.
        query_index (int): its cell on the block's query grid (flat).
        query_box (list[list[float]]): [start, stop) of that cell per input axis.
        weights (Tensor): (M,) f(x_i, x_j)/C(x) over the key grid (flat), on the CPU.
        heat (np.ndarray): the weights spread over the input, shape ``input_size``
            ((T, H, W) or (H, W)): each position holds the weight of the key cell
            it falls in (0 where max pooling dropped the remainder).
        keys (list[dict]): the top keys, heaviest first (:func:`top_keys`).
        geometry (BlockGeometry): the block's grids over the input.
    """
    query: list
    query_index: int
    query_box: list
    weights: torch.Tensor
    heat: np.ndarray
    keys: list
    geometry: BlockGeometry


def query_attention_map(block, x, query, input_size, topk=10):
    """The attention of ``block`` from input position ``query`` (view 0 of ``x``).

    Args:
        block (NonLocalBlock): the block, in eval mode.
        x (Tensor): (V, C, *S), its input from :func:`capture_block_inputs`.
        query (Sequence[float]): ``(t, y, x)`` or ``(y, x)`` in input coordinates.
        input_size (Sequence[int]): the model input's ``(T, H, W)`` or ``(H, W)``.
        topk (int): keys listed in ``keys``.

    Returns:
        QueryAttentionMap

    Raises:
        ValueError: a query outside the input or with the wrong number of
            coordinates (the message names it and the input size).
    """
    geometry = BlockGeometry(block, x.shape[2:], input_size)
    index = geometry.query_index(query)
    weights = query_attention(block, x, [index])[0].float().cpu()
    key_map = geometry.key_index_map()
    heat = weights[key_map.clamp(min=0)].masked_fill(key_map < 0, 0).numpy()
    return QueryAttentionMap(
        query=[float(value) for value in query], query_index=index,
        query_box=geometry.query_box(index), weights=weights, heat=heat,
        keys=top_keys(weights, geometry, topk), geometry=geometry)


def default_queries(block, x, input_size, num_queries=2):
    """The centres of the ``num_queries`` cells where the block changes the features
    most (as ``tools/analysis/visualize_attention.py`` picks them), in input coordinates."""
    geometry = BlockGeometry(block, x.shape[2:], input_size)
    return [box_centre(geometry.query_box(index))
            for index in strongest_queries(block, x[:1], num_queries)]
