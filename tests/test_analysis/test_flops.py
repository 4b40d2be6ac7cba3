"""nlnet.analysis.flops: counted FLOPs equal closed forms written from the architecture."""
import pytest
import torch
from mmcv.cnn import NonLocal3d
from mmengine.analysis import FlopAnalyzer

from helpers.flops_closed_form import block_closed_form
from mmaction.registry import MODELS

import nlnet.openmmlab  # noqa: F401
from nlnet.analysis import count_flops, flop_analyzer
from nlnet.models.layers import NonLocalBlock
from nlnet.ops.non_local import MODES
from nlnet.ops.reference import reference_forward


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('grid, pool_kernel', [
    ((6, 8), (2, 2)),
    ((4, 6, 8), (1, 2, 2)),
], ids=['2d', '3d'])
@pytest.mark.parametrize('sub_sample, pool_position', [
    (False, 'before'), (True, 'before'), (True, 'after')])
def test_explicit_count_is_the_closed_form(mode, grid, pool_kernel, sub_sample, pool_position):
    channels, batch = 16, 2
    block = NonLocalBlock(channels, dim=len(grid), mode=mode, sub_sample=sub_sample,
                          pool_kernel=pool_kernel, pool_position=pool_position)
    queries = torch.Size(grid).numel()
    keys = queries // torch.Size(pool_kernel).numel() if sub_sample else queries
    projected = keys if pool_position == 'before' else queries
    count = count_flops(block, torch.randn(batch, channels, *grid))['flops']['']
    assert count == block_closed_form(mode, channels, queries, keys, projected, batch)


def test_executed_embedded_gaussian_counts_the_fused_attention():
    """nlnet's own forward (fused attention, batched GEMMs) counts the same as the paper's."""
    block = NonLocalBlock(16, dim=3, sub_sample=True).eval()
    x = torch.randn(1, 16, 4, 8, 8)
    counts = [count_flops(block, x, nl_flops)['flops'][''] for nl_flops in ('explicit',
                                                                          'executed')]
    assert counts[0] == counts[1] == block_closed_form('embedded_gaussian', 16, 256, 64, 64)


@pytest.mark.parametrize('batch_shape', [(), (3, )], ids=['3d', '4d'])
def test_fused_attention_and_baddbmm_handles(batch_shape):
    """The handles mmengine lacks: q k^T and the weighted sum; the product of baddbmm."""

    class Ops(torch.nn.Module):

        def forward(self, q, k, v, bias, a, b):
            return (torch.nn.functional.scaled_dot_product_attention(q, k, v),
                    torch.baddbmm(bias, a, b))

    n, m, d, dv = 5, 7, 4, 6
    q, k, v = (torch.randn(*batch_shape, 2, length, depth)
               for length, depth in ((n, d), (m, d), (m, dv)))
    a, b = torch.randn(2, 3, 9), torch.randn(2, 9, 4)
    with torch.no_grad():
        total = flop_analyzer(Ops(), (q, k, v, torch.randn(2, 3, 4), a, b)).total()
    attention = torch.Size(batch_shape).numel() * 2 * n * m * (d + dv)
    assert total == attention + 2 * 3 * 9 * 4


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('scope, pool_position', [
    ('spacetime', 'before'), ('spacetime', 'after'), ('space', 'before'), ('time', 'after')])
def test_counted_explicit_form_computes_the_block(mode, scope, pool_position):
    """What ``explicit`` counts is the block's computation: the branch z - x agrees.

    Random non-identity weights (std 1 / sqrt(fan-in), BN scale 1) make the branch as
    large as x, and it is compared relative to its own scale, so a wrong pairwise
    scale (1/C' instead of 1/sqrt(C')) or a missing term fails.
    """
    torch.manual_seed(0)
    pool_kernel = (2, 1, 1) if scope == 'time' else (1, 2, 2)
    block = NonLocalBlock(16, dim=3, mode=mode, scope=scope, sub_sample=True,
                          pool_kernel=pool_kernel, pool_position=pool_position).double().eval()
    with torch.no_grad():
        for name, param in block.named_parameters():
            if param.dim() > 1:  # convolutions
                param.copy_(torch.randn_like(param) / param[0].numel()**0.5)
            else:  # norm scales 1, biases 0
                param.fill_(1.0 if name.endswith('weight') else 0.0)
    x = torch.randn(2, 16, 4, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        branch = block(x) - x
        counted = reference_forward(block, x) - x
    assert branch.abs().mean() > 0.1 * x.abs().mean()
    torch.testing.assert_close(counted, branch, rtol=1e-6, atol=1e-9 * branch.abs().max())


@pytest.mark.parametrize('mode', MODES)
def test_explicit_count_of_a_block_is_mmcv_count(mode):
    """mmcv's NonLocal3d forms the N x M matrix as the paper does: MMAction2's count."""
    torch.manual_seed(0)
    ours = NonLocalBlock(16, dim=3, mode=mode, sub_sample=True, pool_position='after',
                         use_scale=False, zero_init=False).eval()
    theirs = NonLocal3d(16, mode=mode, sub_sample=True, use_scale=False,
                        norm_cfg=dict(type='BN3d')).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 16, 4, 8, 8)
    analyzer = FlopAnalyzer(theirs, (x, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert count_flops(ours, x)['flops'][''] == analyzer.total()


@pytest.mark.parametrize('scope, kernel, pairs, spacetime_pairs', [
    ('space', (1, 2, 2), 4 * 16 * 4, 64 * 16),
    ('time', (2, 1, 1), 16 * 4 * 2, 64 * 32),
])
def test_explicit_pairwise_terms_follow_the_scope(scope, kernel, pairs, spacetime_pairs):
    """4x4x4 queries: f(x_i, x_j) and the weighted sum of g cost C' + C' = 16 per
    (query, key) pair in the scope; the 1x1 convolutions (pooled after) do not change."""
    x = torch.randn(1, 16, 4, 4, 4)
    counts = [count_flops(
        NonLocalBlock(16, dim=3, scope=s, sub_sample=True, pool_kernel=kernel,
                      pool_position='after'), x)['flops'][''] for s in (scope, 'spacetime')]
    assert counts[0] - counts[1] == (pairs - spacetime_pairs) * (8 + 8)


def test_executed_count_of_the_folded_dot_product():
    """The folded branch is two C x C GEMMs over the positions plus its small matrices."""
    c, d, n = 16, 8, 144
    block = NonLocalBlock(c, dim=2, mode='dot_product').eval()
    x = torch.randn(1, c, 12, 12)
    assert block.route(x) == 'folded'
    flops = count_flops(block, x, 'executed')['flops']
    small = d * (c + 1)**2 + d * (c + 1) * d + c * d * d + c * d * (c + 1)
    norm = flops[f'conv_out.{block.conv_out.norm_name}']
    assert norm > 0 and flops[''] - norm == c * c * (n + n) + small


def _conv_bn(out_channels, in_channels, kernel_volume, t, h, w):
    """Multiply-adds of a bias-free conv producing (out_channels, t, h, w), plus its eval-mode
    affine BN (one multiply and one add per output element)."""
    return (out_channels * in_channels * kernel_volume + 2 * out_channels) * t * h * w


def bottleneck_resnet_closed_form(width, frames, size, stem_t, stem_stride_t, first_conv_t,
                                  temporal_pool):
    """FLOPs of a ResNet-50-shaped network with one bottleneck per stage, from its
    architecture alone: padded 1x3x3 stem pool, stride on the 3x3 conv, projection shortcut
    in every first block, ``first_conv_t[stage]`` the temporal size of that block's first
    1x1 conv (3 when inflated 3x1x1)."""
    t = (frames - 1) // stem_stride_t + 1
    h = size // 2
    total = _conv_bn(width, 3, stem_t * 7 * 7, t, h, h)
    h //= 2
    in_channels = width
    for stage, kt in enumerate(first_conv_t):
        planes = width * 2**stage
        out = h if stage == 0 else h // 2
        total += (_conv_bn(planes, in_channels, kt, t, h, h)
                  + _conv_bn(planes, planes, 9, t, out, out)
                  + _conv_bn(4 * planes, planes, 1, t, out, out)
                  + _conv_bn(4 * planes, in_channels, 1, t, out, out))
        in_channels, h = 4 * planes, out
        if stage == 0 and temporal_pool:
            t //= 2
    return total


@pytest.mark.parametrize('kwargs, stem_t, stem_stride_t, first_conv_t, temporal_pool', [
    (dict(), 1, 1, (1, 1, 1, 1), False),
    (dict(temporal_pool=True), 1, 1, (1, 1, 1, 1), True),
    (dict(conv1_kernel=(5, 7, 7), conv1_stride_t=2, temporal_pool=True, inflate='i3d'),
     5, 2, (3, 3, 3, 1), True),
], ids=['c2d-nopool', 'c2d', 'i3d'])
def test_backbone_count_is_the_closed_form(kwargs, stem_t, stem_stride_t, first_conv_t,
                                           temporal_pool):
    model = MODELS.build(dict(type='VideoResNet', depth=50, stage_blocks=(1, 1, 1, 1),
                              base_channels=4, **kwargs))
    count = count_flops(model, torch.randn(1, 3, 8, 32, 32))['flops']['']
    assert count == bottleneck_resnet_closed_form(4, 8, 32, stem_t, stem_stride_t, first_conv_t,
                                                  temporal_pool)
