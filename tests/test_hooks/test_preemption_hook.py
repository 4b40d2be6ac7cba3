"""PreemptionHook on a real Runner: the dataloader workers it shields from the preemption
signals do not outlive the run (ignoring SIGTERM, they would hang the process's exit)."""
import os

from helpers.tiny_runner import tiny_runner

import nlnet.openmmlab  # noqa: F401  (registers PreemptionHook)


def children():
    pids = set()
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/children') as handle:
                pids.update(int(pid) for pid in handle.read().split())
        except FileNotFoundError:  # a thread that ended since the listing
            pass
    return pids


def test_a_finished_run_ends_its_shielded_persistent_workers(tmp_path):
    before = children()
    runner = tiny_runner(tmp_path, training=True, num_workers=2,
                         custom_hooks=[dict(type='PreemptionHook')])
    seen = {}
    original = runner.train_loop.run_iter

    def run_iter(idx, data_batch):
        seen.setdefault('workers', children() - before)
        original(idx, data_batch)

    runner.train_loop.run_iter = run_iter
    runner.train()
    assert len(seen['workers']) == 2
    assert not seen['workers'] & children()
