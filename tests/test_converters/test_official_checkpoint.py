"""official_checkpoint: an official pickle, recognised by content, as mmengine's checkpoint dict."""
import numpy as np
import pytest
import torch
from helpers.official_caffe2 import (OFFICIAL_CONFIGS, imagenet_blob_shapes, random_blobs,
                                     video_blob_shapes, with_training_state, write_python2_pickle)
from helpers.python2_pickles import PROTOCOLS
from mmengine.runner.checkpoint import _load_checkpoint

from nlnet.checkpoint_errors import CorruptCheckpointError
from nlnet.converters import official_checkpoint
from nlnet.models.backbones.video_resnet import VideoResNet

NL_I3D = OFFICIAL_CONFIGS['nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py']


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_video_pickle_gets_recognizer_keys(tmp_path, protocol):
    """Each pickle protocol of the official files, through the loader mmengine calls for
    load_from, resume and tools/test.py."""
    path = str(tmp_path / 'i3d_nonlocal_8x8_IN_pretrain_400k.pkl')
    blobs = random_blobs(video_blob_shapes(NL_I3D, 4, 5))
    write_python2_pickle(path, dict(blobs=with_training_state(blobs)), protocol)
    checkpoint = _load_checkpoint(path)
    state_dict = checkpoint['state_dict']
    assert np.array_equal(state_dict['backbone.layer2.1.non_local_block.theta.conv.weight'],
                          blobs['nonlocal_conv3_1_theta_w'])
    assert 'lr' in checkpoint['meta']['dropped_blobs']


def test_imagenet_pickle_gets_torchvision_keys(tmp_path):
    path = str(tmp_path / 'r50_pretrain_c2_model_iter450450_clean.pkl')
    blobs = random_blobs(imagenet_blob_shapes(50, 4, 10))
    write_python2_pickle(path, dict(blobs=blobs))
    state_dict = official_checkpoint(path)['state_dict']
    assert np.array_equal(state_dict['layer1.0.downsample.0.weight'], blobs['res2_0_branch1_w'])


def test_other_files_are_left_to_torch(tmp_path):
    path = str(tmp_path / 'epoch_1.pth')
    torch.save(dict(state_dict={'w': torch.ones(1)}), path)
    assert official_checkpoint(path) is None


def test_foreign_blob_names_are_a_corrupt_checkpoint(tmp_path):
    path = str(tmp_path / 'odd.pkl')
    write_python2_pickle(path, dict(blobs={'conv1_w': np.ones((2, 3, 1, 7, 7), np.float32),
                                           'fc8_w': np.ones((2, 2), np.float32)}))
    with pytest.raises(CorruptCheckpointError, match=r"odd.pkl.*\['fc8_w'\]"):
        official_checkpoint(path)


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_imagenet_pickle_is_a_pretrained_source(tmp_path, protocol):
    """VideoResNet(pretrained='r50....pkl') reads the official ImageNet pickle directly
    (mmengine's local loader) and inflates it as the official loader."""
    path = str(tmp_path / 'r50_pretrain_c2_model_iter450450_clean.pkl')
    blobs = random_blobs(imagenet_blob_shapes(50, 4, 10))
    write_python2_pickle(path, dict(blobs=blobs), protocol)
    backbone = VideoResNet(base_channels=4, conv1_kernel=(5, 7, 7), inflate='i3d',
                           pretrained=path)
    backbone.init_weights()
    branch2a = torch.from_numpy(blobs['res2_0_branch2a_w'])
    torch.testing.assert_close(backbone.layer1[0].conv1.conv.weight,
                               torch.stack([branch2a] * 3, dim=2) / 3, rtol=0, atol=0)
