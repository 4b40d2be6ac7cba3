"""Per-sample test results as plain Python and numpy objects, and the ``--dump`` file.

The dump is loadable without nlnet, torch or OpenMMLab installed::

    {'config': str, 'checkpoint': str,
     'metrics': {name: float},                  # as logged
     'samples': [ {...}, ... ],                 # one dict per test sample, dataset order
     'skipped': [ {'filename', 'label', 'reason'}, ... ]}   # videos left out

Each sample dict holds the model's data sample with tensors as numpy arrays,
e.g. for video recognition ``index``, ``filename``, ``gt_label`` (int),
``pred_label`` (int) and ``pred_score`` (float32 array over classes).
"""
import os
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS
from mmengine.structures import BaseDataElement


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

    The gathered samples are kept in :attr:`samples` on the main process;
    :func:`write_dump` writes them with the other metrics after the test loop.
    """

    default_prefix = 'dump'

    def __init__(self, collect_device='cpu', prefix=None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.samples = []

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            plain = to_plain(sample)
            for key in ('gt_label', 'pred_label'):
                label = plain.get(key)
                if isinstance(label, np.ndarray) and label.size == 1:
                    plain[key] = int(label.reshape(-1)[0])
            score = plain.get('pred_score')
            if 'pred_label' not in plain and isinstance(score, np.ndarray) and score.ndim == 1:
                plain['pred_label'] = int(score.argmax())
            self.results.append(plain)

    def compute_metrics(self, results):
        self.samples = [dict(index=index, **sample) for index, sample in enumerate(results)]
        return {}


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
        config=config,
        checkpoint=checkpoint,
        metrics={key: to_plain(value) for key, value in metrics.items()},
        samples=dump_metric.samples,
        skipped=skipped)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as handle:
        pickle.dump(payload, handle)
    runner.logger.info(f'dumped {len(payload["samples"])} samples'
                       f'{f" ({len(skipped)} skipped)" if skipped else ""} to {path}')
