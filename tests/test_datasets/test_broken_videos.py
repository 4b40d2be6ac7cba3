"""RobustVideoDataset and BrokenVideoHook's evaluator check on generated Kinetics-layout
videos with every kind of broken file mixed in (ReadableAccMetric's own tests are in
tests/test_evaluation/test_readable_acc_metric.py)."""
import gc
import os.path as osp
from types import SimpleNamespace

import decord
import pytest
from helpers.broken_videos import BROKEN_KINDS, add_broken_videos
from helpers.video_tools import make_video_data
from mmaction.evaluation import AccMetric
from mmaction.registry import DATASETS, METRICS
from mmengine.evaluator import Evaluator

import nlnet.openmmlab  # noqa: F401
from nlnet.datasets import BrokenVideoError
from nlnet.hooks.broken_video_hook import _check_evaluator

DEFAULT_SCOPE = 'mmaction'
NUM_TRAIN, NUM_VAL = 3, 4
PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=1, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('filename', ))
]


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    videos = make_video_data(tmp_path_factory.mktemp('demo'), NUM_TRAIN, NUM_VAL)
    lists = {split: add_broken_videos(videos.root, split, getattr(videos, f'{split}_ann'))
             for split in ('train', 'val')}
    return SimpleNamespace(videos=videos, lists=lists)


def build(data, split, **kwargs):
    ann_file, _ = data.lists[split]
    return DATASETS.build(dict(
        type='RobustVideoDataset', ann_file=ann_file,
        data_prefix=dict(video=data.videos.videos(split)), pipeline=PIPELINE, **kwargs))


def index_of(dataset, filename):
    return next(i for i in range(len(dataset)) if dataset.get_data_info(i)['filename'] == filename)


def test_lenient_testing_stands_a_readable_video_in_for_each_broken_one(data):
    dataset = build(data, 'val', test_mode=True, strict=False)
    _, broken = data.lists['val']
    assert len(dataset) == NUM_VAL + len(BROKEN_KINDS)
    marked = {}
    for index in range(len(dataset)):
        sample = dataset[index]['data_samples']
        assert osp.basename(sample.filename).startswith('val_'), 'a broken video was decoded'
        listed = dataset.get_data_info(index)
        if 'broken_video' in sample:
            marked[sample.broken_video['filename']] = sample.broken_video
            assert sample.broken_video['label'] == listed['label']
        else:
            assert sample.filename == listed['filename']
    assert set(marked) == set(broken.values())
    assert marked[broken['missing']]['reason'] == 'file not found'
    assert marked[broken['empty']]['reason'] == 'empty file (0 bytes)'
    assert all(entry['reason'] for entry in marked.values())


def test_strict_testing_stops_naming_the_file(data):
    dataset = build(data, 'val', test_mode=True)
    for path in data.lists['val'][1].values():
        with pytest.raises(BrokenVideoError, match=f'cannot read video {path}: '):
            dataset[index_of(dataset, path)]


def test_training_sample_records_the_broken_videos_it_replaces(data):
    dataset = build(data, 'train')
    for kind, path in data.lists['train'][1].items():
        sample = dataset[index_of(dataset, path)]['data_samples']
        assert osp.basename(sample.filename).startswith('train_'), kind
        assert sample.replaced_videos[0]['filename'] == path
        assert sample.replaced_videos[0]['reason']
        assert all(entry['filename'] in data.lists['train'][1].values()
                   for entry in sample.replaced_videos)


def test_lenient_mode_is_only_for_testing_and_strict_is_a_bool(data):
    with pytest.raises(ValueError, match='strict=False needs test_mode=True'):
        build(data, 'train', strict=False)
    with pytest.raises(TypeError, match="strict must be True or False, got 'no'"):
        build(data, 'val', test_mode=True, strict='no')


def test_build_time_check_leaves_no_reader_to_inherit(data):
    dataset = build(data, 'val', test_mode=True, skip_broken=True)
    assert len(dataset) == NUM_VAL
    gc.collect()
    readers = [obj for obj in gc.get_objects() if isinstance(obj, decord.VideoReader)]
    assert readers == [], 'a decord reader outlived the check and would be forked into workers'


def test_lenient_dataset_with_a_plain_accuracy_metric_is_refused(data):
    dataset = build(data, 'val', test_mode=True, strict=False)
    plain = SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset),
                            evaluator=Evaluator([AccMetric()]))
    with pytest.raises(ValueError, match="use dict\\(type='ReadableAccMetric'\\)"):
        _check_evaluator(plain)
    readable = SimpleNamespace(dataloader=SimpleNamespace(dataset=dataset),
                               evaluator=Evaluator([METRICS.build(dict(type='ReadableAccMetric'))]))
    _check_evaluator(readable)
