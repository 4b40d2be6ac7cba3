"""``--resume`` continues the run of its checkpoint, not another one.

mmengine saves the run's config as text in every checkpoint
(``meta['cfg']``). Resuming under a config whose model, data or schedule
differ would silently train a mixture of two runs, so
:class:`ResumeCheckHook` compares them while the checkpoint is loaded and
refuses, listing every differing key with both values.
"""
import logging
import os
import os.path as osp
import tempfile

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..utils.preflight import PreflightError

__all__ = ['ResumeCheckHook', 'run_config_differences', 'SECTIONS_THAT_MUST_MATCH']

# What a run trains: the model, the data (datasets with their pipelines) and
# the schedule. Work dirs, launchers, hooks, logging and env may change.
SECTIONS_THAT_MUST_MATCH = ('model', 'train_dataloader.dataset', 'val_dataloader.dataset',
                            'test_dataloader.dataset', 'train_cfg', 'param_scheduler',
                            'optim_wrapper')


def _section(cfg, dotted):
    node = cfg
    for key in dotted.split('.'):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _flatten(node, path, out):
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f'{path}.{key}', out)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            _flatten(value, f'{path}[{index}]', out)
        if not node:
            out[path] = type(node)()
    else:
        out[path] = node
    return out


def run_config_differences(saved, current):
    """``[(key, saved value, current value)]`` over :data:`SECTIONS_THAT_MUST_MATCH`.

    Args:
        saved, current (dict): the checkpoint's config and this run's, as dicts.

    A missing value is ``'<absent>'``. The validation and test datasets are
    compared only when both configs have them (``--no-validate`` does not
    change what is trained).
    """
    differences = []
    for section in SECTIONS_THAT_MUST_MATCH:
        old, new = _section(saved, section), _section(current, section)
        if not section.startswith('train') and section.endswith('.dataset') and \
                (old is None or new is None):
            continue
        old, new = _flatten(old, section, {}), _flatten(new, section, {})
        for key in sorted(set(old) | set(new)):
            before, after = old.get(key, '<absent>'), new.get(key, '<absent>')
            if before != after:
                differences.append((key, before, after))
    return differences


def _config_from_text(text):
    """The config that mmengine saved as ``pretty_text``, without importing its custom modules."""
    with tempfile.TemporaryDirectory() as folder:
        path = osp.join(folder, 'saved_config.py')
        with open(path, 'w') as handle:
            handle.write(text)
        return Config.fromfile(path, import_custom_modules=False)


@HOOKS.register_module()
class ResumeCheckHook(Hook):
    """Logs where a resumed run continues and refuses a checkpoint of another run.

    Args:
        filename (str): the checkpoint resumed from, for the messages.
        resume_anyway (bool): log the differences as a warning instead of
            refusing (``--resume-anyway``).
    """

    priority = 'VERY_HIGH'

    def __init__(self, filename, resume_anyway=False):
        self.filename = filename
        self.resume_anyway = resume_anyway

    def after_load_checkpoint(self, runner, checkpoint):
        meta = checkpoint.get('meta') or {}
        saved = meta.get('cfg')
        if isinstance(saved, str):
            try:
                saved_cfg = _config_from_text(saved).to_dict()
            except Exception as error:  # whatever the saved text fails with, say so and go on
                _log_once(f'--resume: cannot read the config saved in {self.filename} '
                          f'({type(error).__name__}: {error}); not compared', logging.WARNING)
            else:
                self._compare(saved_cfg, runner.cfg.to_dict())
        else:
            _log_once(f'--resume: {self.filename} holds no saved config (meta["cfg"]); cannot '
                      'check that it is a checkpoint of this run', logging.WARNING)
        epoch, iteration = meta.get('epoch', 0), meta.get('iter', 0)
        _log_once(f'--resume: continuing from {self.filename} after epoch {epoch}, iteration '
                  f'{iteration} (the next one trained is iteration {iteration + 1})')

    def _compare(self, saved, current):
        differences = run_config_differences(saved, current)
        if not differences:
            return
        listing = os.linesep.join(f'  {key}: {before!r} in the checkpoint, {after!r} now'
                                  for key, before, after in differences)
        message = (f'--resume: the config of {self.filename} differs from this one in the '
                   f'model, data or schedule:{os.linesep}{listing}')
        if not self.resume_anyway:
            raise PreflightError(f'{message}{os.linesep}pass --resume-anyway to resume all the '
                                 'same, or start a new run (another --work-dir)')
        _log_once(f'{message}{os.linesep}resuming all the same (--resume-anyway)',
                  logging.WARNING)


def _log_once(message, level=logging.INFO):
    """Log on the main process only: every rank loads the checkpoint and would say the same."""
    if is_main_process():
        print_log(message, logger='current', level=level)
