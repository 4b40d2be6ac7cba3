"""Top-k / mean-class accuracy over the readable videos only.

With ``RobustVideoDataset(test_mode=True, strict=False)`` a broken video's place
in the batch is taken by a readable one marked ``broken_video`` (a full batch
keeps distributed ranks in step). This metric drops the marked samples after
the results of all ranks are gathered, reports how many videos it scored and
how many were broken, and keeps the broken ones in :attr:`broken_videos` for
:class:`BrokenVideoHook` to list.
"""
from mmaction.evaluation import AccMetric
from mmaction.registry import METRICS

__all__ = ['ReadableAccMetric']

# Reported without the metric's prefix: they describe the data, not accuracy.
COUNT_KEYS = ('num_videos', 'num_broken')


@METRICS.register_module()
class ReadableAccMetric(AccMetric):
    """:class:`mmaction.evaluation.AccMetric` that leaves out broken videos.

    Adds ``num_videos`` (videos scored) and ``num_broken`` (videos left out) to
    the metrics. Takes the arguments of :class:`AccMetric`.

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
            raise RuntimeError(f'{type(self).__name__} expects one AccMetric result per sample, '
                               f'got {len(results)} for {len(data_samples)}')
        for result, sample in zip(results, data_samples):
            result['broken_video'] = sample.get('broken_video')

    def compute_metrics(self, results):
        readable = [r for r in results if r['broken_video'] is None]
        self.broken_videos = [r['broken_video'] for r in results if r['broken_video'] is not None]
        if not readable:
            raise RuntimeError(f'all {len(results)} evaluated videos are broken, e.g. '
                               f'{self.broken_videos[0]["filename"]}')
        metrics = super().compute_metrics(readable)
        metrics.update(num_videos=len(readable), num_broken=len(self.broken_videos))
        return metrics

    def evaluate(self, size):
        metrics = super().evaluate(size)
        if self.prefix:
            for key in COUNT_KEYS:
                metrics[key] = metrics.pop(f'{self.prefix}/{key}')
        return metrics
