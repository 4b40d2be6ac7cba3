"""VideoResNet options of the official frozen-BN long-clip models: non-local blocks on
groups of frames, and BN frozen into a per-channel affine map (ChannelAffine)."""
import pytest
import torch

import nlnet.openmmlab  # noqa: F401
from nlnet.models.backbones.video_resnet import Bottleneck3d, VideoResNet
from nlnet.models.layers.channel_affine import ChannelAffine

NON_LOCAL = dict(mode='embedded_gaussian', sub_sample=True, zero_init=False)


def test_non_local_block_runs_on_each_group_of_frames():
    """Without temporal kernels the block is frame-wise except for its non-local block, so
    grouping 8 frames by 4 equals running the ungrouped block on each half."""
    torch.manual_seed(0)
    grouped = Bottleneck3d(16, 4, non_local_cfg=NON_LOCAL, non_local_group_frames=4).eval()
    whole = Bottleneck3d(16, 4, non_local_cfg=NON_LOCAL).eval()
    whole.load_state_dict(grouped.state_dict())
    x = torch.randn(2, 16, 8, 4, 4)
    with torch.no_grad():
        expected = torch.cat([whole(x[:, :, :4]), whole(x[:, :, 4:])], dim=2)
        torch.testing.assert_close(grouped(x), expected)
        assert not torch.allclose(whole(x), expected)  # the grouping changes the result


def test_group_frames_placed_per_stage_and_validated():
    model = VideoResNet(base_channels=4, non_local='5blocks', non_local_cfg=NON_LOCAL,
                        non_local_group_frames=(None, 4, None, None), temporal_pool=True)
    frames = {name.split('.non_local_block')[0]: getattr(
        model.get_submodule(name.split('.non_local_block')[0]), 'non_local_group_frames')
        for name, _ in model.non_local_blocks()}
    assert frames == {'layer2.1': 4, 'layer2.3': 4, 'layer3.1': None, 'layer3.3': None,
                      'layer3.5': None}
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 16, 32, 32)).shape == (1, 128, 8, 1, 1)
        with pytest.raises(ValueError, match='non_local_group_frames=4 must divide the 6 frames'):
            model(torch.randn(1, 3, 12, 32, 32))
    with pytest.raises(ValueError, match=r'non_local_group_frames: expected None or 4 entries'):
        VideoResNet(non_local_group_frames=(None, 4, None))
    with pytest.raises(ValueError, match=r'non_local_group_frames: .* got \(None, 0, None, None\)'):
        VideoResNet(non_local_group_frames=(None, 0, None, None))


def test_channel_affine_replaces_bn_under_the_same_keys():
    model = VideoResNet(base_channels=4, stage_blocks=(1, 1, 1, 1),
                        norm_cfg=dict(type='ChannelAffine', eps=1.0000001e-5))
    keys = set(model.state_dict())
    assert {'conv1.bn.weight', 'conv1.bn.bias', 'layer1.0.downsample.bn.weight'} <= keys
    assert not any('running' in key for key in keys)
    affine = model.conv1.bn
    assert isinstance(affine, ChannelAffine)
    with torch.no_grad():
        affine.weight.uniform_(0.5, 2)
        affine.bias.normal_()
    x = torch.randn(2, 4, 3, 5, 5)
    channel = (1, -1, 1, 1, 1)
    torch.testing.assert_close(affine(x),
                               x * affine.weight.view(channel) + affine.bias.view(channel))


def test_channel_affine_validates():
    with pytest.raises(ValueError, match='num_features must be an integer >= 1, got 0'):
        ChannelAffine(0)
    with pytest.raises(ValueError, match=r'ChannelAffine\(4\) expects \(N, 4, ...\), got shape '
                       r'\(2, 3, 5\)'):
        ChannelAffine(4)(torch.randn(2, 3, 5))
