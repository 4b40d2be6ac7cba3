"""nlnet.apis labels: the shipped label maps, the one a config's dataset picks, and the
top-k order."""
import glob
import os.path as osp

import numpy as np
import pytest
from helpers.video_tools import ROOT
from mmengine.config import Config

from nlnet import apis


@pytest.mark.parametrize('config,expected,count', [
    ('configs/recognition/nl-i3d/nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py',
     apis.KINETICS400_LABEL_MAP, 400),
    ('configs/recognition/charades/nl-i3d_r101-k400-128f-pre_8xb1-128x1x1-200k_charades-rgb.py',
     apis.CHARADES_LABEL_MAP, 157),
    ('configs/demo/nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py', None, 4),
])
def test_label_map_follows_the_config_dataset(config, expected, count):
    cfg = Config.fromfile(osp.join(ROOT, config))
    assert apis.default_label_map(cfg) == expected
    names = apis.label_names(cfg, cfg.model.cls_head.num_classes)
    assert len(names) == cfg.model.cls_head.num_classes == count
    if expected is None:
        assert names == [f'class {index}' for index in range(count)]


def test_shipped_label_maps():
    kinetics = apis.load_label_map(apis.KINETICS400_LABEL_MAP)
    charades = apis.load_label_map(apis.CHARADES_LABEL_MAP)
    assert len(set(kinetics)) == 400 and kinetics[:2] == ['abseiling', 'air drumming']
    assert [name.split()[0] for name in charades] == [f'c{index:03d}' for index in range(157)]
    # Every shipped map is package data (setup.py) and named in the folder's README.
    with open(osp.join(osp.dirname(apis.KINETICS400_LABEL_MAP), 'README.md')) as handle:
        readme = handle.read()
    for path in glob.glob(osp.join(osp.dirname(apis.KINETICS400_LABEL_MAP), '*.txt')):
        assert osp.basename(path) in readme


def test_top_labels_order():
    scores = np.array([0.1, 0.4, 0.1, 0.4], np.float32)
    labels = apis.top_labels(scores, ['a', 'b', 'c', 'd'], k=3)
    assert [(label.index, label.name) for label in labels] == [(1, 'b'), (3, 'd'), (0, 'a')]
    assert labels[0].score == pytest.approx(0.4)
