"""VideoResNet: C2D / I3D / NL variants, placements, MMAction2 state-dict compatibility."""
import os.path as osp

import mmaction
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint, save_checkpoint

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from nlnet.models.backbones.video_resnet import non_local_flags

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs', 'recognition')
MMACTION_CONFIG_DIR = osp.join(mmaction.__path__[0], '.mim', 'configs', 'recognition')
R50, R101 = (3, 4, 6, 3), (3, 4, 23, 3)
I3D = dict(conv1_kernel=(5, 7, 7), conv1_stride_t=2, pool1_stride_t=2, temporal_pool=True,
           inflate='i3d')

DEFAULT_SCOPE = 'mmaction'


def backbone(**kwargs):
    """A ResNet-50-shaped network, 8 channels wide so that tests run fast."""
    return MODELS.build(dict(type='VideoResNet', depth=50, base_channels=8, **kwargs))


def non_local_names(model):
    return [name for name, _ in model.non_local_blocks()]


@pytest.mark.parametrize('variant, kwargs, out_frames', [
    ('c2d-nopool', dict(), lambda t: t),
    ('c2d', dict(temporal_pool=True, pool1_padding=(0, 0, 0)), lambda t: t // 2),
    ('i3d', I3D, lambda t: t // 8),
    ('i3d-3x3x3', dict(I3D, inflate_style='3x3x3'), lambda t: t // 8),
    ('nl-c2d', dict(temporal_pool=True, non_local='5blocks'), lambda t: t // 2),
    ('nl-i3d', dict(I3D, non_local='5blocks'), lambda t: t // 8),
])
def test_output_shapes_for_8_and_32_frames(variant, kwargs, out_frames):
    model = backbone(**kwargs).eval()
    for frames in (8, 32):
        with torch.no_grad():
            out = model(torch.randn(1, 3, frames, 32, 32))
        assert out.shape == (1, 8 * 8 * 4, out_frames(frames), 1, 1), (variant, frames)


def test_i3d_kernels_are_inflated_every_other_block():
    model = backbone(**I3D)
    assert model.conv1.conv.kernel_size == (5, 7, 7)
    temporal = [tuple(block.conv1.conv.kernel_size[0] for block in getattr(model, f'layer{i}'))
                for i in range(1, 5)]
    assert temporal == [(3, 3, 3), (3, 1, 3, 1), (3, 1, 3, 1, 3, 1), (1, 3, 1)]
    model = backbone(**dict(I3D, inflate_style='3x3x3'))
    assert model.layer2[0].conv1.conv.kernel_size == (1, 1, 1)
    assert model.layer2[0].conv2.conv.kernel_size == (3, 3, 3)
    assert model.layer2[1].conv2.conv.kernel_size == (1, 3, 3)


@pytest.mark.parametrize('placement, stage_blocks, expected', [
    ('res4_1', R50, ['layer3.4']),
    ('res4_1', R101, ['layer3.21']),
    ('5blocks', R50, ['layer2.1', 'layer2.3', 'layer3.1', 'layer3.3', 'layer3.5']),
    ('5blocks', R101, ['layer2.1', 'layer2.3', 'layer3.6', 'layer3.13', 'layer3.20']),
    ('10blocks', R50, [f'layer2.{i}' for i in range(4)] + [f'layer3.{i}' for i in range(6)]),
    ('res2', R50, ['layer1.1']),
    ('res3', R50, ['layer2.2']),
    ('res4', R50, ['layer3.4']),
    ('res5', R50, ['layer4.1']),
])
def test_placements_land_where_the_paper_puts_them(placement, stage_blocks, expected):
    flags = non_local_flags(placement, stage_blocks)
    names = [f'layer{s + 1}.{i}' for s, stage in enumerate(flags)
             for i, flag in enumerate(stage) if flag]
    assert names == expected
    if stage_blocks == R50:
        model = backbone(non_local=placement)
        assert non_local_names(model) == [f'{name}.non_local_block' for name in expected]
        for name in expected:
            stage = int(name[5]) - 1
            assert model.get_submodule(name).non_local_block.in_channels == 8 * 2**stage * 4


def test_5blocks_is_mmaction2_nl_i3d_placement():
    mmaction_flags = ((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0))
    assert non_local_flags('5blocks', R50) == mmaction_flags
    assert non_local_flags(mmaction_flags, R50) == mmaction_flags


def test_non_local_block_follows_the_residual_addition():
    torch.manual_seed(0)
    model = backbone(non_local='res4_1', non_local_cfg=dict(zero_init=False)).eval()
    block = model.layer3[4]
    x = torch.randn(1, block.conv1.conv.in_channels, 2, 4, 4)
    with torch.no_grad():
        residual_out = torch.relu(block.conv3(block.conv2(block.conv1(x))) + x)
        expected = block.non_local_block(residual_out)
        torch.testing.assert_close(block(x), expected)
        assert not torch.allclose(expected, residual_out)


def test_from_scratch_init_keeps_non_local_blocks_identity():
    torch.manual_seed(0)
    plain = backbone(temporal_pool=True)
    model = backbone(temporal_pool=True, non_local='5blocks')
    model.init_weights()
    assert torch.all(model.layer2[0].conv3.bn.weight == 1)
    for _, block in model.non_local_blocks():
        assert torch.count_nonzero(block.conv_out.norm.weight) == 0
    plain.load_state_dict(model.state_dict(), strict=False)
    plain.eval(), model.eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), plain(x))


def test_zero_init_residual_zeroes_the_last_bn_of_every_block():
    model = backbone(zero_init_residual=True)
    model.init_weights()
    last_norms = [block.conv3.bn.weight for layer in model.res_layers
                  for block in getattr(model, layer)]
    assert len(last_norms) == sum(R50) and all(torch.count_nonzero(w) == 0 for w in last_norms)
    assert torch.all(model.layer1[0].conv2.bn.weight == 1)


def test_with_cp_gives_the_same_outputs_and_gradients():
    torch.manual_seed(0)
    reference = backbone(non_local='5blocks', non_local_cfg=dict(zero_init=False))
    checkpointed = backbone(non_local='5blocks', with_cp=True)
    checkpointed.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 4, 32, 32)
    outputs, grads = [], []
    for model in (reference, checkpointed):
        model.train()
        inputs = x.clone().requires_grad_()
        out = model(inputs)
        out.square().mean().backward()
        outputs.append(out.detach())
        grads.append((inputs.grad, model.layer2[1].non_local_block.g.conv.weight.grad))
    torch.testing.assert_close(outputs[0], outputs[1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_norm_eval_freezes_every_bn():
    model = backbone(non_local='res4_1', norm_eval=True).train()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and not any(m.training for m in norms)
    assert model.layer1.training


@pytest.mark.parametrize('kwargs, message', [
    (dict(non_local='res6'), "non_local: 'res6' is not a placement; allowed"),
    (dict(non_local=((0, 0, 0), (0, 1, 0, 1))), 'non_local: expected one entry per stage'),
    (dict(non_local=((0, 0, 0), (0, 1, 0), (0, ) * 6, (0, 0, 0))), 'non_local: stage 1 (res3)'),
    (dict(inflate='c3d'), "inflate: 'c3d' is not a preset"),
    (dict(inflate_style='3x3x1'), 'inflate_style'),
    (dict(non_local='res4_1', non_local_cfg=dict(mode='cosine')), 'non_local_cfg: mode'),
    (dict(non_local_cfg=dict(dim=2)), "non_local_cfg must not set 'dim': VideoResNet derives it"),
    (dict(out_indices=(4, )), 'out_indices'),
    (dict(depth=42), 'depth'),
])
def test_bad_arguments_fail_at_build_naming_the_key(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace('(', r'\(').replace(
            ')', r'\)')):
        MODELS.build(dict(dict(type='VideoResNet', depth=50, base_channels=8), **kwargs))


def test_config_with_a_bad_placement_fails_at_build():
    cfg = Config.fromfile(osp.join(
        CONFIG_DIR, 'nl-c2d', 'nl-c2d_r50-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py'))
    cfg.model.backbone.non_local = 'res9_1'
    with pytest.raises(ValueError, match='non_local:.*allowed'):
        MODELS.build(cfg.model)


# ------------------------------------------------------------------ MMAction2 compatibility


def build_from_config(path):
    cfg = Config.fromfile(path)
    cfg.model.backbone.pretrained = None
    return MODELS.build(cfg.model).eval()


def randomise(model, inputs, seed=0):
    """Random BN statistics and affine parameters; the non-local blocks' BN statistics are
    then set to those of ``inputs``, so that every block changes the features markedly (a
    fresh block is the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.dim() != 1 or not value.dtype.is_floating_point:
                continue
            if key.endswith(('running_var', 'weight')):
                value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
            else:
                value.copy_(torch.randn(value.shape, generator=generator) * 0.1)
        norms = [m for name, m in model.named_modules()
                 if 'non_local_block' in name and isinstance(m, torch.nn.BatchNorm3d)]
        for norm in norms:
            norm.momentum = 1.0
            norm.train()
        logits(model, inputs)
        for norm in norms:
            norm.momentum = 0.1
            norm.eval()


def transfer(source, target, tmp_path):
    """Save ``source`` as a checkpoint and load it strictly into ``target`` (as load_from)."""
    path = str(tmp_path / 'checkpoint.pth')
    save_checkpoint(dict(meta=dict(epoch=100), state_dict=source.state_dict()), path)
    load_checkpoint(target, path, map_location='cpu', strict=True)


def assert_close_to_scale(actual, expected):
    """Equal up to float32 rounding accumulated over ~50 layers."""
    atol = 1e-5 * float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=atol)


def logits(model, inputs):
    feats, kwargs = model.extract_feat(inputs)
    return model.cls_head(feats, **kwargs)


@pytest.mark.parametrize('mmaction_config, nlnet_config, frames', [
    ('c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py',
     'c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py', 8),
    ('i3d/i3d_imagenet-pretrained-r50-nl-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'nl-i3d/nl-i3d_r50-in1k-pre-mmaction-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py',
     16),
    ('i3d/i3d_imagenet-pretrained-r50-nl-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py',
     'nl-i3d/nl-i3d_r50-in1k-pre-mmaction-dot-product_8xb8-32x2x1-100e_kinetics400-rgb.py', 16),
])
def test_mmaction2_checkpoint_gives_the_same_outputs(mmaction_config, nlnet_config, frames,
                                                     tmp_path):
    # float64: an unscaled embedded Gaussian's peaked softmax over ~50 layers amplifies
    # float32 rounding past any tolerance that would still catch a wrong block.
    torch.manual_seed(0)
    inputs = torch.randn(1, 1, 3, frames, 64, 64)
    reference = build_from_config(osp.join(MMACTION_CONFIG_DIR, mmaction_config))
    randomise(reference, inputs)
    model = build_from_config(osp.join(CONFIG_DIR, nlnet_config))
    transfer(reference, model, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(logits(model.double(), inputs.double()),
                                   logits(reference.double(), inputs.double()))


def test_tsn_style_nopool_c2d_checkpoint_gives_the_same_predictions(tmp_path):
    """MMAction2's no-pool C2D row is a 2D ResNet in Recognizer2D; its 2D kernels load into
    nlnet's 1x7x7/1x3x3 convs and ConsensusI3DHead reproduces its multi-view test scores."""
    views = torch.randn(1, 2, 3, 8, 64, 64)
    frames_2d = views.permute(0, 1, 3, 2, 4, 5).reshape(1, 16, 3, 64, 64)
    reference = build_from_config(osp.join(
        MMACTION_CONFIG_DIR, 'c2d', 'c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py'))
    randomise(reference, frames_2d)
    model = build_from_config(osp.join(
        CONFIG_DIR, 'c2d', 'c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py'))
    transfer(reference, model, tmp_path)
    assert model.backbone.conv1.conv.weight.shape == (64, 3, 1, 7, 7)
    with torch.no_grad():
        ours = model.predict(views, [ActionDataSample()])[0].pred_score
        theirs = reference.predict(frames_2d, [ActionDataSample()])[0].pred_score
    assert_close_to_scale(ours, theirs)
