"""Checks the checkpoint a runner loads against its model, while it loads it."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils.checkpoint_checks import check_state_dict


@HOOKS.register_module()
class CheckpointCheckHook(Hook):
    """Raises :class:`~nlnet.utils.preflight.PreflightError` when the loaded weights do not fit.

    mmengine calls ``after_load_checkpoint`` with the checkpoint it has just
    read (for ``load_from`` and for ``resume``), before copying the weights
    into the model and before any training or testing step: the file is read
    once, and a mismatch stops the run naming the file and the keys.

    Args:
        filename (str): the checkpoint the runner will load, for the message.
        option (str): where it came from (``'--resume'``, ``'load_from'``,
            ...), for the message.
        strict (bool): see :func:`~nlnet.utils.checkpoint_checks.check_state_dict`.
    """

    priority = 'VERY_HIGH'

    def __init__(self, filename, option, strict=True):
        self.filename = filename
        self.option = option
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint):
        check_state_dict(runner.model, checkpoint, self.filename, self.option, self.strict)
