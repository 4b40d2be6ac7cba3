"""NonLocalFPN: mmdet's FPN with non-local blocks on chosen output levels."""
import pytest
import torch
from mmdet.registry import MODELS

import nlnet.openmmlab  # noqa: F401
from nlnet.models.layers import NonLocalBlock

FPN_ARGS = dict(in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5)
SIZES = (32, 16, 8, 4)


def pyramid(batch=2):
    return tuple(torch.randn(batch, c, s, s) for c, s in zip(FPN_ARGS['in_channels'], SIZES))


def build(**kwargs):
    neck = MODELS.build(dict(type=kwargs.pop('type', 'NonLocalFPN'), **FPN_ARGS, **kwargs))
    neck.init_weights()
    return neck


def test_defaults_p3_to_p5_with_p3_sub_sampled():
    neck = build()
    assert neck.non_local == (1, 2, 3)
    assert {level: block.sub_sample for level, block in neck.nl_blocks.items()} == {
        '1': True, '2': False, '3': False}


def test_keeps_fpn_keys_and_starts_as_the_identity():
    neck = build(non_local=(0, 1, 2, 3, 4), sub_sample_levels=(0, 1),
                 non_local_cfg=dict(mode='embedded_gaussian', reduction=4))
    fpn = build(type='FPN')
    incompatible = neck.load_state_dict(fpn.state_dict(), strict=False)
    assert not incompatible.unexpected_keys
    assert incompatible.missing_keys and all(k.startswith('nl_blocks.')
                                             for k in incompatible.missing_keys)
    for block in neck.nl_blocks.values():
        assert block.conv_out.norm.weight.abs().sum() == 0
        assert block.theta.conv.weight.std().item() == pytest.approx(0.01, rel=0.5)
        assert block.inter_channels == 4
    inputs = pyramid()
    for mode in ('train', 'eval'):
        getattr(neck, mode)()
        getattr(fpn, mode)()
        with torch.no_grad():
            for out, ref in zip(neck(inputs), fpn(inputs)):
                torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_checkpoint_keys_are_fpn_plus_nl_blocks():
    """A state dict with the keys saved before the arguments' rename loads strictly."""
    neck = build(non_local=(0, 3), sub_sample_levels=(0, ))
    fpn_keys = set(build(type='FPN').state_dict())
    saved_keys = fpn_keys | {f'nl_blocks.{level}.{key}' for level in (0, 3)
                             for key in NonLocalBlock(16, dim=2, sub_sample=True).state_dict()}
    assert set(neck.state_dict()) == saved_keys
    state = {key: torch.randn_like(value) if value.is_floating_point() else value
             for key, value in neck.state_dict().items()}
    neck.load_state_dict(state, strict=True)
    torch.testing.assert_close(neck.nl_blocks['3'].g.conv.weight,
                               state['nl_blocks.3.g.conv.weight'])


def test_forward_backward():
    neck = build(non_local_cfg=dict(mode='dot_product'))
    neck.train()
    inputs = pyramid()
    outs = neck(inputs)
    assert [tuple(o.shape) for o in outs] == [(2, 16, s, s) for s in (32, 16, 8, 4, 2)]
    sum(o.square().mean() for o in outs).backward()
    for block in neck.nl_blocks.values():
        assert isinstance(block, NonLocalBlock) and block.mode == 'dot_product'
        assert all(p.grad is not None for p in block.parameters())
        assert block.conv_out.norm.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in neck.fpn_convs.parameters())


def test_extra_output_level_and_start_level():
    neck = build(start_level=1, add_extra_convs='on_output', non_local=(0, 3),
                 sub_sample_levels=())
    outs = neck(pyramid())
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2, 1]
    assert sorted(neck.nl_blocks) == ['0', '3']


@pytest.mark.parametrize('kwargs, match', [
    (dict(non_local=(5, )), r'non_local: level 5 is not one of \(0, 1, 2, 3, 4\)'),
    (dict(non_local=(-1, )), r'non_local: level -1'),
    (dict(non_local=(1, 1)), r'non_local repeats a level'),
    (dict(non_local=(2, 3)), r'sub_sample_levels: level 1 is not one of \(2, 3\)'),
    (dict(non_local_cfg=dict(sub_sample=True)),
     r"non_local_cfg must not set 'sub_sample': NonLocalFPN derives it"),
    (dict(non_local_cfg=dict(pool_position='middle')),
     r'non_local_cfg: pool_position must be one of'),
])
def test_bad_level_or_option_fails_at_build_naming_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='NonLocalFPN', **FPN_ARGS, **kwargs))
