"""tools/analysis/get_flops.py: MMAction2's FLOP convention, plus the non-local pairwise terms."""
import importlib.util
import os.path as osp

import mmaction
import pytest
import torch
from mmcv.cnn import NonLocal3d
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config

import nlnet  # noqa: F401
from mmaction.registry import MODELS
from nlnet.models.layers import NonLocalBlock
from nlnet.models.layers.non_local import MODES

ROOT = osp.join(osp.dirname(__file__), '..', '..')
CONFIG_DIR = osp.join(ROOT, 'configs', 'recognition')
MMACTION_CONFIG_DIR = osp.join(mmaction.__path__[0], '.mim', 'configs', 'recognition')
NL_I3D = 'nl-i3d/nl-i3d_r50-in1k-pre-mmaction-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py'
NL_C2D = 'nl-c2d/nl-c2d_r50-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py'

spec = importlib.util.spec_from_file_location(
    'get_flops', osp.join(ROOT, 'tools', 'analysis', 'get_flops.py'))
get_flops = importlib.util.module_from_spec(spec)
spec.loader.exec_module(get_flops)

DEFAULT_SCOPE = 'mmaction'


def build(path):
    cfg = Config.fromfile(path)
    cfg.model.backbone.pretrained = None
    return cfg, MODELS.build(cfg.model)


def test_default_view_is_one_test_clip_at_the_test_crop():
    assert get_flops.view_shape(Config.fromfile(osp.join(CONFIG_DIR, NL_I3D))) == (
        1, 3, 32, 256, 256)
    c2d = Config.fromfile(osp.join(CONFIG_DIR, NL_C2D))
    assert get_flops.view_shape(c2d) == (1, 3, 8, 224, 224)
    assert get_flops.view_shape(c2d, [16, 112, 112]) == (1, 3, 16, 112, 112)
    assert get_flops.view_shape(c2d, [112]) == (1, 3, 8, 112, 112)
    with pytest.raises(ValueError, match='--shape'):
        get_flops.view_shape(c2d, [1, 2, 3, 4])


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
        total += (_conv_bn(planes, in_channels, kt, t, h, h) + _conv_bn(planes, planes, 9, t, out, out)
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
    count = get_flops.analyse(model, torch.randn(1, 3, 8, 32, 32))['flops']['']
    assert count == bottleneck_resnet_closed_form(4, 8, 32, stem_t, stem_stride_t, first_conv_t,
                                                  temporal_pool)


@pytest.mark.parametrize('pool_position', ['before', 'after'])
def test_non_local_count_is_the_closed_form(pool_position):
    """Embedded Gaussian on C=16 channels, d=8, N=4x4x4 queries, M=4x2x2 pooled keys:
    theta on N, phi and g on M (pooled before) or N (after), the N x M logits and weighted
    sum (d each), W_z and its BN on N."""
    channels, inner, queries, keys = 16, 8, 64, 16
    block = NonLocalBlock(channels, dim=3, sub_sample=True, pool_position=pool_position)
    projected = keys if pool_position == 'before' else queries
    expected = (inner * channels * (queries + 2 * projected) + 2 * queries * keys * inner
                + channels * inner * queries + 2 * channels * queries)
    assert get_flops.analyse(block, torch.randn(1, channels, 4, 4, 4))['flops'][''] == expected


@pytest.mark.parametrize('name, mmaction_name, frames, non_local', [
    ('c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py',
     'c2d/c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py', 8, 0),
    ('c2d/c2d_r50-in1k-pre_8xb32-16x4x1-100e_kinetics400-rgb.py',
     'c2d/c2d_r50-in1k-pre_8xb32-16x4x1-100e_kinetics400-rgb.py', 16, 0),
    ('i3d/i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'i3d/i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.py', 16, 0),
    (NL_I3D, 'i3d/i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py',
     16, 5),
    ('nl-i3d/nl-i3d_r50-in1k-pre-mmaction-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'i3d/i3d_imagenet-pretrained-r50-nl-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py', 16, 5),
], ids=['c2d-nopool', 'c2d-16x4x1', 'i3d', 'nl-i3d-dot-product', 'nl-i3d-gaussian'])
def test_count_equals_mmaction2_count_of_its_own_model(name, mmaction_name, frames, non_local):
    """MMAction2's tool traces extract_feat with mmengine's counter (its no-pool C2D is a 2D
    ResNet in Recognizer2D fed N*T frames); mmcv's non-local blocks form the N x M matrices
    explicitly, so its count is the paper's explicit one."""
    shape = (1, 3, frames, 64, 64)
    ref_cfg, reference = build(osp.join(MMACTION_CONFIG_DIR, mmaction_name))
    reference.eval().forward = reference.extract_feat
    analyzer = FlopAnalyzer(reference, (get_flops.model_inputs(ref_cfg, shape), ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    cfg, model = build(osp.join(CONFIG_DIR, name))
    ours = get_flops.analyse(model, get_flops.model_inputs(cfg, shape), 'explicit')
    assert ours['flops'][''] == analyzer.total()
    assert ours['params'][''] == parameter_count(reference)['']
    assert len(ours['non_local']) == non_local


@pytest.mark.parametrize('mode', MODES)
def test_explicit_count_of_a_block_is_mmcv_count(mode):
    torch.manual_seed(0)
    ours = NonLocalBlock(16, dim=3, mode=mode, sub_sample=True, pool_position='after',
                         use_scale=False, zero_init=False).eval()
    theirs = NonLocal3d(16, mode=mode, sub_sample=True, use_scale=False,
                        norm_cfg=dict(type='BN3d')).eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 16, 4, 8, 8)
    analyzer = FlopAnalyzer(theirs, (x, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert get_flops.analyse(ours, x)['flops'][''] == analyzer.total()


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('scope, pool_position', [
    ('spacetime', 'before'), ('spacetime', 'after'), ('space', 'before'), ('time', 'after')])
def test_explicit_form_computes_the_block(mode, scope, pool_position):
    """The counted computation is the block's: same output for every function and scope."""
    torch.manual_seed(0)
    pool_kernel = (2, 1, 1) if scope == 'time' else (1, 2, 2)
    block = NonLocalBlock(16, dim=3, mode=mode, scope=scope, sub_sample=True,
                          pool_kernel=pool_kernel, pool_position=pool_position,
                          zero_init=False).eval()
    x = torch.randn(2, 16, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(get_flops.explicit_non_local(block, x), block(x),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('scope, kernel, pairs, spacetime_pairs', [
    ('space', (1, 2, 2), 4 * 16 * 4, 64 * 16),
    ('time', (2, 1, 1), 16 * 4 * 2, 64 * 32),
])
def test_explicit_pairwise_terms_follow_the_scope(scope, kernel, pairs, spacetime_pairs):
    """4x4x4 queries: f(x_i, x_j) and the weighted sum of g cost d' + d' = 16 per
    (query, key) pair in the scope; the 1x1 convolutions (pooled after) do not change."""
    x = torch.randn(1, 16, 4, 4, 4)
    counts = [get_flops.analyse(
        NonLocalBlock(16, dim=3, scope=s, sub_sample=True, pool_kernel=kernel,
                      pool_position='after'), x)['flops'][''] for s in (scope, 'spacetime')]
    assert counts[0] - counts[1] == (pairs - spacetime_pairs) * (8 + 8)


def test_executed_count_of_embedded_gaussian_equals_the_explicit_one():
    """SDPA and the batched-GEMM 1x1 convolutions are counted by their handles."""
    block = NonLocalBlock(16, dim=3, sub_sample=True).eval()
    x = torch.randn(1, 16, 4, 8, 8)
    counts = [get_flops.analyse(block, x, mode)['flops'][''] for mode in get_flops.NL_FLOPS]
    assert counts[0] == counts[1] > 0


def test_cli_prints_a_table_with_every_non_local_block(capsys):
    result = get_flops.main([osp.join(CONFIG_DIR, NL_C2D), '--shape', '8', '64', '64'])
    out = capsys.readouterr().out
    assert 'one view (N, C, T, H, W): (1, 3, 8, 64, 64)' in out
    assert '| backbone.layer3.4.non_local_block |' in out
    assert '| cls_head |' in out
    assert f'params: {result["params"][""] / 1e6:.3g}M' in out
    assert result['flops'][''] > result['flops']['backbone.layer3.4.non_local_block'] > 0


def test_executed_count_of_the_folded_dot_product():
    """The folded branch is two C x C GEMMs over the positions plus its small matrices."""
    c, d, n = 16, 8, 144
    block = NonLocalBlock(c, dim=2, mode='dot_product').eval()
    x = torch.randn(1, c, 12, 12)
    assert block._folds_dot_product(x)
    flops = get_flops.analyse(block, x, 'executed')['flops']
    small = d * (c + 1)**2 + d * (c + 1) * d + c * d * d + c * d * (c + 1)
    norm = flops[f'conv_out.{block.conv_out.norm_name}']
    assert norm > 0 and flops[''] - norm == c * c * (n + n) + small
