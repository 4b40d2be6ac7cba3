"""nlnet.ops.NonLocal1d/2d/3d against mmcv's bricks of the same names: keys, defaults, outputs."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn.bricks import non_local as mmcv_non_local

from nlnet import ops

CLASSES = {1: (ops.NonLocal1d, mmcv_non_local.NonLocal1d),
           2: (ops.NonLocal2d, mmcv_non_local.NonLocal2d),
           3: (ops.NonLocal3d, mmcv_non_local.NonLocal3d)}


@pytest.mark.parametrize('norm_cfg', [None, dict(type='BN')], ids=['no-norm', 'bn'])
@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('mode', ops.MODES)
@pytest.mark.parametrize('dim', [1, 2, 3])
def test_same_arguments_load_mmcv_weights_and_give_its_output(dim, mode, sub_sample, norm_cfg):
    ours_class, mmcv_class = CLASSES[dim]
    if norm_cfg is not None:  # mmcv's 'BN' is BatchNorm2d whatever the dimension
        norm_cfg = dict(type=f'BN{dim}d') if dim != 2 else norm_cfg
    torch.manual_seed(0)
    theirs = mmcv_class(8, mode=mode, sub_sample=sub_sample, norm_cfg=norm_cfg).double()
    with torch.no_grad():
        for value in theirs.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) + 0.5)
    ours = ours_class(8, mode=mode, sub_sample=sub_sample, norm_cfg=norm_cfg).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.eval()
    ours.eval()
    x = torch.randn(2, 8, *[4, 6, 6][3 - dim:], dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize('dim', [1, 2, 3])
def test_fresh_block_is_the_identity_as_mmcv_zeros_init(dim):
    block = CLASSES[dim][0](8)
    x = torch.randn(2, 8, *[4, 6, 6][3 - dim:])
    assert torch.equal(block(x), x)
    assert block.conv_out.norm is None  # mmcv's default: no norm after W_z


def test_norm_cfg_builds_torch_norms_and_names_what_it_cannot():
    assert isinstance(ops.NonLocal3d(8, norm_cfg=dict(type='BN')).conv_out.bn, nn.BatchNorm3d)
    group_norm = ops.NonLocal2d(8, norm_cfg=dict(type='GN', num_groups=2)).conv_out.gn
    assert isinstance(group_norm, nn.GroupNorm) and group_norm.num_groups == 2
    frozen = ops.NonLocal2d(8, norm_cfg=dict(type='BN', requires_grad=False)).conv_out.bn
    assert not any(p.requires_grad for p in frozen.parameters())
    with pytest.raises(ValueError, match=r"norm_cfg must be None or a dict with type in .*'Foo'"):
        ops.NonLocal2d(8, norm_cfg=dict(type='Foo'))
    with pytest.raises(ValueError, match='conv_cfg must be one of'):
        ops.NonLocal2d(8, conv_cfg=dict(type='DCN'))


def test_norm_layer_must_be_a_module_factory():
    with pytest.raises(ValueError, match="norm_layer must be 'batch_norm', None or a callable"):
        ops.NonLocalBlock(8, norm_layer='group_norm')
    with pytest.raises(ValueError, match=r'norm_layer\(8\) must return an nn.Module'):
        ops.NonLocalBlock(8, norm_layer=lambda channels: channels)
