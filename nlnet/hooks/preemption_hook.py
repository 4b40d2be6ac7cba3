"""Stops training on SIGTERM / SIGUSR1 after the current iteration, with a checkpoint.

The behaviour, the exit status and Slurm's requeue are described in
:mod:`nlnet.utils.preemption`.
"""
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.preemption import (PreemptionSignals, TrainingPreempted, end_dataloader_workers,
                                ranks_agree_to_stop, requeue_slurm_job,
                                shield_dataloader_workers)
from .atomic_checkpoint_hook import AtomicCheckpointHook

__all__ = ['PreemptionHook']


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Saves ``iter_N.pth`` and raises :class:`~nlnet.utils.preemption.TrainingPreempted`
    after the first iteration that ends with a preemption signal on any rank.

    The checkpoint goes where the run's
    :class:`~nlnet.hooks.atomic_checkpoint_hook.AtomicCheckpointHook` saves
    (the work dir if it has none). Runs last after every iteration, when the
    other hooks (scheduler steps, logging, periodic checkpoints) are done.
    """

    priority = 'LOWEST'

    def __init__(self):
        self.signals = PreemptionSignals()

    def before_train(self, runner):
        self.signals.install()
        shield_dataloader_workers(runner.train_loop.dataloader)
        if runner.val_loop is not None:
            shield_dataloader_workers(runner.val_loop.dataloader)

    def after_train(self, runner):
        self.signals.restore()

    def after_run(self, runner):
        # Now rather than when the iterators are collected, where torch first waits for
        # each worker's queue to time out.
        for loop in (runner._train_loop, runner._val_loop):
            end_dataloader_workers(getattr(loop, 'dataloader', None))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if not ranks_agree_to_stop(self.signals.requested):
            return
        checkpoint = self._checkpoint_hook(runner).save_iteration(runner)
        barrier()
        if is_main_process():
            requeue_slurm_job()
        self.signals.restore()
        received = self.signals.received[0] if self.signals.received else \
            'a signal to another rank'
        raise TrainingPreempted(received, checkpoint, runner.iter + 1)

    @staticmethod
    def _checkpoint_hook(runner):
        for hook in runner.hooks:
            if isinstance(hook, AtomicCheckpointHook):
                return hook
        hook = AtomicCheckpointHook(by_epoch=False)
        hook.before_train(runner)
        return hook
