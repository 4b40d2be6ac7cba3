"""A hook that kills its own training process, for resume tests.

Imported by the training subprocess through the config's ``custom_imports``
(the tests put ``tests/helpers`` on its ``PYTHONPATH``).
"""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SigkillBeforeIterHook(Hook):
    """Sends SIGKILL to the training process when ``iteration`` iterations are done.

    The kill comes before the next iteration starts, so the process dies as
    abruptly as on a node failure: no hook, no checkpoint and no log flush
    runs after it.

    Args:
        iteration (int): number of finished training iterations at which to
            kill, >= 1.
    """

    priority = 'LOWEST'

    def __init__(self, iteration):
        if not isinstance(iteration, int) or iteration < 1:
            raise ValueError(f'iteration must be an int >= 1, got {iteration!r}')
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)
