"""A hook that signals its own process while a checkpoint is being saved, for the
preemption test's second signal.

Imported by the training subprocesses through the config's ``custom_imports``.
"""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SignalDuringSaveHook(Hook):
    """Sends ``signal_name`` to its own process while the checkpoint of ``iteration`` is saved.

    mmengine calls ``before_save_checkpoint`` on the saving rank once the
    checkpoint's content is gathered and before it is written, so the signal
    arrives in the middle of the save.

    Args:
        iteration (int): the iteration whose checkpoint is being saved (its
            ``meta['iter']``).
        signal_name (str): e.g. ``'SIGTERM'``.
    """

    def __init__(self, iteration, signal_name='SIGTERM'):
        self.iteration = iteration
        self.signum = signal.Signals[signal_name]

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta'].get('iter') == self.iteration:
            os.kill(os.getpid(), self.signum)
