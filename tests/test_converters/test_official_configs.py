"""The official configs keep the official code's data, normalisation and test protocol."""
import os.path as osp
import re

import pytest
from helpers.official_caffe2 import BN_EPSILON, OFFICIAL_CONFIGS
from helpers.official_models import CONFIG_DIR
from mmengine.config import Config

NAME = re.compile(r'(?P<model>[a-z0-9-]+)_r50-official(?P<affine>-affine)?_8xb(?P<batch>\d+)-'
                  r'(?P<clip>\d+)x(?P<interval>\d+)x1-400k_kinetics400-rgb\.py')


@pytest.mark.parametrize('config', sorted(OFFICIAL_CONFIGS))
def test_official_data_and_test_protocol(config):
    match = NAME.fullmatch(config)
    assert match, config
    cfg = Config.fromfile(osp.join(CONFIG_DIR, config))
    clip = (int(match['clip']), int(match['interval']))
    train, test = cfg.train_dataloader.dataset.pipeline, cfg.test_dataloader.dataset.pipeline
    assert (train[1].clip_len, train[1].frame_interval, train[1].num_clips) == (*clip, 1)
    assert cfg.train_dataloader.batch_size == int(match['batch'])
    assert [t.type for t in train[3:6]] == ['RandomRescale', 'RandomCrop', 'Flip']
    assert train[3].scale_range == (256, 320) and train[4].size == 224
    # 10 clips x 3 crops of 256 at a short side of 256, fully convolutional.
    assert (test[1].clip_len, test[1].frame_interval, test[1].num_clips) == (*clip, 10)
    assert test[3] == dict(type='Resize', scale=(-1, 256))
    assert test[4] == dict(type='ThreeCrop', crop_size=256)
    assert cfg.model.cls_head.type == 'FullyConvHead' and cfg.model.cls_head.window == 7
    assert cfg.model.cls_head.average_clips == 'prob'
    assert cfg.model.data_preprocessor.mean == [114.75] * 3
    assert cfg.model.data_preprocessor.std == [57.375] * 3
    backbone = cfg.model.backbone
    assert backbone.pretrained is None
    if match['affine']:
        assert backbone.norm_cfg.type == 'ChannelAffine' and backbone.non_local_cfg.norm_cfg is None
        assert backbone.non_local_group_frames == (None, 4, None, None)
    else:
        assert backbone.norm_cfg == dict(type='BN3d', eps=BN_EPSILON)
        assert backbone.non_local_cfg.norm_cfg == dict(type='BN3d', eps=BN_EPSILON)


def test_readme_lists_every_official_config():
    with open(osp.join(CONFIG_DIR, 'README.md')) as handle:
        readme = handle.read()
    assert set(re.findall(r'\]\(([\w.-]+\.py)\)', readme)) == set(OFFICIAL_CONFIGS)
