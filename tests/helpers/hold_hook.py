"""A hook that holds training at a chosen iteration until the test lets it go, for the
cluster tests' kills and signals.

Imported by the training subprocesses through the config's ``custom_imports``
(the tests put ``tests/helpers`` on their ``PYTHONPATH``).
"""
import os
import os.path as osp
import time

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

# How often a held rank looks for the release file.
POLL_SECONDS = 0.02


def held_pid_file(release, rank):
    """The file in which rank ``rank`` writes its pid while it is held."""
    return f'{release}.rank{rank}.pid'


@HOOKS.register_module()
class HoldBeforeIterHook(Hook):
    """Holds every rank after ``iteration`` training iterations until the file ``release`` exists.

    A held rank writes its pid to :func:`held_pid_file` and logs ``held after
    iteration N``; the test kills or signals the job at that moment, then
    creates ``release``. Once ``release`` exists the hook does nothing, in this
    run and in a restarted or resumed one.

    Args:
        iteration (int): finished training iterations at which to hold, >= 1.
        release (str): the file whose existence lets training go on.
    """

    priority = 'LOWEST'

    def __init__(self, iteration, release):
        if not isinstance(iteration, int) or iteration < 1:
            raise ValueError(f'iteration must be an int >= 1, got {iteration!r}')
        self.iteration = iteration
        self.release = release

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter != self.iteration or osp.exists(self.release):
            return
        pid_file = held_pid_file(self.release, runner.rank)
        with open(f'{pid_file}.tmp', 'w') as handle:
            handle.write(str(os.getpid()))
        os.replace(f'{pid_file}.tmp', pid_file)
        print_log(f'held after iteration {self.iteration} (rank {runner.rank})',
                  logger='current')
        while not osp.exists(self.release):
            time.sleep(POLL_SECONDS)
