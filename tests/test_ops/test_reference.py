"""reference_weights: the normalised f(x_i, x_j)/C(x) rows of chosen queries, Q x M only."""
import math

import pytest
import torch

from nlnet.ops.non_local import MODES, NonLocalBlock
from nlnet.ops.reference import reference_weights

# (dim, spatial size, scope, pool kernel): odd sizes so that pooling floors.
GRIDS = [
    (1, (9, ), 'spacetime', (2, )),
    (2, (5, 4), 'spacetime', (2, 2)),
    (3, (2, 5, 3), 'space', (1, 2, 2)),
    (3, (5, 2, 3), 'time', (2, 1, 1)),
]


def _block(mode, dim, scope, pool_kernel):
    """A sub-sampled block without a norm after W_z, every parameter random."""
    block = NonLocalBlock(6, dim=dim, mode=mode, scope=scope, sub_sample=True,
                          pool_kernel=pool_kernel, norm_layer=None).double().eval()
    with torch.no_grad():
        for param in block.parameters():
            param.normal_(0, 0.5)
    return block


@pytest.mark.parametrize('dim,size,scope,pool_kernel', GRIDS)
@pytest.mark.parametrize('mode', MODES)
def test_weights_give_the_blocks_output_at_the_chosen_queries(mode, dim, size, scope,
                                                              pool_kernel):
    # Without a norm, z_i - x_i = W_z sum_j w_ij g(x_j) + b_z (Eq. 1, 6): the rows must
    # reproduce the block's own output there (the block is checked against Eq. 1-6).
    torch.manual_seed(0)
    block = _block(mode, dim, scope, pool_kernel)
    x = torch.randn(2, 6, *size, dtype=torch.float64)
    num_queries = math.prod(size)
    queries = [0, num_queries // 2, num_queries - 1]
    with torch.no_grad():
        weights = reference_weights(block, x, queries)
        values = block.g(block.pool(x)).flatten(2)  # (N, C', M), pooled before g
        conv = block.conv_out.conv
        want = conv.weight.flatten(1) @ (values @ weights.transpose(1, 2))
        want = want + conv.bias[:, None] if conv.bias is not None else want
        got = (block(x) - x).flatten(2)[:, :, queries]
    assert weights.shape == (2, 3, values.shape[-1])
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('scope,pool_kernel', [('space', (1, 2, 2)), ('time', (2, 1, 1))])
def test_weights_outside_the_scope_are_zero_and_softmax_rows_sum_to_one(mode, scope,
                                                                        pool_kernel):
    torch.manual_seed(0)
    block = _block(mode, 3, scope, pool_kernel)
    x = torch.randn(1, 6, 4, 4, 4, dtype=torch.float64)
    query = 1 * 16 + 2 * 4 + 3  # frame 1, row 2, column 3
    with torch.no_grad():
        weights = reference_weights(block, x, torch.tensor([query]))[0, 0]
    key_grid = (4, 2, 2) if scope == 'space' else (2, 4, 4)
    weights = weights.reshape(key_grid)
    in_scope = torch.zeros(key_grid, dtype=torch.bool)
    if scope == 'space':
        in_scope[1] = True  # the query's own frame
    else:
        in_scope[:, 2, 3] = True  # its own spatial position in every (pooled) frame
    assert not weights[~in_scope].any()
    if mode in ('gaussian', 'embedded_gaussian'):
        torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
        assert (weights[in_scope] > 0).all()
