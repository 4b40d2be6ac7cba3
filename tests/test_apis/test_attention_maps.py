"""nlnet.apis attention maps: one query's weights are the block's reference_weights row for
that query, spread over the input cell by cell; default queries are the strongest cells."""
import numpy as np
import pytest
import torch

from nlnet import apis
from nlnet.models.layers import NonLocalBlock
from nlnet.ops.reference import reference_weights
from nlnet.visualization import BlockGeometry, strongest_queries
from nlnet.visualization.attention import box_centre


def block_and_input(sub_sample):
    torch.manual_seed(0)
    block = NonLocalBlock(8, dim=3, mode='embedded_gaussian', sub_sample=sub_sample,
                          zero_init=False).eval()
    return block, torch.randn(2, 8, 4, 6, 6)


@pytest.mark.parametrize('sub_sample', [False, True])
def test_query_map_is_the_reference_weights_of_that_query(sub_sample):
    """(T, H, W) = (8, 12, 12) input over a 4 x 6 x 6 grid: 2 x 2 x 2 input cells; with
    sub-sampling the keys pool 1 x 2 x 2 cells (4 x 3 x 3 keys)."""
    block, x = block_and_input(sub_sample)
    input_size = (8, 12, 12)
    attention = apis.query_attention_map(block, x, (5, 3, 10), input_size, topk=4)
    index = 2 * 36 + 1 * 6 + 5  # the cell (5 // 2, 3 // 2, 10 // 2)
    assert attention.query_index == index and attention.query_box == [[4, 6], [2, 4], [10, 12]]
    expected = reference_weights(block, x[:1], [index])[0, 0]
    assert torch.equal(attention.weights, expected.float())
    assert attention.heat.shape == input_size
    kernel = (1, 2, 2) if sub_sample else (1, 1, 1)
    key_grid = tuple(s // k for s, k in zip((4, 6, 6), kernel))
    assert attention.weights.shape == (int(np.prod(key_grid)), )
    cell = tuple(2 * k for k in kernel)  # input pixels per key cell, per axis
    for key, weight in enumerate(attention.weights.tolist()):
        t, y, x_ = np.unravel_index(key, key_grid)
        region = attention.heat[t * cell[0]:(t + 1) * cell[0], y * cell[1]:(y + 1) * cell[1],
                                x_ * cell[2]:(x_ + 1) * cell[2]]
        assert np.all(region == np.float32(weight))
    assert [key['weight'] for key in attention.keys] == \
        attention.weights.topk(4).values.tolist()


def test_default_queries_are_the_strongest_cells():
    block, x = block_and_input(False)
    queries = apis.default_queries(block, x, (8, 12, 12), num_queries=3)
    geometry = BlockGeometry(block, x.shape[2:], (8, 12, 12))
    assert queries == [box_centre(geometry.query_box(index))
                       for index in strongest_queries(block, x[:1], 3)]
    with pytest.raises(ValueError, match=r'query \(8, 0, 0\): t=8 is outside the input'):
        apis.query_attention_map(block, x, (8, 0, 0), (8, 12, 12))
