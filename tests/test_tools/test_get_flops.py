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


def test_explicit_count_equals_mmaction2_count_of_its_own_model():
    """MMAction2's tool traces extract_feat with mmengine's counter; mmcv's non-local blocks
    form the N x M matrices explicitly, so its count is the paper's explicit one."""
    inputs = torch.randn(1, 1, 3, 16, 64, 64)
    reference = build(osp.join(MMACTION_CONFIG_DIR, 'i3d', 'i3d_imagenet-pretrained-r50-'
                               'nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py'))[1].eval()
    reference.forward = reference.extract_feat
    analyzer = FlopAnalyzer(reference, (inputs, ))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    _, model = build(osp.join(CONFIG_DIR, NL_I3D))
    explicit = get_flops.analyse(model, inputs, 'explicit')
    assert explicit['flops'][''] == analyzer.total()
    assert explicit['params'][''] == parameter_count(reference)['']
    assert len(explicit['non_local']) == 5


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
