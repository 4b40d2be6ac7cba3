"""The drawn weights are those the block uses, for chosen queries only, mapped to input pixels."""
import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nlnet.models.layers import NonLocalBlock
from nlnet.visualization import BlockGeometry, query_attention, select_blocks, top_keys
from nlnet.visualization.attention import box_centre

MODES = ('gaussian', 'embedded_gaussian', 'dot_product', 'concatenation')
# (dim, scope, sub_sample, pool_kernel)
LAYOUTS = [
    (3, 'spacetime', False, None), (3, 'spacetime', True, (1, 2, 2)),
    (3, 'space', False, None), (3, 'space', True, (1, 2, 2)),
    (3, 'time', False, None), (3, 'time', True, (2, 1, 1)),
    (2, 'spacetime', False, None), (2, 'spacetime', True, (2, 2)),
]


def random_block(mode, dim, scope, sub_sample, pool_kernel, pool_position='before'):
    """A float64 block in eval mode whose weights and BN are far from the identity."""
    torch.manual_seed(0)
    block = NonLocalBlock(8, dim=dim, mode=mode, scope=scope, sub_sample=sub_sample,
                          pool_kernel=pool_kernel, pool_position=pool_position, init_std=0.4,
                          zero_init=False).double().eval()
    if mode == 'concatenation':  # its default init leaves most ReLU(w^T [q, k]) at 0
        block.concat_project.conv.weight.data.normal_()
    norm = block.conv_out.norm
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.normal_()
    norm.running_mean.normal_()
    norm.running_var.uniform_(0.5, 2.0)
    return block


def explicit_weights(block, x):
    """The N x M matrix f(x_i, x_j)/C(x) of sample 0, written out from Eq. 2-5 (all pairs,
    then the scope's mask), independently of the block and of reference.py."""
    pool = block.pool
    if block.mode == 'gaussian':
        query, key = x, pool(x)
    else:
        phi = block.phi(pool(x)) if block.pool_position == 'before' else pool(block.phi(x))
        query, key = block.theta(x), phi
    q = query[0].flatten(1).t()  # (N, D)
    k = key[0].flatten(1).t()    # (M, D)
    if block.mode == 'concatenation':
        w = block.concat_project.conv.weight.flatten()
        f = F.relu((q @ w[:q.shape[1]])[:, None] + (k @ w[q.shape[1]:])[None, :])
    else:
        f = q @ k.t()
    if block.mode == 'embedded_gaussian' and block.use_scale:
        f = f / math.sqrt(block.inter_channels)
    grid, key_grid = x.shape[2:], key.shape[2:]
    qc = torch.stack(torch.meshgrid(*[torch.arange(s) for s in grid], indexing='ij')).flatten(1)
    kc = torch.stack(torch.meshgrid(*[torch.arange(s) for s in key_grid],
                                    indexing='ij')).flatten(1)
    if block.scope == 'space':
        mask = qc[0][:, None] == kc[0][None, :]
    elif block.scope == 'time':
        mask = (qc[1][:, None] == kc[1][None, :]) & (qc[2][:, None] == kc[2][None, :])
    else:
        mask = torch.ones(q.shape[0], k.shape[0], dtype=torch.bool)
    if block.mode in ('gaussian', 'embedded_gaussian'):
        return f.masked_fill(~mask, float('-inf')).softmax(-1)
    return f * mask / mask.sum(-1, keepdim=True)


def values(block, x):
    pool = block.pool
    return block.g(pool(x)) if block.pool_position == 'before' else pool(block.g(x))


@pytest.mark.parametrize('dim,scope,sub_sample,pool_kernel', LAYOUTS)
@pytest.mark.parametrize('mode', MODES)
def test_query_rows_are_the_weights_the_block_uses(mode, dim, scope, sub_sample, pool_kernel):
    block = random_block(mode, dim, scope, sub_sample, pool_kernel)
    torch.manual_seed(1)
    x = torch.randn(2, 8, *((4, 6, 6) if dim == 3 else (6, 8)), dtype=torch.float64)
    explicit = explicit_weights(block, x)
    # Corners, inner cells and the heaviest row (a concatenation block's ReLU can zero rows).
    queries = [0, 7, 29, x[0, 0].numel() - 1, int(explicit.abs().sum(-1).argmax())]
    drawn = query_attention(block, x, queries)

    assert drawn.shape == (len(queries), explicit.shape[1])
    assert drawn.dtype == torch.float64
    torch.testing.assert_close(drawn, explicit[queries], rtol=1e-12, atol=1e-14)
    assert drawn.std() > 0.1 * drawn.abs().mean() > 0  # non-uniform weights: the check has teeth
    # The same rows give the block's own output there: z_i - x_i = W_z sum_j w_ij g(x_j).
    y = drawn @ values(block, x)[0].flatten(1).t()  # (Q, C')
    change = block.conv_out(y.t().reshape(1, -1, len(queries), *([1] * (dim - 1))))
    expected = (block(x) - x)[0].flatten(1)[:, queries]
    torch.testing.assert_close(change[0].flatten(1), expected, rtol=1e-10, atol=1e-12)


def test_pooling_after_the_convolutions_gives_the_mmcv_weights():
    block = random_block('embedded_gaussian', 3, 'spacetime', True, (1, 2, 2), 'after')
    x = torch.randn(1, 8, 2, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(query_attention(block, x, [3, 20]),
                               explicit_weights(block, x)[[3, 20]], rtol=1e-12, atol=1e-14)


def spiked_gaussian_block():
    """A Gaussian block (f = exp(x_i^T x_j)) on a 4x6x6 grid stretched over an 8x48x48
    clip, keys max-pooled 1x2x2: two spikes make the attention known."""
    block = NonLocalBlock(8, dim=3, mode='gaussian', sub_sample=True,
                          pool_kernel=(1, 2, 2)).double().eval()
    x = torch.zeros(1, 8, 4, 6, 6, dtype=torch.float64)
    spike = torch.ones(8, dtype=torch.float64)
    x[0, :, 2, 3, 4] = spike        # key cell (2, 1, 2) -> logit 8 for the query below
    x[0, :, 1, 5, 0] = 0.7 * spike  # key cell (1, 2, 0) -> logit 5.6
    x[0, :, 0, 0, 1] = spike        # the query's own cell, (t, h, w) = (0, 0, 1)
    return block, x


def test_top_keys_and_their_input_coordinates_on_known_attention():
    block, x = spiked_gaussian_block()
    geometry = BlockGeometry(block, x.shape[2:], (8, 48, 48))
    assert geometry.key_grid == (4, 3, 3) and geometry.num_keys == 36
    query = geometry.query_index((1, 5, 9))  # clip frame 1, pixel (5, 9) -> cell (0, 0, 1)
    assert query == 1
    weights = query_attention(block, x, [query])[0]
    keys = top_keys(weights, geometry, topk=3)

    # Keys: the spike's pooled cell (logit 8), the weaker spike's (5.6), the query's own
    # pooled cell (0, 0, 0) (also holds x_q: logit 8); the 33 others have logit 0.
    denominator = 2 * math.exp(8) + math.exp(5.6) + 33
    assert sorted(k['key_index'] for k in keys[:2]) == [0, 2 * 9 + 1 * 3 + 2]
    assert keys[2]['key_index'] == 1 * 9 + 2 * 3 + 0
    assert keys[0]['weight'] == pytest.approx(math.exp(8) / denominator, rel=1e-12)
    assert keys[2]['weight'] == pytest.approx(math.exp(5.6) / denominator, rel=1e-12)
    spike = next(k for k in keys if k['key_index'] == 23)
    # Cell (2, 1, 2) pools feature cells t=2, h 2-3, w 4-5: input frames [4, 6),
    # rows [16, 32), columns [32, 48) at 2 frames x 8 px per feature cell.
    assert spike['box'] == [[4.0, 6.0], [16.0, 32.0], [32.0, 48.0]]
    assert spike['centre'] == [4.5, 23.5, 39.5]
    assert keys[2]['box'] == [[2.0, 4.0], [32.0, 48.0], [0.0, 16.0]]
    assert box_centre(geometry.query_box(query)) == [0.5, 3.5, 11.5]


def test_key_index_map_covers_each_key_cell_with_its_pixels():
    block, x = spiked_gaussian_block()
    geometry = BlockGeometry(block, (4, 7, 6), (8, 56, 48))  # odd height: last row dropped
    index = geometry.key_index_map()
    assert index.shape == (8, 56, 48)
    assert (index[:, 48:] == -1).all()  # rows of feature row 6, which the 2x2 pool drops
    assert index[4, 16, 32].item() == 23 and index[5, 31, 47].item() == 23
    counts = torch.bincount(index[index >= 0], minlength=geometry.num_keys)
    assert (counts == 2 * 16 * 16).all()


def test_query_outside_the_input_is_named():
    block, x = spiked_gaussian_block()
    geometry = BlockGeometry(block, x.shape[2:], (8, 48, 48))
    with pytest.raises(ValueError, match=r'query \(8, 5, 9\): t=8 is outside the input'):
        geometry.query_index((8, 5, 9))
    with pytest.raises(ValueError, match=r'must have 3 coordinates \(t,y,x\)'):
        geometry.query_index((5, 9))


def test_unknown_block_lists_the_models_blocks():
    model = nn.Sequential(nn.Conv2d(8, 8, 1), NonLocalBlock(8), NonLocalBlock(8))
    assert list(select_blocks(model, None)) == ['1', '2']
    assert list(select_blocks(model, ['2'])) == ['2']
    with pytest.raises(ValueError, match=r'--block 0: no such non-local block.*are: 1, 2'):
        select_blocks(model, ['0'])


def _resident_bytes(field):
    with open('/proc/self/status') as status:
        return int(re.search(rf'{field}:\s+(\d+)', status.read()).group(1)) * 1024


def test_eight_queries_of_a_cityscapes_size_head_stay_small():
    """8 queries of a 1 x 512 x 128 x 256 NLHead-size block (32,768 positions) stay under
    1 GB of resident memory above the input (the N x N weights alone would be 4 GiB)."""
    torch.manual_seed(0)
    block = NonLocalBlock(512, dim=2).eval()
    x = torch.randn(1, 512, 128, 256)
    with open('/proc/self/clear_refs', 'w') as refs:
        refs.write('5')  # reset the resident high-water mark (VmHWM) to the current set
    start = _resident_bytes('VmRSS')
    weights = query_attention(block, x, list(range(0, 32768, 4096)))
    peak = _resident_bytes('VmHWM') - start
    assert weights.shape == (8, 32768)
    torch.testing.assert_close(weights.sum(-1), torch.ones(8))
    assert peak < 1024 ** 3, f'{peak / 2 ** 20:.0f} MiB'
