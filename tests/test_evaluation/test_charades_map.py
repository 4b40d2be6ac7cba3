"""CharadesMAP against a reference average precision written from its definition.

The reference is the mean, over a class's positive videos, of the precision at
that video's score taken as the threshold (every video scoring at least as high
counts, ties included): scikit-learn's ``average_precision_score`` (not installed
here), which PySlowFast's Charades evaluation calls.
"""
import logging
import re

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.logging import MMLogger

import nlnet.openmmlab  # noqa: F401
from mmengine.registry import METRICS
from nlnet.evaluation import mean_average_precision
from nlnet.evaluation.charades_map import average_precision


def reference_ap(scores, positives):
    positive_scores = scores[positives]
    return np.mean([positives[scores >= s].sum() / (scores >= s).sum() for s in positive_scores])


def reference_map(scores, labels):
    labels = labels.astype(bool)
    aps = [reference_ap(scores[:, c], labels[:, c]) for c in range(labels.shape[1])
           if labels[:, c].any()]
    return np.mean(aps)


def random_set(seed, videos=60, classes=12, decimals=None):
    rng = np.random.default_rng(seed)
    labels = rng.random((videos, classes)) < 0.2
    labels[:, [3, 7]] = False  # classes without positives
    scores = rng.random((videos, classes)) + 0.3 * labels
    if decimals is not None:  # coarse scores: many ties, some between a positive and a negative
        scores = np.round(scores, decimals)
    return scores, labels


@pytest.mark.parametrize('decimals', [None, 1], ids=['distinct', 'ties'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_map_equals_the_reference_on_random_sets(seed, decimals):
    scores, labels = random_set(seed, decimals=decimals)
    mean_ap, per_class = mean_average_precision(scores, labels)
    assert mean_ap == pytest.approx(reference_map(scores, labels), abs=1e-12)
    assert np.isnan(per_class[[3, 7]]).all() and not np.isnan(np.delete(per_class, [3, 7])).any()


def test_hand_made_ranking_with_ties():
    # Positives at 0.9 (precision 1/1) and at 0.8, tied with a negative (precision 2/3).
    scores = np.array([0.9, 0.8, 0.8, 0.1])
    positives = np.array([True, False, True, False])
    assert average_precision(scores, positives) == pytest.approx((1 + 2 / 3) / 2)
    # The order of tied videos does not matter.
    assert average_precision(scores[[0, 2, 1, 3]], positives[[0, 2, 1, 3]]) == \
        pytest.approx((1 + 2 / 3) / 2)
    # All videos tied: the precision of every positive is the class's share.
    assert average_precision(np.zeros(5), np.array([1, 0, 0, 1, 0], bool)) == pytest.approx(0.4)
    # A perfect ranking and the worst one.
    assert average_precision(np.array([3., 2., 1.]), np.array([1, 1, 0], bool)) == 1.0
    assert average_precision(np.array([3., 2., 1.]), np.array([0, 0, 1], bool)) == \
        pytest.approx(1 / 3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r'scores \(3, 2\) and labels \(3, 3\)'):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match='no class has a positive among the 3 videos'):
        mean_average_precision(np.zeros((3, 2)), np.zeros((3, 2)))


def data_samples(scores, labels, broken=()):
    samples = []
    for index, (score, label) in enumerate(zip(scores, labels)):
        sample = ActionDataSample().set_pred_score(torch.from_numpy(score).float())
        sample.set_gt_label(torch.from_numpy(label.astype(np.float32)))
        if index in broken:
            sample.set_metainfo(dict(broken_video=dict(filename=f'v{index}.mp4', reason='x')))
        samples.append(sample.to_dict())
    return samples


@pytest.fixture
def log_lines():
    logger = MMLogger.get_instance('test_charades_map')
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def test_metric_leaves_out_classes_without_positives_and_broken_videos_and_says_so(log_lines):
    scores, labels = random_set(3, decimals=1)
    metric = METRICS.build(dict(type='CharadesMAP'))
    # Three more videos were skipped when the dataset was built (skip_broken=True).
    metric.dataset_meta = dict(num_skipped=3)
    broken = {0, 5}
    # Two batches, as the test loop feeds them; float32 scores as the head returns them.
    samples = data_samples(scores, labels, broken)
    metric.process({}, samples[:30])
    metric.process({}, samples[30:])
    metrics = metric.evaluate(len(samples))

    kept = [i for i in range(len(scores)) if i not in broken]
    expected = reference_map(scores.astype(np.float32)[kept].astype(np.float64), labels[kept])
    assert metrics['charades/mAP'] == pytest.approx(expected, abs=1e-12)
    scored = int(labels[kept].any(axis=0).sum())
    assert metrics['num_classes_scored'] == scored
    assert (metrics['num_videos'], metrics['num_broken']) == (len(kept), 2 + 3)
    assert [entry['filename'] for entry in metric.broken_videos] == ['v0.mp4', 'v5.mp4']
    classes_left_out = [line for line in log_lines if 'classes' in line and 'left out' in line]
    assert len(classes_left_out) == 1
    missing = np.flatnonzero(~labels[kept].any(axis=0)).tolist()
    assert f'mAP over {scored} of 12 classes' in classes_left_out[0]
    assert str(missing) in classes_left_out[0]
    videos_left_out = [line for line in log_lines if 'videos:' in line]
    assert videos_left_out == [
        f'mAP over {len(kept)} of {len(kept) + 5} videos: 5 broken video(s) have no prediction '
        "and are left out (Charades' official evaluation would score them -inf in every class)"]


def test_non_finite_scores_are_refused_naming_how_many_and_where():
    scores, labels = random_set(4)
    scores[[0, 5], 2] = np.nan
    scores[3, 4], scores[1, 9] = np.inf, -np.inf
    expected = (r'4 non-finite score\(s\) \(2 NaN, 1 \+inf, 1 -inf\) in 3 class\(es\) '
                r'{}, among 60 videos: the mAP is not defined')
    with pytest.raises(ValueError, match=expected.format(re.escape('[2, 4, 9]'))):
        mean_average_precision(scores, labels)
    metric = METRICS.build(dict(type='CharadesMAP'))
    metric.dataset_meta = dict(classes=tuple(f'c{i:03d}' for i in range(12)))
    metric.process({}, data_samples(scores, labels))
    with pytest.raises(ValueError,
                       match=expected.format(re.escape("['c002', 'c004', 'c009']"))):
        metric.evaluate(len(scores))
    # Every class named up to ten, the rest counted.
    with pytest.raises(ValueError, match=re.escape('in 12 class(es) [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] '
                                                   'and 2 more')):
        mean_average_precision(np.full_like(scores, np.nan), labels)


def test_metric_refuses_single_labels():
    metric = METRICS.build(dict(type='CharadesMAP'))
    sample = ActionDataSample().set_pred_score(torch.rand(5)).set_gt_label(3)
    metric.process({}, [sample.to_dict()])
    with pytest.raises(ValueError, match='multi-hot gt_label'):
        metric.evaluate(1)
