"""Mean average precision over classes, as Charades and PySlowFast evaluate multi-label video.

The AP of a class ranks the videos by their score for it and averages the
precision at each positive video's rank. Videos with equal scores share one
threshold (precision is counted over all of them), so the figure does not
depend on the order of ties; this is scikit-learn's ``average_precision_score``,
which PySlowFast's Charades evaluation calls, and Charades' own
``Charades_v1_classify.m`` on sets without ties. Classes without a positive
video in the evaluated set have no AP: they are left out of the mean and named
in the log. Non-finite scores are refused: scikit-learn refuses NaN, and
infinite scores of one class do not form one run of ties.

Videos without a prediction (broken, with a lenient dataset) are left out and
counted in ``num_broken``; Charades' own evaluation scores a missing video
``-inf`` in every class instead, so its figure can differ (README, Charades).
"""
import logging

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.registry import METRICS

from .readable_acc_metric import COUNT_KEYS, MARK, counts_unprefixed

__all__ = ['average_precision', 'mean_average_precision', 'check_finite', 'CharadesMAP']

# Reported without the metric's prefix, as ReadableAccMetric's: they describe the data.
CHARADES_COUNT_KEYS = COUNT_KEYS + ('num_classes_scored', )
# Classes named in full in an error; the rest are counted.
_NAMED_CLASSES = 10


def average_precision(scores, positives):
    """AP of one class with tied scores sharing a threshold.

    Args:
        scores (ndarray): (N,) scores of the N videos.
        positives (ndarray): (N,) bool, True for the videos of the class; at least one.

    Returns:
        float: sum over distinct thresholds t (descending) of
        (recall(t) - recall(previous t)) x precision(t).
    """
    order = np.argsort(-scores, kind='stable')
    scores, positives = scores[order], positives[order]
    # The last index of each run of equal scores: a threshold admits the whole run.
    last_of_run = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(positives)[last_of_run]
    precision = true_positives / (last_of_run + 1)
    recall_gain = np.diff(np.r_[0, true_positives]) / true_positives[-1]
    return float(np.sum(recall_gain * precision))


def check_finite(scores, class_names=None):
    """Raise ValueError naming how many scores are NaN / +inf / -inf and in which classes.

    Args:
        scores (ndarray): (N, C) scores.
        class_names (sequence[str] | None): C names; labels where None.
    """
    bad = ~np.isfinite(scores)
    if not bad.any():
        return
    counts = ', '.join(f'{int(count)} {kind}' for kind, count in (
        ('NaN', np.isnan(scores).sum()), ('+inf', np.isposinf(scores).sum()),
        ('-inf', np.isneginf(scores).sum())) if count)
    classes = np.flatnonzero(bad.any(axis=0))
    names = [class_names[i] if class_names is not None else int(i)
             for i in classes[:_NAMED_CLASSES]]
    more = f' and {classes.size - _NAMED_CLASSES} more' if classes.size > _NAMED_CLASSES else ''
    raise ValueError(f'{int(bad.sum())} non-finite score(s) ({counts}) in {classes.size} '
                     f'class(es) {names}{more}, among {scores.shape[0]} videos: the mAP is not '
                     'defined (a diverged model?)')


def mean_average_precision(scores, labels, class_names=None):
    """``(mAP, per-class AP with NaN for classes without positives)``.

    Args:
        scores (ndarray): (N, C) scores, all finite.
        labels (ndarray): (N, C) multi-hot labels (non-zero = positive).
        class_names (sequence[str] | None): C names for errors; labels where None.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels) != 0
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f'scores {scores.shape} and labels {labels.shape} must both be '
                         '(videos, classes)')
    check_finite(scores, class_names)
    per_class = np.full(scores.shape[1], np.nan)
    for label in np.flatnonzero(labels.any(axis=0)):
        per_class[label] = average_precision(scores[:, label], labels[:, label])
    if np.isnan(per_class).all():
        raise ValueError(f'no class has a positive among the {len(scores)} videos')
    return float(np.nanmean(per_class)), per_class


@METRICS.register_module()
class CharadesMAP(BaseMetric):
    """mAP over the classes that have a positive video, from per-video scores and label sets.

    Expects each data sample's ``pred_score`` (C,) and multi-hot ``gt_label`` (C,).
    Samples marked ``broken_video`` (stand-ins of a lenient
    :class:`~nlnet.datasets.RobustVideoDataset`) are left out and kept in
    :attr:`broken_videos`. Classes left out are logged by their names where the
    dataset's metainfo has ``classes`` (CharadesDataset: ``c000`` ...), else by
    label. Metrics: ``<prefix>/mAP`` (a fraction, as
    PySlowFast's), ``num_videos`` (scored), ``num_broken`` (left out: the
    marked samples and the videos the dataset skipped when built, its
    metainfo's ``num_skipped``) and ``num_classes_scored``.

    Args:
        collect_device (str): as :class:`mmengine.evaluator.BaseMetric`.
        prefix (str | None): metric prefix; default ``'charades'``.
    """

    default_prefix = 'charades'

    def __init__(self, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.broken_videos = []

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append({
                'score': sample['pred_score'].detach().cpu().numpy().astype(np.float64),
                'label': np.asarray(sample['gt_label'].detach().cpu().numpy() != 0),
                MARK: sample.get(MARK)})

    def compute_metrics(self, results):
        readable = [r for r in results if r[MARK] is None]
        self.broken_videos = [r[MARK] for r in results if r[MARK] is not None]
        if not readable:
            raise RuntimeError(f'all {len(results)} evaluated videos are broken')
        labels = np.stack([r['label'] for r in readable])
        if labels.ndim != 2 or labels.shape[1] < 2:
            raise ValueError(f'CharadesMAP needs multi-hot gt_label vectors, got shape '
                             f'{labels.shape[1:]} per video')
        names = (self.dataset_meta or {}).get('classes')
        if names is not None and len(names) != labels.shape[1]:
            names = None
        mean_ap, per_class = mean_average_precision(np.stack([r['score'] for r in readable]),
                                                    labels, names)
        left_out = np.flatnonzero(np.isnan(per_class))
        if left_out.size:
            named = (f'classes {[names[i] for i in left_out]}' if names is not None
                     else f'labels {left_out.tolist()}')
            print_log(f'mAP over {per_class.size - left_out.size} of {per_class.size} classes: '
                      f'{left_out.size} have no positive among the {len(readable)} videos and '
                      f'are left out ({named})', logger='current', level=logging.INFO)
        # Videos skipped when the dataset was built never reach process().
        num_broken = len(self.broken_videos) + (self.dataset_meta or {}).get('num_skipped', 0)
        if num_broken:
            print_log(f'mAP over {len(readable)} of {len(readable) + num_broken} videos: '
                      f'{num_broken} broken video(s) have no prediction and are left out '
                      "(Charades' official evaluation would score them -inf in every class)",
                      logger='current', level=logging.WARNING)
        return dict(mAP=mean_ap, num_videos=len(readable), num_broken=num_broken,
                    num_classes_scored=int(per_class.size - left_out.size))

    def evaluate(self, size):
        return counts_unprefixed(super().evaluate(size), self.prefix, CHARADES_COUNT_KEYS)
