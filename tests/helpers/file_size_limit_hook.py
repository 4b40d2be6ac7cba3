"""A hook that limits the size of the files its training process may write (``ulimit -f``),
for the full-disk test.

Imported by the training subprocess through the config's ``custom_imports``.
"""
import resource

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FileSizeLimitHook(Hook):
    """Sets ``RLIMIT_FSIZE`` to ``limit`` bytes after ``iteration`` training iterations.

    It runs after that iteration's checkpoint is saved; a later write past the
    limit fails with ``EFBIG`` (Python ignores ``SIGXFSZ``), as on a full disk.

    Args:
        iteration (int): finished iterations after which the limit applies.
        limit (int): the largest file size in bytes.
    """

    priority = 'LOWEST'

    def __init__(self, iteration, limit):
        self.iteration = iteration
        self.limit = limit

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.iteration:
            resource.setrlimit(resource.RLIMIT_FSIZE,
                               (self.limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
