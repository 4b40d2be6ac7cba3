"""ImageNet initialisation: 2D ResNet-50 weights inflated into C2D / I3D / NL backbones."""
import pytest
import torch
import torchvision

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import MODELS
from nlnet.models.backbones.inflate import resolve_pretrained

I3D = dict(conv1_kernel=(5, 7, 7), inflate='i3d')


@pytest.fixture(scope='module')
def resnet50_2d():
    """A torchvision ResNet-50 with generated weights and BN statistics, eval mode."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith('running_var') or (value.dim() == 1 and name.endswith('weight')):
                value.uniform_(0.5, 1.5)
            elif name.endswith(('running_mean', 'bias')):
                value.normal_(0, 0.1)
    return model.eval()


@pytest.fixture(scope='module')
def torchvision_file(resnet50_2d, tmp_path_factory):
    path = tmp_path_factory.mktemp('pretrained') / 'resnet50_2d.pth'
    torch.save(resnet50_2d.state_dict(), path)
    return str(path)


def inflated(path, **kwargs):
    model = MODELS.build(dict(type='VideoResNet', depth=50, pretrained=path, **kwargs))
    model.init_weights()
    return model.eval()


def test_inflated_kernels_sum_over_time_to_the_2d_ones(resnet50_2d, torchvision_file):
    model = inflated(torchvision_file, **I3D, inflate_style='3x3x3', non_local='5blocks')
    state_2d = resnet50_2d.state_dict()
    state_3d = model.state_dict()
    for key_3d, key_2d, t in [('conv1.conv.weight', 'conv1.weight', 5),
                              ('layer1.0.conv2.conv.weight', 'layer1.0.conv2.weight', 3),
                              ('layer2.1.conv2.conv.weight', 'layer2.1.conv2.weight', 1),
                              ('layer2.2.conv2.conv.weight', 'layer2.2.conv2.weight', 3),
                              ('layer2.0.downsample.conv.weight', 'layer2.0.downsample.0.weight', 1)]:
        kernel = state_3d[key_3d]
        assert kernel.shape[2] == t
        torch.testing.assert_close(kernel.sum(dim=2), state_2d[key_2d])
        torch.testing.assert_close(kernel, kernel[:, :, :1].expand_as(kernel))
    for key_3d, key_2d in [('conv1.bn.running_var', 'bn1.running_var'),
                           ('layer2.0.downsample.bn.weight', 'layer2.0.downsample.1.weight'),
                           ('layer4.1.conv3.bn.running_mean', 'layer4.1.bn3.running_mean')]:
        torch.testing.assert_close(state_3d[key_3d], state_2d[key_2d])
    for _, block in model.non_local_blocks():
        assert torch.count_nonzero(block.conv_out.norm.weight) == 0


@pytest.mark.parametrize('kwargs, frames', [(dict(), 2), (I3D, 24)])
def test_static_video_gives_the_2d_features(resnet50_2d, torchvision_file, kwargs, frames):
    """C2D per frame; I3D away from the temporal borders, where zero padding of the t x k x k
    kernels is not seen (11 frames each side for ResNet-50's inflated layers)."""
    model = inflated(torchvision_file, **kwargs, non_local='res4_1')
    image = torch.randn(1, 3, 32, 32)
    video = image.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()
    features_2d = torch.nn.Sequential(*list(resnet50_2d.children())[:-2])
    with torch.no_grad():
        expected = features_2d(image)
        out = model(video)
    centre = frames // 2
    # The features reach ~1e3 with generated weights: compare relative to their scale.
    atol = 1e-5 * float(expected.abs().max())
    torch.testing.assert_close(out[:, :, centre], expected, rtol=1e-4, atol=atol)
    if not kwargs:
        torch.testing.assert_close(out[:, :, 0], expected, rtol=1e-4, atol=atol)


def test_mmpretrain_layout_inflates_like_torchvision(resnet50_2d, torchvision_file, tmp_path):
    wrapped = dict(state_dict={f'backbone.{k}': v for k, v in resnet50_2d.state_dict().items()})
    wrapped['state_dict']['head.fc.weight'] = torch.zeros(1000, 2048)
    path = tmp_path / 'mmpretrain_resnet50.pth'
    torch.save(wrapped, path)
    tiny = dict(I3D, stage_blocks=(1, 1, 1, 1))
    reference = inflated(torchvision_file, **tiny).state_dict()
    for key, value in inflated(str(path), **tiny).state_dict().items():
        torch.testing.assert_close(value, reference[key], msg=key)


def test_url_is_read_from_the_torch_hub_cache(resnet50_2d, torchvision_file, tmp_path,
                                              monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path))
    url = 'http://127.0.0.1:9/weights/resnet50_2d.pth'
    with pytest.raises(RuntimeError, match='could not download http://127.0.0.1:9/weights/'
                       'resnet50_2d.pth .*put it at .*checkpoints/resnet50_2d.pth'):
        resolve_pretrained(url)
    (tmp_path / 'checkpoints').mkdir(exist_ok=True)
    (tmp_path / 'checkpoints' / 'resnet50_2d.pth').symlink_to(torchvision_file)
    assert resolve_pretrained(url) == str(tmp_path / 'checkpoints' / 'resnet50_2d.pth')
    model = inflated(url, stage_blocks=(1, 1, 1, 1))
    torch.testing.assert_close(model.conv1.conv.weight[:, :, 0], resnet50_2d.conv1.weight)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='pretrained: .*nowhere.pth does not exist'):
        inflated(str(tmp_path / 'nowhere.pth'))


def test_wrong_depth_and_wrong_file_are_reported(resnet50_2d, torchvision_file, tmp_path):
    with pytest.raises(KeyError, match='lacks .* backbone weights'):
        inflated(torchvision_file, stage_blocks=(3, 4, 7, 3))
    with pytest.raises(ValueError, match=r'conv1.weight has shape \(64, 3, 7, 7\)'):
        inflated(torchvision_file, in_channels=2)
    path = tmp_path / 'not_a_resnet.pth'
    torch.save({'encoder.weight': torch.zeros(2)}, path)
    with pytest.raises(ValueError, match='not a 2D ResNet state dict'):
        inflated(str(path))
