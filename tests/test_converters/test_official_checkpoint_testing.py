"""tools/test.py with an official config on a generated Kinetics-layout set: the raw official
pickle and its converted checkpoint give identical dumps."""
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from helpers.official_caffe2 import (OFFICIAL_CONFIGS, random_blobs, video_blob_shapes,
                                     with_training_state, write_python2_pickle)
from helpers.official_models import CONFIG_DIR, WIDTH
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import make_video_data, run_log
from mmengine.config import Config

from nlnet.converters import convert_official_video_model

CONFIG = 'nl-i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py'
NUM_CLASSES = 4  # the demo dataset's
# The config's 10 clips x 3 crops at 64 instead of 224 pixels: what is compared is the dump
# of the raw pickle against the dump of its conversion, at any input size.
TEST_SIZE = 64


def small_test_pipeline():
    pipeline = Config.fromfile(osp.join(CONFIG_DIR, CONFIG)).test_dataloader.dataset.pipeline
    for transform in pipeline:
        if transform['type'] == 'Resize':
            transform['scale'] = (-1, TEST_SIZE)
        if transform['type'] == 'ThreeCrop':
            transform['crop_size'] = TEST_SIZE
    return pipeline


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A tiny official NL-I3D config on a generated validation video, and its official
    pickle (random weights in the official layout), in protocol 0 as the official
    conversion scripts write (the loader reads protocols 0-2 alike: test_official_checkpoint)."""
    root = tmp_path_factory.mktemp('official')
    data = make_video_data(root / 'data', num_train=1, num_val=1)
    config = root / 'tiny_official.py'
    config.write_text(
        f'_base_ = [{osp.join(CONFIG_DIR, CONFIG)!r}]\n'
        f'model = dict(backbone=dict(base_channels={WIDTH}), '
        f'cls_head=dict(in_channels={32 * WIDTH}, num_classes={NUM_CLASSES}))\n'
        f'test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False, '
        f'dataset=dict(ann_file={data.val_ann!r}, pipeline={small_test_pipeline()!r}, '
        f'data_prefix=dict(video={data.videos("val")!r})))\n')
    blobs = random_blobs(video_blob_shapes(OFFICIAL_CONFIGS[CONFIG], WIDTH, NUM_CLASSES))
    write_python2_pickle(root / 'official.pkl', dict(blobs=with_training_state(blobs)), 0)
    return root, str(config)



def dumped_samples(root, config, checkpoint, name):
    dump = root / f'{name}.pkl'
    load_tool('test.py').main([config, str(checkpoint), '--work-dir', str(root / name),
                               '--dump', str(dump), '--cfg-options', *own_instances(name)])
    with open(dump, 'rb') as handle:
        return pickle.load(handle)['samples']


def test_raw_pickle_tests_as_its_converted_checkpoint(workspace):
    """tools/test.py CONFIG official.pkl converts on the fly (a log line says so) and
    gives the dump of the converted .pth."""
    root, config = workspace
    model, _ = convert_official_video_model(str(root / 'official.pkl'), config)
    torch.save(dict(state_dict=model.state_dict()), root / 'converted.pth')
    converted = dumped_samples(root, config, root / 'converted.pth', 'converted')
    raw = dumped_samples(root, config, root / 'official.pkl', 'raw')
    assert len(converted) == len(raw) == 1
    scores = np.stack([s['pred_score'] for s in converted])
    assert scores.shape == (1, NUM_CLASSES) and np.allclose(scores.sum(1), 1)
    for ours, theirs in zip(converted, raw):
        assert ours.keys() == theirs.keys()
        for key in ours:
            assert np.array_equal(ours[key], theirs[key]), key
    assert 'is an official Caffe2 checkpoint (video model): converted on the fly' in \
        run_log(root / 'raw')
