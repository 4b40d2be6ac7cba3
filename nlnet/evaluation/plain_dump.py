"""Per-sample test results as plain Python and numpy objects, and the ``--dump`` file.

The dump is loadable without nlnet, torch or OpenMMLab installed::

    {'format': 'nlnet-dump/1',                  # DUMP_FORMAT; changes with the layout
     'config': str, 'checkpoint': str,
     'metrics': {name: float},                  # as logged
     'samples': [ {...}, ... ],                 # one dict per scored sample, dataset order
     'broken': [ {'filename', 'label', 'reason'}, ... ],   # left out while testing
     'skipped': [ {'filename', 'label', 'reason'}, ... ],  # left out before (skip_broken)
     'num_videos': int, 'num_broken': int}      # only when the metrics report them

Each sample dict holds the model's data sample with tensors as numpy arrays,
e.g. for video recognition ``index``, ``filename``, ``gt_label`` (int),
``pred_label`` (int), ``pred_score`` (float32 array over classes, the mean
over the views) and ``num_views`` (clips x crops the score averages).
Samples that stood in for broken videos (``RobustVideoDataset(strict=False)``)
are not in ``samples``; the videos they replaced are in ``broken``.
"""
import os
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS
from mmengine.structures import BaseDataElement

from .readable_acc_metric import COUNT_KEYS
from .readable_acc_metric import MARK as BROKEN_MARK

__all__ = ['DUMP_FORMAT', 'to_plain', 'PlainDumpResults', 'write_dump']

DUMP_FORMAT = 'nlnet-dump/1'


def to_plain(value):
    """``value`` with tensors as numpy arrays and data elements as dicts, recursively."""
    if isinstance(value, BaseDataElement):
        value = value.to_dict()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_plain(item) for item in value)
    if value is None or isinstance(value, (bool, int, float, str, bytes, np.ndarray)):
        return value
    return repr(value)


@METRICS.register_module()
class PlainDumpResults(BaseMetric):
    """Collects every test sample exactly once (across processes) as plain objects.

    The gathered samples are kept in :attr:`samples` on the main process, the
    videos that marked samples stood in for in :attr:`broken`;
    :func:`write_dump` writes them with the other metrics after the test loop.
    """

    default_prefix = 'dump'

    def __init__(self, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.samples = []
        self.broken = []

    def process(self, data_batch, data_samples):
        inputs = (data_batch or {}).get('inputs') if isinstance(data_batch, dict) else None
        for position, sample in enumerate(data_samples):
            plain = to_plain(sample)
            views = _num_views(inputs, position)
            if views is not None:
                plain['num_views'] = views
            for key in ('gt_label', 'pred_label'):
                label = plain.get(key)
                if isinstance(label, np.ndarray) and label.size == 1:
                    plain[key] = int(label.reshape(-1)[0])
            score = plain.get('pred_score')
            if 'pred_label' not in plain and isinstance(score, np.ndarray) and score.ndim == 1:
                plain['pred_label'] = int(score.argmax())
            self.results.append(plain)

    def compute_metrics(self, results):
        self.broken = [r[BROKEN_MARK] for r in results if r.get(BROKEN_MARK) is not None]
        readable = [{key: value for key, value in r.items() if key != BROKEN_MARK}
                    for r in results if r.get(BROKEN_MARK) is None]
        self.samples = [dict(index=index, **sample) for index, sample in enumerate(readable)]
        return {}


def _num_views(inputs, position):
    """Views (clips x crops) stacked in a 3D recognizer's (views, C, T, H, W) input, else None."""
    if not isinstance(inputs, (list, tuple)) or position >= len(inputs):
        return None
    item = inputs[position]
    return int(item.shape[0]) if isinstance(item, torch.Tensor) and item.ndim == 5 else None


def write_dump(path, runner, config, checkpoint, metrics):
    """Write the dump of a finished ``runner.test()`` (its evaluator has a PlainDumpResults).

    Args:
        path (str): the ``.pkl`` file to write.
        runner (Runner): the runner after testing.
        config (str): the config file, recorded in the dump.
        checkpoint (str): the tested checkpoint, recorded in the dump.
        metrics (dict): what ``runner.test()`` returned.
    """
    dump_metric = next(m for m in runner.test_loop.evaluator.metrics
                       if isinstance(m, PlainDumpResults))
    dataset = runner.test_loop.dataloader.dataset
    skipped = [to_plain(item) for item in getattr(dataset, 'skipped', [])]
    payload = dict(
        format=DUMP_FORMAT,
        config=config,
        checkpoint=checkpoint,
        metrics={key: to_plain(value) for key, value in metrics.items()},
        samples=dump_metric.samples,
        broken=dump_metric.broken,
        skipped=skipped)
    payload.update({key: int(metrics[key]) for key in COUNT_KEYS if key in metrics})
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as handle:
        pickle.dump(payload, handle)
    left_out = ', '.join(f'{len(payload[key])} {key}' for key in ('broken', 'skipped')
                         if payload[key])
    runner.logger.info(f'dumped {len(payload["samples"])} samples'
                       f'{f" ({left_out})" if left_out else ""} to {path}')
