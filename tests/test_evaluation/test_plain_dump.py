"""PlainDumpResults: every test sample once, as plain Python and numpy objects."""
import pickle

import numpy as np
import torch
from mmengine.evaluator import Evaluator

import nlnet.openmmlab  # noqa: F401  (registers PlainDumpResults)
from mmaction.structures import ActionDataSample
from nlnet.evaluation import PlainDumpResults


def sample(label, scores, filename):
    data_sample = ActionDataSample().set_gt_label(label).set_pred_score(torch.tensor(scores))
    data_sample.set_metainfo(dict(filename=filename))
    return data_sample


def test_samples_are_plain_in_dataset_order_with_int_labels():
    evaluator = Evaluator([dict(type='PlainDumpResults')])
    evaluator.process([sample(1, [0.2, 0.7, 0.1], 'a.mp4'), sample(0, [0.5, 0.2, 0.3], 'b.mp4')])
    evaluator.process([sample(2, [0.1, 0.1, 0.8], 'c.mp4')])
    assert evaluator.evaluate(3) == {}

    dump = evaluator.metrics[0]
    assert isinstance(dump, PlainDumpResults)
    assert [s['index'] for s in dump.samples] == [0, 1, 2]
    assert [s['filename'] for s in dump.samples] == ['a.mp4', 'b.mp4', 'c.mp4']
    assert [s['gt_label'] for s in dump.samples] == [1, 0, 2]
    assert [s['pred_label'] for s in dump.samples] == [1, 0, 2]
    assert all(type(s['gt_label']) is int for s in dump.samples)
    np.testing.assert_array_equal(dump.samples[2]['pred_score'],
                                  np.array([0.1, 0.1, 0.8], dtype=np.float32))
    # Loadable without torch or OpenMMLab: nothing but builtins and numpy inside.
    assert b'torch' not in pickle.dumps(dump.samples)
    assert b'mmengine' not in pickle.dumps(dump.samples)


def test_stand_ins_for_broken_videos_are_listed_not_scored_and_views_are_counted():
    evaluator = Evaluator([dict(type='PlainDumpResults')])
    stand_in = sample(0, [0.9, 0.1], 'a.mp4')
    broken = dict(filename='broken.mp4', label=1, reason='file not found')
    stand_in.set_metainfo(dict(broken_video=broken))
    views = [torch.zeros(30, 3, 8, 4, 4, dtype=torch.uint8)] * 2
    evaluator.process([sample(0, [0.9, 0.1], 'a.mp4'), stand_in], dict(inputs=views))
    evaluator.evaluate(2)

    dump = evaluator.metrics[0]
    assert [(s['index'], s['filename'], s['num_views']) for s in dump.samples] == [
        (0, 'a.mp4', 30)]
    assert 'broken_video' not in dump.samples[0]
    assert dump.broken == [broken]
