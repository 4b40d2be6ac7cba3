"""RobustVideoDataset on generated demo videos with a truncated and a missing file."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from helpers.video_tools import make_video_data, run_log
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseModel
from mmengine.runner import Runner

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import DATASETS
from nlnet.datasets import BrokenVideoError
from nlnet.hooks import BrokenVideoHook

DEFAULT_SCOPE = 'mmaction'
NUM_TRAIN, NUM_VAL = 3, 2
PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=1, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('filename', ))
]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp('demo'), NUM_TRAIN, NUM_VAL)


def build(data, split, **kwargs):
    return DATASETS.build(dict(
        type='RobustVideoDataset', ann_file=getattr(data, f'broken_{split}_ann'),
        data_prefix=dict(video=data.videos(split)), pipeline=PIPELINE, **kwargs))


def index_of(dataset, filename):
    return next(i for i in range(len(dataset)) if dataset.get_data_info(i)['filename'] == filename)


def test_testing_raises_on_a_broken_video_naming_it(data):
    dataset = build(data, 'val', test_mode=True)
    assert len(dataset) == NUM_VAL + 2
    assert dataset[0]['inputs'].shape == (1, 3, 4, 32, 32)
    with pytest.raises(BrokenVideoError, match=f'cannot read video {data.corrupt_val}: '):
        dataset[index_of(dataset, data.corrupt_val)]
    with pytest.raises(BrokenVideoError,
                       match=f'cannot read video {data.missing_val}: file not found'):
        dataset[index_of(dataset, data.missing_val)]


def test_skip_broken_leaves_broken_videos_out_and_records_them(data):
    dataset = build(data, 'val', test_mode=True, skip_broken=True)
    assert len(dataset) == NUM_VAL
    assert all(osp.basename(dataset[i]['data_samples'].filename).startswith('val_')
               for i in range(len(dataset)))
    skipped = {item['filename']: item for item in dataset.skipped}
    assert set(skipped) == {data.corrupt_val, data.missing_val}
    assert skipped[data.missing_val]['reason'] == 'file not found'
    assert skipped[data.missing_val]['label'] == 1
    assert skipped[data.corrupt_val]['reason'].startswith('RuntimeError')


def test_training_replaces_a_broken_video_by_another_sample(data):
    dataset = build(data, 'train')
    np.random.seed(0)
    for broken in (data.corrupt_train, data.missing_train):
        index = index_of(dataset, broken)
        assert dataset.prepare_data(index) is None
        replacement = dataset[index]['data_samples'].filename
        assert replacement not in (data.corrupt_train, data.missing_train)
        assert osp.isfile(replacement)


class _Constant(BaseModel):
    """The smallest model a Runner accepts; the test drives only the hook."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.weight.sum())


def test_training_log_names_each_broken_video_and_its_reason(data, tmp_path):
    """The warning a user reads in the training log, from the dataset's record through
    BrokenVideoHook, without a training run."""
    dataset = build(data, 'train')
    batch = pseudo_collate([dataset[index_of(dataset, path)]
                            for path in (data.corrupt_train, data.missing_train)])
    runner = Runner(model=_Constant(), work_dir=str(tmp_path), experiment_name=tmp_path.name,
                    custom_hooks=[dict(type='BrokenVideoHook')])
    hook = next(hook for hook in runner.hooks if isinstance(hook, BrokenVideoHook))
    hook.before_train_epoch(runner)
    hook.after_train_iter(runner, 0, data_batch=batch)
    log = run_log(tmp_path)
    # decord's reason for a video cut in half: "RuntimeError: Error reading ... bytes".
    assert re.search(rf'broken video {re.escape(data.corrupt_train)} \(RuntimeError: \S', log), log
    assert f'broken video {data.missing_train} (file not found)' in log, log


def test_skip_broken_is_only_for_testing(data):
    with pytest.raises(ValueError, match='skip_broken=True needs test_mode=True'):
        build(data, 'train', skip_broken=True)
