"""Checks of the checkpoint a run loads: it exists, it can be read, its weights fit the model.

Each raises :class:`~nlnet.utils.preflight.PreflightError` naming the file and
the option that asked for it.
"""
import contextlib
import os.path as osp
import re

import torch
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import find_latest_checkpoint

from ..checkpoint_errors import CorruptCheckpointError, UnsafeCheckpointError
from ..ops import NonLocalBlock
from ..ops.non_local import rename_mmcv_keys
from .preflight import PreflightError, is_remote

__all__ = ['resolve_checkpoint', 'check_checkpoint_exists', 'checkpoint_load_errors',
           'check_state_dict']


def resolve_checkpoint(cfg):
    """The checkpoint a run will load and the option that asked for it, or (None, None)."""
    load_from = cfg.get('load_from')
    if cfg.get('resume'):
        if load_from:
            return load_from, '--resume'
        latest = find_latest_checkpoint(cfg.work_dir)
        if latest is None:
            return None, None
        return latest, f'--resume (latest checkpoint of {cfg.work_dir})'
    if load_from:
        return load_from, 'load_from'
    return None, None


def check_checkpoint_exists(filename, option):
    """Fail unless the local checkpoint ``filename`` exists (URLs are left to the loader).

    The file is read once, by the runner: :func:`check_state_dict` checks what
    it holds and :func:`checkpoint_load_errors` names the file when it cannot
    be read.

    Args:
        filename (str): a path or URL mmengine can load.
        option (str): where the checkpoint came from, for the message.
    """
    if not is_remote(filename) and not osp.isfile(filename):
        raise PreflightError(f'{option}: checkpoint {filename!r} does not exist')


@contextlib.contextmanager
def checkpoint_load_errors(filename, option):
    """Turn a checkpoint that cannot be read (truncated, corrupt, unsafe) into a PreflightError.

    nlnet's checkpoint readers (:mod:`nlnet.checkpoint_loading`, :mod:`nlnet.converters`)
    raise the errors caught here.
    """
    try:
        yield
    except (CorruptCheckpointError, UnsafeCheckpointError) as error:
        raise PreflightError(f'{option}: cannot load checkpoint {filename!r}: {error}') from error


def check_state_dict(model, checkpoint, filename, option, strict=True):
    """Fail unless the weights of the loaded ``checkpoint`` fit ``model``.

    Args:
        model (nn.Module): the built model (wrappers, test-time augmentation
            included, are unwrapped).
        checkpoint (object): what the checkpoint file holds.
        filename (str): the checkpoint's path, for the message.
        option (str): where the checkpoint came from, for the message.
        strict (bool): every parameter and buffer must be present with the
            right shape and nothing else may be in the file; otherwise it is
            enough that some weights match and none has the wrong shape.
    """
    if not isinstance(checkpoint, dict):
        raise PreflightError(f'{option}: {filename!r} holds a {type(checkpoint).__name__}, '
                             'not a checkpoint dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    state_dict = {re.sub(r'^module\.', '', key): value for key, value in state_dict.items()}
    if not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise PreflightError(f'{option}: {filename!r} has no state_dict of tensors')
    # Unwrapped as mmengine's load_state_dict does: distributed and test-time-augmentation
    # wrappers load their module's weights under the module's own names.
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    model_state = model.state_dict()
    for name, module in model.named_modules():  # as the blocks rename keys when loading
        if isinstance(module, NonLocalBlock):
            rename_mmcv_keys(state_dict, f'{name}.' if name else '')
    shared = sorted(set(model_state) & set(state_dict))
    problems = [f'size mismatch for {key}: checkpoint {tuple(state_dict[key].shape)}, '
                f'model {tuple(model_state[key].shape)}'
                for key in shared if state_dict[key].shape != model_state[key].shape]
    if strict:
        missing = sorted(set(model_state) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(model_state))
        if missing:
            problems.append(f'missing keys in the checkpoint: {", ".join(missing)}')
        if unexpected:
            problems.append(f'unexpected keys in the checkpoint: {", ".join(unexpected)}')
    elif not shared:
        problems.append('no parameter name is shared')
    if problems:
        detail = '\n'.join(problems[:20])
        raise PreflightError(f'{option}: checkpoint {filename!r} does not match the model '
                             f'{type(model).__name__}:\n{detail}')
