"""Fine-tuning: load every weight of ``load_from`` except those under named prefixes."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import BaseLoop

__all__ = ['DropCheckpointKeysHook']


@HOOKS.register_module()
class DropCheckpointKeysHook(Hook):
    """Drops the checkpoint's weights under ``prefixes`` when a run loads ``load_from``.

    A Kinetics model fine-tuned on Charades keeps its backbone and gets a new
    classifier (400 -> 157 classes). This hook removes the checkpoint's keys
    under ``prefixes`` and puts the model's own, freshly initialised weights
    in their place, so that everything else loads strictly (nlnet's checkpoint
    check and mmengine's loader see an exact match; any other missing or
    mis-shaped key still stops the run) and the run logs one line naming the
    dropped keys. Only training runs that start from ``load_from`` drop keys:
    on ``resume`` the checkpoint is the run's own, and a test run
    (``tools/test.py``) loads the checkpoint it tests whole.

    Args:
        prefixes (list[str]): state-dict key prefixes, e.g. ``['cls_head.fc_cls.']``.
            Each must name at least one weight of the model.
    """

    priority = 'VERY_HIGH'

    def __init__(self, prefixes):
        if isinstance(prefixes, str) or not prefixes or \
                not all(isinstance(p, str) and p for p in prefixes):
            raise ValueError(f'prefixes must be a non-empty list of non-empty strings, '
                             f'got {prefixes!r}')
        self.prefixes = tuple(prefixes)

    def _dropped(self, key):
        return key.startswith(self.prefixes)

    @staticmethod
    def _fine_tuning(runner):
        """True when ``runner.train()`` loads ``load_from`` (not resume, not a test run).

        mmengine exposes neither flag: ``train()`` builds the train loop before
        loading, while ``test()`` and ``val()`` leave its config unbuilt.
        """
        return not runner._resume and isinstance(runner._train_loop, BaseLoop)

    def after_load_checkpoint(self, runner, checkpoint):
        if not self._fine_tuning(runner):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        own = {key: value for key, value in model.state_dict().items() if self._dropped(key)}
        unmatched = [p for p in self.prefixes if not any(k.startswith(p) for k in own)]
        if unmatched:
            raise ValueError(f'DropCheckpointKeysHook: prefix(es) {unmatched} name no weight '
                             f'of {type(model).__name__}')
        state_dict = checkpoint.get('state_dict', checkpoint)
        dropped = [key for key in state_dict if self._dropped(key.removeprefix('module.'))]
        described = ', '.join(f'{key} {tuple(state_dict[key].shape)}' for key in dropped)
        for key in dropped:
            del state_dict[key]
        state_dict.update(own)
        runner.logger.info(f'load_from {runner._load_from}: dropped {len(dropped)} checkpoint '
                           f'key(s) under {list(self.prefixes)} ({described or "none present"}); '
                           f'the model\'s {len(own)} weight(s) there keep their initialisation')
