"""A hook that times a test run from inside the runner, for ``bench_inference.py``.

The benchmark adds it to the configs it runs (``custom_imports`` of this module and a
``custom_hooks`` entry), so nlnet's ``tools/test.py`` and MMAction2's run the same
timer. It writes one JSON file at the end of the test loop:

- ``loop_s``: from ``before_test_epoch`` to ``after_test_epoch`` (every video read,
  preprocessed, run through the model and scored, and the metrics computed);
- ``iter_s``: each video's step, from the end of the previous step (or the loop's
  start) to the end of this one, so the steps add up to the loop; ``iter_cpu_s``: the
  CPU time of this process (all its threads, not the dataloader workers) in each step,
  which other processes on a shared machine change much less than the wall time;
- ``data_wait_s``: the part of each step spent waiting for the dataloader;
- ``preprocess_s``, ``backbone_s``, ``head_s``: summed forward time of the model's
  ``data_preprocessor``, ``backbone`` and ``cls_head`` (forward hooks, the device
  synchronised at each end), ``non_local_s`` that of the backbone's non-local blocks
  (modules named ``non_local_block``, nlnet's and MMAction2's; part of ``backbone_s``);
  ``backbone_calls`` lists the batch of every backbone call;
- ``peak_mb`` and ``memory_method``: :class:`_measure.PeakMemory` over the loop.
"""
import json
import time

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from _measure import PeakMemory, sync


@HOOKS.register_module()
class InferenceTimingHook(Hook):
    """Times the test loop of a runner and writes the figures to ``out_file`` (JSON)."""

    priority = 'VERY_LOW'

    def __init__(self, out_file):
        self.out_file = out_file

    def before_test(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self.device = next(model.parameters()).device
        self.record = dict(iter_s=[], iter_cpu_s=[], data_wait_s=[], preprocess_s=0.0,
                           backbone_s=0.0, non_local_s=0.0, head_s=0.0, backbone_calls=[])
        for name, key in (('data_preprocessor', 'preprocess_s'), ('backbone', 'backbone_s'),
                          ('cls_head', 'head_s')):
            self._time_forward(getattr(model, name), name, key)
        for name, module in model.backbone.named_modules():
            if name.endswith('non_local_block'):
                self._time_forward(module, name, 'non_local_s')

    def _time_forward(self, module, name, key):

        def start(module, args):
            sync(self.device)
            module._bench_start = time.perf_counter()
            if name == 'backbone':
                self.record['backbone_calls'].append(int(args[0].shape[0]))

        def stop(module, args, output):
            sync(self.device)
            self.record[key] += time.perf_counter() - module._bench_start

        module.register_forward_pre_hook(start)
        module.register_forward_hook(stop)

    def before_test_epoch(self, runner):
        self.memory = PeakMemory(self.device, 'resident').__enter__()
        self.start = self.last = time.perf_counter()
        self.last_cpu = time.process_time()

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self.record['data_wait_s'].append(time.perf_counter() - self.last)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        sync(self.device)
        now, cpu = time.perf_counter(), time.process_time()
        self.record['iter_s'].append(now - self.last)
        self.record['iter_cpu_s'].append(cpu - self.last_cpu)
        self.last, self.last_cpu = now, cpu

    def after_test_epoch(self, runner, metrics=None):
        self.record['loop_s'] = time.perf_counter() - self.start
        self.memory.__exit__(None, None, None)
        self.record.update(peak_mb=self.memory.peak / 2**20, memory_method=self.memory.method,
                           threads=torch.get_num_threads(), device=str(self.device))
        with open(self.out_file, 'w') as handle:
            json.dump(self.record, handle)
