"""Metrics over the readable videos only.

With ``RobustVideoDataset(test_mode=True, strict=False)`` a broken video's place
in the batch is taken by a readable one marked ``broken_video`` (a full batch
keeps distributed ranks in step). :class:`ReadableVideosOnly` makes a metric
drop the marked samples after the results of all ranks are gathered, report
how many videos it scored and how many were broken, and keep the broken ones
in ``broken_videos`` for :class:`BrokenVideoHook` to list.
:class:`ReadableAccMetric` is MMAction2's accuracy with it.
"""
from mmaction.evaluation import AccMetric
from mmaction.registry import METRICS

__all__ = ['ReadableVideosOnly', 'ReadableAccMetric', 'COUNT_KEYS', 'counts_unprefixed']

# Reported without the metric's prefix: they describe the data, not the score.
COUNT_KEYS = ('num_videos', 'num_broken')
# Set by RobustVideoDataset(strict=False) on a sample standing in for a broken video.
MARK = 'broken_video'


def counts_unprefixed(metrics, prefix, keys=COUNT_KEYS):
    """``metrics`` with ``prefix/key`` renamed to ``key`` for each of ``keys`` (in place)."""
    if prefix:
        for key in keys:
            metrics[key] = metrics.pop(f'{prefix}/{key}')
    return metrics


class ReadableVideosOnly:
    """Mixin for an mmengine ``BaseMetric`` whose ``process`` appends one result per sample.

    Put it first in the bases: ``class M(ReadableVideosOnly, SomeMetric)``. Adds
    ``num_videos`` (videos scored) and ``num_broken`` (videos left out) to the
    metrics.

    Attributes:
        broken_videos (list[dict]): ``filename``, ``label`` and ``reason`` of
            the videos left out by the last evaluation (main process only).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.broken_videos = []

    def process(self, data_batch, data_samples):
        first = len(self.results)
        super().process(data_batch, data_samples)
        results = self.results[first:]
        if len(results) != len(data_samples):
            raise RuntimeError(f'{type(self).__name__} expects one result per sample from '
                               f'process(), got {len(results)} for {len(data_samples)}')
        for result, sample in zip(results, data_samples):
            result[MARK] = sample.get(MARK)

    def compute_metrics(self, results):
        self.broken_videos = [r[MARK] for r in results if r[MARK] is not None]
        readable = [{key: value for key, value in r.items() if key != MARK}
                    for r in results if r[MARK] is None]
        if not readable:
            raise RuntimeError(f'all {len(results)} evaluated videos are broken, e.g. '
                               f'{self.broken_videos[0]["filename"]}')
        metrics = super().compute_metrics(readable)
        metrics.update(num_videos=len(readable), num_broken=len(self.broken_videos))
        return metrics

    def evaluate(self, size):
        return counts_unprefixed(super().evaluate(size), self.prefix)


@METRICS.register_module()
class ReadableAccMetric(ReadableVideosOnly, AccMetric):
    """:class:`mmaction.evaluation.AccMetric` over the readable videos only.

    Takes the arguments of :class:`AccMetric`; see :class:`ReadableVideosOnly`.
    """
