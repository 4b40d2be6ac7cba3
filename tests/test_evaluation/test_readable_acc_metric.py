"""ReadableAccMetric and its ReadableVideosOnly mixin: only readable videos are scored, the
counts are reported unprefixed and the broken videos kept for BrokenVideoHook."""
import pytest
import torch
from mmaction.registry import METRICS
from mmaction.structures import ActionDataSample
from mmengine.evaluator import BaseMetric

import nlnet.openmmlab  # noqa: F401
from nlnet.evaluation.readable_acc_metric import ReadableVideosOnly

BROKEN = dict(filename='a/broken.mp4', label=1, reason='file not found')


def scored(label, predicted, broken=None):
    sample = ActionDataSample().set_gt_label(label)
    sample.set_pred_score(torch.nn.functional.one_hot(torch.tensor(predicted), 4).float())
    if broken is not None:
        sample.set_metainfo(dict(broken_video=broken))
    return sample.to_dict()


def test_readable_acc_metric_scores_readable_videos_only():
    metric = METRICS.build(dict(type='ReadableAccMetric'))
    # The stand-in for the broken video is predicted wrong: it must not count.
    metric.process(None, [scored(0, 0), scored(1, 1), scored(2, 3), scored(1, 2, BROKEN)])
    metrics = metric.evaluate(4)
    assert metrics['acc/top1'] == pytest.approx(2 / 3)
    assert metrics['num_videos'] == 3 and metrics['num_broken'] == 1
    assert metric.broken_videos == [BROKEN]


def test_counts_keep_their_names_under_another_prefix():
    metric = METRICS.build(dict(type='ReadableAccMetric', prefix='val'))
    metric.process(None, [scored(0, 0), scored(1, 2, BROKEN)])
    metrics = metric.evaluate(2)
    assert metrics['val/top1'] == 1.0
    assert (metrics['num_videos'], metrics['num_broken']) == (1, 1)
    assert 'val/num_videos' not in metrics


def test_all_broken_is_an_error_naming_a_video():
    metric = METRICS.build(dict(type='ReadableAccMetric'))
    metric.process(None, [scored(1, 2, BROKEN)])
    with pytest.raises(RuntimeError, match='all 1 evaluated videos are broken, e.g. a/broken.mp4'):
        metric.evaluate(1)


class OneResultPerBatch(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(dict(batch_size=len(data_samples)))

    def compute_metrics(self, results):
        return {}


class ReadablePerBatch(ReadableVideosOnly, OneResultPerBatch):
    pass


def test_a_metric_without_one_result_per_sample_is_refused():
    with pytest.raises(RuntimeError, match='ReadablePerBatch expects one result per sample from '
                                           r'process\(\), got 1 for 2'):
        ReadablePerBatch().process(None, [scored(0, 0), scored(1, 1)])
