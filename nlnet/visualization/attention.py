"""The attention of chosen queries of a non-local block, in the input's coordinates.

A block sees its input x on a feature grid S (T x H x W for video, H x W for
images) and, when it sub-samples, compares each query with the M positions of a
max-pooled key grid. The weights f(x_i, x_j)/C(x) are those of
:func:`~nlnet.ops.reference.reference_weights` for the Q chosen
queries only (Q x M), so a Cityscapes-size head or a long clip fits on a CPU.

Input coordinates are the model's input after its test pipeline and data
preprocessor: ``(t, y, x)`` for video (t the frame of the clip, y and x pixels
of the crop), ``(y, x)`` for images. A feature cell stands for the input region
it covers when the feature grid is stretched over the input (input size / grid
size per axis); a pooled key cell for the union of the cells it pools.
"""
import math

import torch

from nlnet.ops import NonLocalBlock
from nlnet.ops.reference import reference_weights

AXIS_NAMES = {2: ('y', 'x'), 3: ('t', 'y', 'x')}


def non_local_blocks(model):
    """{module path: block} of every :class:`NonLocalBlock` in ``model``, in module order."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, NonLocalBlock)}


class BlockGeometry:
    """How a block's query grid and key grid sit over the model's input.

    Args:
        block (NonLocalBlock): a 2D or 3D block.
        grid (tuple[int]): S, the spatial (and temporal) shape of the block's input.
        input_size (tuple[int]): the model input's shape over the same axes,
            (T, H, W) for video, (H, W) for images.
    """

    def __init__(self, block, grid, input_size):
        if block.dim not in AXIS_NAMES:
            raise ValueError(f'block dim must be one of {sorted(AXIS_NAMES)} to map it to an '
                             f'image or a video, got dim={block.dim}')
        if len(grid) != block.dim or len(input_size) != block.dim:
            raise ValueError(f'grid {tuple(grid)} and input_size {tuple(input_size)} must each '
                             f'have dim={block.dim} entries')
        self.axes = AXIS_NAMES[block.dim]
        self.grid = tuple(int(s) for s in grid)
        self.input_size = tuple(int(s) for s in input_size)
        self.scale = tuple(i / g for i, g in zip(self.input_size, self.grid))
        # Max pooling with stride = kernel drops the remainder, as in the block.
        self.pool_kernel = tuple(block.pool_kernel) if block.sub_sample else (1, ) * block.dim
        self.key_grid = tuple(s // k for s, k in zip(self.grid, self.pool_kernel))

    @property
    def num_keys(self):
        return math.prod(self.key_grid)

    def query_index(self, coords):
        """Flat index on the query grid of the cell that holds input position ``coords``.

        Raises:
            ValueError: a coordinate outside the input, naming it and the input size.
        """
        if len(coords) != len(self.axes):
            raise ValueError(f'query {tuple(coords)} must have {len(self.axes)} coordinates '
                             f'({",".join(self.axes)})')
        cell = []
        for axis, value, size, scale in zip(self.axes, coords, self.input_size, self.scale):
            if not 0 <= value < size:
                shape = 'x'.join(map(str, self.input_size))
                raise ValueError(f'query {tuple(coords)}: {axis}={value} is outside the input '
                                 f'(0 <= {axis} < {size}; input {shape})')
            cell.append(int(value // scale))
        return _flat(cell, self.grid)

    def query_box(self, index):
        """[start, stop) input bounds per axis of query cell ``index``."""
        cell = _unflat(index, self.grid)
        return [[c * s, (c + 1) * s] for c, s in zip(cell, self.scale)]

    def key_box(self, index):
        """[start, stop) input bounds per axis of the input region pooled into key ``index``."""
        cell = _unflat(index, self.key_grid)
        return [[c * k * s, (c + 1) * k * s]
                for c, k, s in zip(cell, self.pool_kernel, self.scale)]

    def key_index_map(self):
        """(input_size) long tensor: the key cell each input position falls in (-1 where
        max pooling dropped the remainder)."""
        per_axis = []
        for size, scale, kernel, keys in zip(self.input_size, self.scale, self.pool_kernel,
                                             self.key_grid):
            cell = (torch.arange(size) // scale).long() // kernel
            per_axis.append(torch.where(cell < keys, cell, torch.full_like(cell, -1)))
        index = torch.zeros(self.input_size, dtype=torch.long)
        valid = torch.ones(self.input_size, dtype=torch.bool)
        stride = 1
        for axis in reversed(range(len(per_axis))):
            shape = [1] * len(per_axis)
            shape[axis] = -1
            cell = per_axis[axis].view(shape)
            index = index + cell.clamp(min=0) * stride
            valid = valid & (cell >= 0)
            stride *= self.key_grid[axis]
        return torch.where(valid, index, torch.full_like(index, -1))


def _flat(cell, grid):
    index = 0
    for c, size in zip(cell, grid):
        index = index * size + c
    return index


def _unflat(index, grid):
    cell = []
    for size in reversed(grid):
        index, c = divmod(int(index), size)
        cell.append(c)
    return cell[::-1]


def box_centre(box):
    """Centre of a [start, stop) box per axis, in pixel-centre convention (a pixel p is p)."""
    return [(start + stop) / 2 - 0.5 for start, stop in box]


@torch.no_grad()
def strongest_queries(block, x, num_queries):
    """Flat query-grid indices of the ``num_queries`` positions of sample 0 where the block
    changes the features most, i.e. where |W_z y| (the block's output minus its input)
    has the largest norm over channels.

    Args:
        block (NonLocalBlock): the block, in eval mode.
        x (Tensor): (N, C, *S), the block's input.
        num_queries (int): Q, at most prod(S).
    """
    change = (block(x) - x)[0].flatten(1).norm(dim=0)
    return change.topk(min(num_queries, change.numel())).indices.tolist()


@torch.no_grad()
def query_attention(block, x, query_index):
    """f(x_i, x_j)/C(x) of sample 0 for the chosen queries: (Q, M), float64 when x is.

    Args:
        block (NonLocalBlock): any mode, scope and sub-sampling.
        x (Tensor): (N, C, *S), the block's input; only sample 0 is used.
        query_index (list[int]): Q flat indices into S.
    """
    return reference_weights(block, x[:1], query_index)[0]


def top_keys(weights, geometry, topk):
    """The ``topk`` heaviest keys of one query's weights (M,) as JSON-ready dicts.

    Each holds the key's flat index on the key grid, its weight, the input region
    it stands for (``box``: [start, stop) per axis) and that region's centre.
    """
    values, indices = weights.topk(min(topk, weights.numel()))
    return [dict(key_index=int(index), weight=float(value),
                 box=geometry.key_box(index), centre=box_centre(geometry.key_box(index)))
            for value, index in zip(values.tolist(), indices.tolist())]
