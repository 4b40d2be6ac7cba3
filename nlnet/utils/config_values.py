"""The config file and the values a user commonly overrides, checked before a run builds anything.

A config path that does not exist, a config file (or one of its ``_base_`` files)
with a syntax error, a work dir that cannot be created, and a value of the wrong
type or range (``--cfg-options optim_wrapper.optimizer.lr=abc``,
``train_dataloader.batch_size=0``) would otherwise end in a traceback from deep
inside mmengine or torch, naming no key. Each check raises
:class:`~nlnet.utils.preflight.PreflightError` naming the file and line, or the
key, the value and what is allowed (the tools print it as one ``<tool>: error:``
line and exit with status 2).
"""
import ast
import math
import os
import os.path as osp

from mmengine.config import Config

from .preflight import PreflightError

__all__ = ['load_config', 'check_work_dir', 'check_config_values', 'config_value_problems']

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_size(value):
    """A crop size: an integer >= 1 or a pair of them."""
    if isinstance(value, (list, tuple)):
        return len(value) == 2 and all(_is_integer(v) and v >= 1 for v in value)
    return _is_integer(value) and value >= 1


# What is allowed (as the message says it) and the test of a value.
POSITIVE_NUMBER = ('a finite number > 0', lambda v: _is_number(v) and v > 0)
NON_NEGATIVE_NUMBER = ('a finite number >= 0', lambda v: _is_number(v) and v >= 0)
MOMENTUM = ('a number in [0, 1)', lambda v: _is_number(v) and 0 <= v < 1)
POSITIVE_INTEGER = ('an integer >= 1', lambda v: _is_integer(v) and v >= 1)
NON_NEGATIVE_INTEGER = ('an integer >= 0', lambda v: _is_integer(v) and v >= 0)
CHECKPOINT_INTERVAL = ('an integer >= 1, or -1 (no checkpoints)',
                       lambda v: _is_integer(v) and (v >= 1 or v == -1))
CROP_SIZE = ('an integer >= 1 or a pair (h, w) of them', _is_size)

# Config keys (dotted paths) and their rules; a key the config does not set is not checked.
VALUE_RULES = {
    'optim_wrapper.optimizer.lr': POSITIVE_NUMBER,
    'optim_wrapper.optimizer.momentum': MOMENTUM,
    'optim_wrapper.optimizer.weight_decay': NON_NEGATIVE_NUMBER,
    **{f'{loader}.batch_size': POSITIVE_INTEGER for loader in LOADERS},
    **{f'{loader}.num_workers': NON_NEGATIVE_INTEGER for loader in LOADERS},
    'train_cfg.max_epochs': POSITIVE_INTEGER,
    'train_cfg.max_iters': POSITIVE_INTEGER,
    'train_cfg.val_interval': POSITIVE_INTEGER,
    'default_hooks.checkpoint.interval': CHECKPOINT_INTERVAL,
    'auto_scale_lr.base_batch_size': POSITIVE_INTEGER,
}
# Arguments of the pipelines' transforms: the clip length and sampling, the crop size.
TRANSFORM_RULES = {
    'clip_len': POSITIVE_INTEGER,
    'frame_interval': POSITIVE_INTEGER,
    'num_clips': POSITIVE_INTEGER,
    'crop_size': CROP_SIZE,
}


def _syntax_errors(path, seen):
    """``(file, SyntaxError)`` of ``path`` or of a ``_base_`` file it names, first found."""
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as handle:
        source = handle.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        return path, error
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except ValueError:
                return None
            for base in [bases] if isinstance(bases, str) else bases:
                found = _syntax_errors(osp.normpath(osp.join(osp.dirname(path), base)), seen)
                if found:
                    return found
    return None


def load_config(path):
    """The :class:`mmengine.config.Config` of ``path``.

    Raises:
        PreflightError: the file does not exist, it or one of its ``_base_``
            files has a syntax error (file, line and Python's message), or a
            ``_base_`` file does not exist.
    """
    if not osp.isfile(path):
        raise PreflightError(f'config file {path!r} does not exist')
    found = _syntax_errors(osp.abspath(path), set())
    if found:
        file, error = found
        text = f': {error.text.strip()}' if error.text and error.text.strip() else ''
        raise PreflightError(f'config file {file}, line {error.lineno}: {error.msg}{text}')
    try:
        return Config.fromfile(path)
    except FileNotFoundError as error:
        raise PreflightError(f'config file {path!r}: {error.filename!r} (a _base_ file) does '
                             'not exist') from error


def check_work_dir(path, option='work_dir'):
    """Create the work dir ``path`` (as the runner would) or fail naming it and why.

    Args:
        path (str): the work dir.
        option (str): where it came from, for the message (``--work-dir``).
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise PreflightError(f'{option} {path!r} cannot be created: {error.strerror}') from None


_MISSING = object()


def _lookup(cfg, dotted):
    """The value at ``dotted`` in ``cfg``, or a sentinel where a part is missing."""
    value = cfg
    for part in dotted.split('.'):
        if not isinstance(value, (Config, dict)) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _pipelines(cfg):
    """``(config path, pipeline)`` of every dataloader's dataset and the datasets it wraps."""
    for loader in LOADERS:
        dataset = _lookup(cfg, f'{loader}.dataset')
        path = f'{loader}.dataset'
        while isinstance(dataset, dict):
            if isinstance(dataset.get('pipeline'), (list, tuple)):
                yield f'{path}.pipeline', dataset['pipeline']
            dataset, path = dataset.get('dataset'), f'{path}.dataset'


def config_value_problems(cfg):
    """``[(key, value, allowed)]`` of every checked value ``cfg`` sets outside its rule."""
    problems = []
    for key, (allowed, fits) in VALUE_RULES.items():
        value = _lookup(cfg, key)
        if value is not _MISSING and value is not None and not fits(value):
            problems.append((key, value, allowed))
    for path, pipeline in _pipelines(cfg):
        for index, transform in enumerate(pipeline):
            if not isinstance(transform, dict):
                continue
            for name, (allowed, fits) in TRANSFORM_RULES.items():
                if name in transform and not fits(transform[name]):
                    problems.append((f'{path}[{index}].{name}', transform[name],
                                     f'{allowed} ({transform.get("type")}.{name})'))
    return problems


def check_config_values(cfg):
    """Fail naming every key of :data:`VALUE_RULES` / :data:`TRANSFORM_RULES` whose value is
    of the wrong type or range: ``key=value: must be <allowed>``, joined by ``'; '``."""
    problems = config_value_problems(cfg)
    if problems:
        raise PreflightError('; '.join(f'{key}={value!r}: must be {allowed}'
                                       for key, value, allowed in problems))
