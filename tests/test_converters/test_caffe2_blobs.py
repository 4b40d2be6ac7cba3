"""Every official config takes the exact blob layout of its official model, at full size
and through a pickle; a blob renamed, missing, extra or of the wrong shape is named."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from helpers.official_caffe2 import (OFFICIAL_CONFIGS, imagenet_blob_shapes, random_blobs,
                                     video_blob_shapes, with_training_state, write_python2_pickle)
from helpers.official_models import CONFIG_DIR, NUM_CLASSES, WIDTH, tiny_model

from nlnet.converters import (Caffe2ConversionError, blob_name_of_key, build_recognizer,
                              caffe2_to_model_state_dict, caffe2_to_state_dict,
                              caffe2_to_torchvision_resnet, load_caffe2_blobs)
from nlnet.models.backbones.video_resnet import VideoResNet

NL_I3D = 'nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py'


def zero_blobs(shapes):
    """Full-size blobs without the memory: calloc'd zeros are not touched by the mapping."""
    return {name: np.zeros(shape, np.float32) for name, shape in shapes.items()}


def test_every_official_config_is_listed():
    assert {osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py'))} == \
        set(OFFICIAL_CONFIGS)


@pytest.mark.parametrize('config', sorted(OFFICIAL_CONFIGS))
def test_full_size_official_layout_fits_the_config_exactly(config):
    """The blobs create_model() makes at WIDTH_PER_GROUP 64 cover every key of the
    config's model (built on the meta device) with its shape, and nothing else."""
    model_state = build_recognizer(osp.join(CONFIG_DIR, config), 'meta').state_dict()
    blobs = zero_blobs(video_blob_shapes(OFFICIAL_CONFIGS[config]))
    state_dict, dropped = caffe2_to_model_state_dict(blobs, model_state, config)
    assert list(state_dict) == list(model_state) and dropped == []
    for key, value in state_dict.items():
        assert value.shape == model_state[key].shape, key


@pytest.mark.parametrize('config', sorted(OFFICIAL_CONFIGS))
def test_official_pickle_loads_strictly(config, tmp_path):
    """A Python 2 pickle with the official names and shapes (reduced width) and random
    values loads strictly, value for value, and its training state is dropped."""
    blobs = random_blobs(video_blob_shapes(OFFICIAL_CONFIGS[config], WIDTH, NUM_CLASSES))
    pkl = str(tmp_path / 'model.pkl')
    write_python2_pickle(pkl, dict(blobs=with_training_state(blobs)))
    model = tiny_model(config)
    state_dict, dropped = caffe2_to_model_state_dict(load_caffe2_blobs(pkl), model.state_dict(),
                                                     pkl)
    model.load_state_dict(state_dict, strict=True)
    loaded = model.state_dict()
    for key in loaded:
        blob = blob_name_of_key(key)
        if blob is not None and not blob.endswith(('_out_b', '_bn_rm')):
            assert torch.equal(loaded[key].reshape(blobs[blob].shape),
                               torch.from_numpy(blobs[blob]))
    assert sorted(dropped) == sorted(['model_iter', 'lr'] + [
        f'{name}_momentum' for name in blobs if not name.endswith(('_rm', '_riv'))])


@pytest.fixture(scope='module')
def nl_i3d():
    model_state = build_recognizer(osp.join(CONFIG_DIR, NL_I3D), 'meta').state_dict()
    return model_state, zero_blobs(video_blob_shapes(OFFICIAL_CONFIGS[NL_I3D]))


def _convert(nl_i3d, blobs):
    return caffe2_to_model_state_dict(blobs, nl_i3d[0], 'model.pkl')


def test_missing_blob_is_named(nl_i3d):
    blobs = dict(nl_i3d[1])
    del blobs['nonlocal_conv4_3_phi_w']
    with pytest.raises(Caffe2ConversionError, match=r'missing.*nonlocal_conv4_3_phi_w \(for '
                       r'backbone\.layer3\.3\.non_local_block\.phi\.conv\.weight\)'):
        _convert(nl_i3d, blobs)


def test_renamed_blob_is_named(nl_i3d):
    blobs = dict(nl_i3d[1])
    blobs['res3_1_brnch2a_w'] = blobs.pop('res3_1_branch2a_w')
    with pytest.raises(Caffe2ConversionError, match=r"not parameters.*'res3_1_brnch2a_w'"):
        _convert(nl_i3d, blobs)


def test_blob_without_place_in_the_model_is_named(nl_i3d):
    """A non-local block the config does not have (res4 block 4)."""
    blobs = dict(nl_i3d[1], nonlocal_conv4_4_g_b=np.zeros(512, np.float32))
    with pytest.raises(Caffe2ConversionError, match=r'no place for.*nonlocal_conv4_4_g_b'):
        _convert(nl_i3d, blobs)


def test_wrong_shape_is_named(nl_i3d):
    """A 3x1x1 kernel where the official I3D has none (block 1 of res3 is not inflated)."""
    blobs = dict(nl_i3d[1], res3_1_branch2a_w=np.zeros((128, 512, 3, 1, 1), np.float32))
    with pytest.raises(Caffe2ConversionError, match=r'res3_1_branch2a_w: shape \(128, 512, 3, 1, '
                       r'1\).*needs \(128, 512, 1, 1, 1\)'):
        _convert(nl_i3d, blobs)


def test_c2d_blobs_do_not_fit_i3d(nl_i3d):
    c2d = zero_blobs(video_blob_shapes(OFFICIAL_CONFIGS[NL_I3D]._replace(arc='c2d')))
    with pytest.raises(Caffe2ConversionError, match=r'conv1_w: shape \(64, 3, 1, 7, 7\)'):
        _convert(nl_i3d, c2d)


def test_test_net_pred_layout_and_out_bias_fold():
    """pred_w saved by a test net (1x1x1 conv) becomes the FC weight; W_z's bias before a
    BN moves into its running mean, W_z's bias without BN stays a bias."""
    blobs = {'pred_w': np.ones((5, 8, 1, 1, 1), np.float32),
             'nonlocal_conv3_1_out_b': np.full(8, 0.5, np.float32),
             'nonlocal_conv3_1_bn_rm': np.full(8, 2.0, np.float32),
             'nonlocal_conv4_1_out_b': np.full(8, 0.25, np.float32)}
    state_dict, _ = caffe2_to_state_dict(blobs)
    assert state_dict['cls_head.fc_cls.weight'].shape == (5, 8)
    nl3, nl4 = 'backbone.layer2.1.non_local_block', 'backbone.layer3.1.non_local_block'
    assert torch.equal(state_dict[f'{nl3}.conv_out.bn.running_mean'], torch.full((8, ), 1.5))
    assert f'{nl3}.conv_out.conv.bias' not in state_dict
    assert torch.equal(state_dict[f'{nl4}.conv_out.conv.bias'], torch.full((8, ), 0.25))


def test_out_bias_fold_is_exact_up_to_one_float32_rounding():
    """The README's claim: the folded mean is rm - b rounded once to float32, no better."""
    rng = np.random.default_rng(0)
    mean, bias = (rng.normal(0, 1, 256).astype(np.float32) for _ in range(2))
    state_dict, _ = caffe2_to_state_dict({'nonlocal_conv3_1_out_b': bias,
                                          'nonlocal_conv3_1_bn_rm': mean})
    folded = state_dict['backbone.layer2.1.non_local_block.conv_out.bn.running_mean'].numpy()
    exact = mean.astype(np.float64) - bias.astype(np.float64)
    assert folded.dtype == np.float32 and np.array_equal(folded, exact.astype(np.float32))
    assert (np.abs(folded - exact) <= np.spacing(np.abs(folded)) / 2).all()
    assert not np.array_equal(folded.astype(np.float64), exact)


@pytest.mark.parametrize('depth', [50, 101])
def test_imagenet_model_in_torchvision_layout(depth):
    torchvision = pytest.importorskip('torchvision')
    with torch.device('meta'):
        expected = getattr(torchvision.models, f'resnet{depth}')().state_dict()
    blobs = with_training_state(zero_blobs(imagenet_blob_shapes(depth)))
    state_dict, dropped = caffe2_to_torchvision_resnet(blobs, f'r{depth}.pkl')
    assert {k: tuple(v.shape) for k, v in state_dict.items()} == \
        {k: tuple(v.shape) for k, v in expected.items()}
    assert 'lr' in dropped


def test_imagenet_model_inflates_as_the_official_loader(tmp_path):
    """pretrained= takes the converted file; an inflated kernel is the 2D one stacked t
    times and divided by t (checkpoints.initialize_master_gpu_model_params)."""
    blobs = random_blobs(imagenet_blob_shapes(50, WIDTH, NUM_CLASSES))
    state_dict, _ = caffe2_to_torchvision_resnet(blobs)
    torch.save(state_dict, tmp_path / 'r50.pth')
    backbone = VideoResNet(base_channels=WIDTH, conv1_kernel=(5, 7, 7), inflate='i3d',
                           pretrained=str(tmp_path / 'r50.pth'))
    backbone.init_weights()
    conv1 = torch.from_numpy(blobs['conv1_w'])
    torch.testing.assert_close(backbone.conv1.conv.weight,
                               torch.stack([conv1] * 5, dim=2) / 5, rtol=0, atol=0)
    torch.testing.assert_close(backbone.layer1[0].conv1.bn.running_var,
                               torch.from_numpy(blobs['res2_0_branch2a_bn_riv']))


def test_imagenet_mode_refuses_a_video_model():
    blobs = zero_blobs(video_blob_shapes(OFFICIAL_CONFIGS[NL_I3D], WIDTH))
    with pytest.raises(Caffe2ConversionError, match='video network'):
        caffe2_to_torchvision_resnet(blobs, 'video.pkl')


def test_imagenet_model_with_bn_frozen_into_affine_layers():
    """An ImageNet pickle without running statistics (BN folded to *_s, *_b) gets mean 0 and
    variance 1, the initial values the official loader leaves when a file lacks them."""
    shapes = {name: shape for name, shape in imagenet_blob_shapes(50, WIDTH).items()
              if not name.endswith(('_rm', '_riv'))}
    state_dict, _ = caffe2_to_torchvision_resnet(random_blobs(shapes))
    assert torch.equal(state_dict['layer2.0.downsample.1.running_mean'], torch.zeros(8 * WIDTH))
    assert torch.equal(state_dict['bn1.running_var'], torch.ones(WIDTH))
