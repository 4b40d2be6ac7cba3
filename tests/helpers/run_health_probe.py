"""Probes a training subprocess: batch sizes, open fds, dataloader workers' memory, worker warnings.

Imported by the training subprocess through the config's ``custom_imports``
(the tests put ``tests/helpers`` on its ``PYTHONPATH``).

* ``RunHealthProbeHook`` writes ``<work_dir>/health_rank<R>.json``: the size of
  every training batch, and after each epoch the open file descriptors of the
  process and of each of its child processes (the persistent dataloader
  workers) and the children's resident memory.
* ``WarnFromWorker`` is a pass-through transform that logs one warning per
  dataloader worker process, to show where worker warnings end up.
"""
import json
import logging
import os
import os.path as osp

from mmcv.transforms import BaseTransform
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS, TRANSFORMS
from torch.utils.data import get_worker_info


def open_fds(pid='self'):
    return len(os.listdir(f'/proc/{pid}/fd'))


def child_pids():
    pids = []
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/children') as handle:
                pids += [int(pid) for pid in handle.read().split()]
        except FileNotFoundError:  # a thread that ended since the listing
            pass
    return sorted(pids)


def resident_kib(pid):
    with open(f'/proc/{pid}/status') as handle:
        line = next(line for line in handle if line.startswith('VmRSS:'))
    return int(line.split()[1])


@HOOKS.register_module()
class RunHealthProbeHook(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.record = dict(batch_sizes=[], epochs=[])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.record['batch_sizes'].append(len(data_batch['data_samples']))

    def after_train_epoch(self, runner):
        workers = child_pids()
        self.record['epochs'].append(dict(
            fds=open_fds(), workers={pid: resident_kib(pid) for pid in workers},
            worker_fds={pid: open_fds(pid) for pid in workers}))
        with open(osp.join(runner.work_dir, f'health_rank{get_rank()}.json'), 'w') as handle:
            json.dump(self.record, handle)


@TRANSFORMS.register_module()
class WarnFromWorker(BaseTransform):
    warned = False

    def transform(self, results):
        if get_worker_info() is not None and not WarnFromWorker.warned:
            WarnFromWorker.warned = True
            print_log(f'probe warning from dataloader worker pid {os.getpid()}',
                      logger='current', level=logging.WARNING)
        return results
