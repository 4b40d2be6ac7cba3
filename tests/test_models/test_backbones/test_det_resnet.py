"""NonLocalResNet: non-local blocks between mmdet ResNet blocks; NonLocalBlock as mmdet plugin."""
import pytest
import torch
from mmdet.registry import MODELS

import nlnet.openmmlab  # noqa: F401
from nlnet.models.layers import NonLocalBlock

STAGE3_PLUGIN = dict(cfg=dict(type='NonLocalBlock', dim=2), stages=(False, False, True, False),
                     position='after_conv3')


def build(**kwargs):
    model = MODELS.build(dict(kwargs, type=kwargs.pop('type', 'NonLocalResNet')))
    model.init_weights()
    return model


@pytest.mark.parametrize('depth, key', [(50, 'layer3.4'), (101, 'layer3.21')])
def test_default_is_the_papers_block_before_the_last_res4_block(depth, key):
    model = MODELS.build(dict(type='NonLocalResNet', depth=depth))
    assert model.non_local == ((2, int(key.split('.')[1])), )
    plain = MODELS.build(dict(type='ResNet', depth=depth)).state_dict()
    new_keys = set(model.state_dict()) - set(plain)
    assert set(plain) <= set(model.state_dict())
    assert new_keys and all(k.startswith(f'non_local_blocks.{key}.') for k in new_keys)
    assert isinstance(model.non_local_blocks['layer3'][key.split('.')[1]], NonLocalBlock)


def test_forward_backward_after_chosen_blocks():
    model = build(depth=18, non_local=[(1, 0), (2, -1)],
                  non_local_cfg=dict(mode='dot_product', sub_sample=True), norm_eval=False)
    model.train()
    blocks = [model.non_local_blocks['layer2']['0'], model.non_local_blocks['layer3']['1']]
    assert [(b.in_channels, b.mode, b.sub_sample) for b in blocks] == [(128, 'dot_product', True),
                                                                       (256, 'dot_product', True)]
    outs = model(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4),
                                              (2, 512, 2, 2)]
    sum(o.square().mean() for o in outs).backward()
    for block in blocks:
        assert all(p.grad is not None for p in block.parameters())
        assert block.conv_out.norm.weight.grad.abs().sum() > 0


def test_init_weights_keeps_blocks_identity_and_outputs_equal_resnets():
    model = build(depth=18, non_local=[(0, 0), (3, -1)])
    for block in (model.non_local_blocks['layer1']['0'], model.non_local_blocks['layer4']['1']):
        assert block.conv_out.norm.weight.abs().sum() == 0
        assert block.theta.conv.weight.std().item() == pytest.approx(0.01, rel=0.2)
    baseline = build(type='ResNet', depth=18)
    incompatible = model.load_state_dict(baseline.state_dict(), strict=False)
    assert not incompatible.unexpected_keys
    assert all(k.startswith('non_local_blocks.') for k in incompatible.missing_keys)
    model.eval()
    baseline.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for out, ref in zip(model(x), baseline(x)):
            torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_blocks_in_frozen_stages_are_frozen():
    model = build(depth=18, base_channels=16, non_local=[(0, 0), (1, 0)],
                  frozen_stages=1)
    model.train()
    frozen, trained = model.non_local_blocks['layer1'], model.non_local_blocks['layer2']
    assert not any(p.requires_grad for p in frozen.parameters())
    assert not frozen.training
    assert all(p.requires_grad for p in trained.parameters())


def test_empty_positions_is_a_plain_resnet():
    model = build(depth=18, base_channels=16, non_local=())
    assert len(model.non_local_blocks) == 0
    assert not any('non_local' in key for key in model.state_dict())


@pytest.mark.parametrize('kwargs, match', [
    (dict(non_local=[(4, 0)]), r'non_local: stage 4 .* stages 0\.\.3'),
    (dict(non_local=[(2, 2)]), r'non_local: block 2 .* 2 blocks'),
    (dict(non_local=[(2, -3)]), r'non_local: block -3'),
    (dict(non_local=[(2, 1), (2, -1)]), r'non_local: .* repeats'),
    (dict(non_local=[2]), r'non_local entries must be \(stage, block\)'),
    (dict(non_local_cfg=dict(dim=3)), r"non_local_cfg must not set 'dim'"),
    (dict(non_local_cfg=dict(mode='cosine')), r'non_local_cfg: mode must be one of'),
])
def test_bad_position_or_option_fails_at_build_naming_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='NonLocalResNet', depth=18, **kwargs))


def test_checkpoint_keys_are_mmdet_resnet_plus_non_local_blocks():
    """A state dict with the keys saved before the rename of class and arguments loads strictly."""
    model = build(depth=18, base_channels=16, non_local=[(1, 0), (2, -1)])
    plain = MODELS.build(dict(type='ResNet', depth=18, base_channels=16)).state_dict()
    block_keys = list(NonLocalBlock(32, dim=2).state_dict())
    saved_keys = set(plain) | {f'non_local_blocks.{layer}.{key}'
                               for layer in ('layer2.0', 'layer3.1') for key in block_keys}
    assert set(model.state_dict()) == saved_keys
    state = {key: torch.randn_like(value) if value.is_floating_point() else value
             for key, value in model.state_dict().items()}
    model.load_state_dict(state, strict=True)
    torch.testing.assert_close(model.non_local_blocks['layer3']['1'].theta.conv.weight,
                               state['non_local_blocks.layer3.1.theta.conv.weight'])


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(non_local_cfg=dict(in_channels=8)), ValueError,
     r"non_local_cfg must not set 'in_channels': NonLocalResNet derives it \(got in_channels=8\)"),
    (dict(non_local_cfg=dict(reductoin=4)), TypeError, r'non_local_cfg: .*reductoin'),
    (dict(non_local_cfg=[('mode', 'dot_product')]), TypeError,
     r'non_local_cfg of NonLocalResNet must be a dict'),
])
def test_bad_non_local_cfg_names_the_key(kwargs, error, match):
    with pytest.raises(error, match=match):
        MODELS.build(dict(type='NonLocalResNet', depth=18, **kwargs))


@pytest.mark.parametrize('backbone', ['ResNet', 'NonLocalResNet'])
def test_non_local_block_as_mmdet_plugin(backbone):
    extra = dict(non_local=()) if backbone == 'NonLocalResNet' else {}
    model = build(type=backbone, depth=50, base_channels=16, plugins=[STAGE3_PLUGIN],
                  norm_eval=False, **extra)
    plugins = [getattr(block, name) for block in model.layer3
               for name in block.after_conv3_plugin_names]
    assert len(plugins) == len(model.layer3) == 6
    assert all(isinstance(p, NonLocalBlock) and p.in_channels == 256 for p in plugins)
    assert not any(block.after_conv3_plugin_names for block in model.layer2)
    assert all(p.conv_out.norm.weight.abs().sum() == 0 for p in plugins)

    plain = MODELS.build(dict(type='ResNet', depth=50, base_channels=16))
    unexpected = plain.load_state_dict(model.state_dict(), strict=False).unexpected_keys
    assert unexpected and all('.nonlocal_block.' in key for key in unexpected)
    model.eval()
    plain.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[3], plain(x)[3], rtol=0, atol=0)

    model.train()
    model(torch.randn(2, 3, 64, 64))[3].mean().backward()
    assert all(p.conv_out.norm.weight.grad is not None for p in plugins)


@pytest.mark.parametrize('plugin, match', [
    (dict(STAGE3_PLUGIN, position='after_conv4'), r'plugins\[0\]\.position must be one of'),
    (dict(STAGE3_PLUGIN, stages=(True, )), r'plugins\[0\]\.stages must have num_stages=4'),
])
def test_bad_plugin_fails_at_build_naming_the_key(plugin, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='NonLocalResNet', depth=50, plugins=[plugin]))
