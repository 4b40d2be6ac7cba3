"""Checks tools/train.py and tools/test.py run before any work starts.

A mistake in a config, a missing file or a wrong checkpoint should stop a run
at once with the file or the config key in the message, not after minutes of
data loading or with a half-trained model. Every check raises
:class:`PreflightError`, whose message is meant for the user as it is.
"""
import contextlib
import difflib
import inspect
import logging
import os
import os.path as osp
import re
import sys

import mmengine.registry as mm_registry
import torch
from mmengine.dist import is_distributed
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict

__all__ = [
    'PreflightError', 'check_data_paths', 'explain_build_error', 'config_errors_explained',
    'build_runner', 'build_datasets',
    'resolve_checkpoint', 'check_checkpoint', 'init_cpu_distributed', 'close_distributed',
    'exit_after_distributed_run'
]


class PreflightError(Exception):
    """A run cannot start; the message names the file or config key at fault."""


# ----------------------------------------------------------------------------- data paths


def _is_remote(path):
    return '://' in path


def _dataset_cfgs(dataset_cfg, path):
    """Yield ``(config path, dataset dict)`` for a dataset and the ones it wraps."""
    if not isinstance(dataset_cfg, dict):
        return
    yield path, dataset_cfg
    if isinstance(dataset_cfg.get('dataset'), dict):
        yield from _dataset_cfgs(dataset_cfg['dataset'], f'{path}.dataset')
    for index, child in enumerate(dataset_cfg.get('datasets') or []):
        yield from _dataset_cfgs(child, f'{path}.datasets[{index}]')


def _joined(data_root, path):
    """mmengine's BaseDataset rule: relative paths are taken under ``data_root``."""
    if data_root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(data_root, path)
    return path


def check_data_paths(cfg, loader_keys):
    """Fail if a data root, annotation file or data prefix of a dataloader is missing.

    Args:
        cfg (Config): the full config.
        loader_keys (list[str]): top-level keys of the dataloaders the run
            uses, e.g. ``['train_dataloader', 'val_dataloader']``.
    """
    for loader_key in loader_keys:
        loader = cfg.get(loader_key)
        if not isinstance(loader, dict):
            continue
        for path, dataset in _dataset_cfgs(loader.get('dataset'), f'{loader_key}.dataset'):
            data_root = dataset.get('data_root') or ''
            if data_root and not _is_remote(data_root) and not osp.isdir(data_root):
                raise PreflightError(f'{path}.data_root: directory {data_root!r} does not exist')
            ann_file = dataset.get('ann_file')
            if isinstance(ann_file, str) and ann_file and not _is_remote(ann_file):
                full = _joined(data_root, ann_file)
                if not osp.isfile(full):
                    raise PreflightError(f'{path}.ann_file: annotation file {full!r} does not exist')
            prefixes = dataset.get('data_prefix')
            if isinstance(prefixes, dict):
                for name, prefix in prefixes.items():
                    if not isinstance(prefix, str) or not prefix or _is_remote(prefix):
                        continue
                    full = _joined(data_root, prefix)
                    if not osp.exists(full):
                        raise PreflightError(
                            f'{path}.data_prefix.{name}: data directory {full!r} does not exist')


# ----------------------------------------------------------------------------- build errors

_UNEXPECTED_KWARG = re.compile(r"(?:(\w+)\.)?__init__\(\) got an unexpected keyword argument '(\w+)'")
_NOT_IN_REGISTRY = re.compile(r'(\S+) is not in the (\S+)::(\S+) registry')


def _walk(node, path=''):
    """Yield ``(path, dict)`` for every dict in a config tree, depth first."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}' if path else str(key))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _walk(value, f'{path}[{index}]')


def _root_registries():
    return [value for name, value in vars(mm_registry).items()
            if name.isupper() and isinstance(value, mm_registry.Registry)]


def _resolve_type(type_name, scope):
    """Classes registered as ``type_name`` in any registry of ``scope``."""
    found = []
    for root in _root_registries():
        with root.switch_scope_and_registry(scope) as registry:
            try:
                obj = registry.get(type_name)
            except Exception:  # a lazily imported registry location may fail to import
                obj = None
        if inspect.isclass(obj):
            found.append(obj)
    return found


def _init_parameters(cls):
    names = set()
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(p.name for p in parameters
                     if p.name != 'self' and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return names


def _registry_names(root_name, scope):
    for root in _root_registries():
        if root.name != root_name:
            continue
        names = set()
        with root.switch_scope_and_registry(scope) as registry:
            while registry is not None:
                names.update(registry.module_dict)
                registry = registry.parent
        return names
    return set()


def explain_build_error(error, cfg):
    """Turn a build error caused by a config typo into a :class:`PreflightError`.

    Handles an unknown keyword argument (``TypeError: X.__init__() got an
    unexpected keyword argument 'k'``) and an unknown ``type`` (``KeyError: T
    is not in the scope::name registry``): the config keys holding them are
    located and named, with close matches as suggestions.

    Returns:
        PreflightError | None: None when the error is of another kind.
    """
    message = str(error.args[0]) if error.args else str(error)
    scope = cfg.get('default_scope')
    match = _UNEXPECTED_KWARG.search(message)
    if isinstance(error, TypeError) and match:
        owner, key = match.groups()
        hits = []
        for path, node in _walk(cfg._cfg_dict.to_dict()):
            if key not in node or 'type' not in node:
                continue
            classes = _resolve_type(node['type'], scope) if isinstance(node['type'], str) else []
            related = [cls for cls in classes if owner in (k.__name__ for k in inspect.getmro(cls))]
            hits.append((bool(related), path, node['type'], related or classes))
        if not hits:
            return None
        if any(hit[0] for hit in hits):
            hits = [hit for hit in hits if hit[0]]
        lines = []
        for _, path, type_name, classes in hits:
            accepted = set().union(*(_init_parameters(cls) for cls in classes)) if classes else set()
            close = difflib.get_close_matches(key, sorted(accepted), n=3)
            hint = f'; did you mean {" or ".join(map(repr, close))}?' if close else ''
            lines.append(f'config key {path}.{key}: {type_name} does not accept {key!r}{hint}')
        return PreflightError('\n'.join(lines) + f'\n(raised: {message})')
    match = _NOT_IN_REGISTRY.search(message)
    if isinstance(error, KeyError) and match:
        type_name, registry_scope, registry_name = match.groups()
        paths = [f'{path}.type' for path, node in _walk(cfg._cfg_dict.to_dict())
                 if node.get('type') == type_name]
        close = difflib.get_close_matches(
            type_name, sorted(_registry_names(registry_name, registry_scope)), n=3)
        hint = f'; did you mean {" or ".join(map(repr, close))}?' if close else ''
        where = ', '.join(paths) or 'config'
        return PreflightError(f'{where}: {type_name!r} is not registered in the '
                              f'{registry_scope}::{registry_name} registry{hint}')
    return None


@contextlib.contextmanager
def config_errors_explained(cfg):
    """Turn a TypeError/KeyError raised while building or running ``cfg`` into a
    :class:`PreflightError` naming the config key, when it can be traced to one."""
    try:
        yield
    except (TypeError, KeyError) as error:
        explained = explain_build_error(error, cfg)
        if explained is None:
            raise
        raise explained from error


def build_runner(cfg):
    """The config's runner (``runner_type`` or mmengine's Runner), with key errors explained."""
    with config_errors_explained(cfg):
        if 'runner_type' not in cfg:
            return Runner.from_cfg(cfg)
        return RUNNERS.build(cfg)


def build_datasets(runner, loader_attrs, cfg):
    """Build the datasets of the runner's dataloaders now, so bad data or keys fail early.

    The built datasets replace their configs, so nothing is loaded twice.

    Args:
        runner (Runner): a runner whose dataloaders are still configs.
        loader_attrs (list[str]): e.g. ``['_train_dataloader']``.
        cfg (Config): the config, to name keys in error messages.
    """
    for attr in loader_attrs:
        loader = getattr(runner, attr, None)
        if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
            continue
        try:
            dataset = mm_registry.DATASETS.build(loader['dataset'])
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
        except (TypeError, KeyError) as error:
            explained = explain_build_error(error, cfg)
            if explained is None:
                raise
            raise explained from error
        loader['dataset'] = dataset


# ----------------------------------------------------------------------------- checkpoints


def resolve_checkpoint(cfg):
    """The checkpoint a run will load and the option that asked for it, or (None, None)."""
    load_from = cfg.get('load_from')
    if cfg.get('resume'):
        if load_from:
            return load_from, '--resume'
        latest = find_latest_checkpoint(cfg.work_dir)
        return (latest, f'--resume (latest checkpoint of {cfg.work_dir})') if latest else (None, None)
    if load_from:
        return load_from, 'load_from'
    return None, None


def check_checkpoint(model, filename, option, strict=True):
    """Fail unless ``filename`` loads and its weights fit ``model``.

    Args:
        model (nn.Module): the built model (wrappers are unwrapped).
        filename (str): a path or URL mmengine can load.
        option (str): where the checkpoint came from, for the message.
        strict (bool): every parameter and buffer must be present with the
            right shape and nothing else may be in the file; otherwise it is
            enough that some weights match and none has the wrong shape.
    """
    if not _is_remote(filename) and not osp.isfile(filename):
        raise PreflightError(f'{option}: checkpoint {filename!r} does not exist')
    try:
        checkpoint = CheckpointLoader.load_checkpoint(filename, map_location='cpu')
    except Exception as error:
        raise PreflightError(f'{option}: cannot load checkpoint {filename!r}: {error}') from error
    if not isinstance(checkpoint, dict):
        raise PreflightError(f'{option}: {filename!r} holds a {type(checkpoint).__name__}, '
                             'not a checkpoint dict')
    state_dict = checkpoint.get('state_dict', checkpoint)
    state_dict = type(state_dict)((re.sub(r'^module\.', '', key), value)
                                  for key, value in state_dict.items())
    if not all(isinstance(value, torch.Tensor) for value in state_dict.values()):
        raise PreflightError(f'{option}: {filename!r} has no state_dict of tensors')
    if is_model_wrapper(model):
        model = model.module
    model_keys = set(model.state_dict())
    if strict:
        try:
            load_state_dict(model, state_dict, strict=True)
        except RuntimeError as error:
            raise PreflightError(f'{option}: checkpoint {filename!r} does not match the model '
                                 f'{type(model).__name__}:\n{error}') from None
        return
    shared = model_keys & set(state_dict)
    model_state = model.state_dict()
    wrong = [f'{key}: checkpoint {tuple(state_dict[key].shape)}, model {tuple(model_state[key].shape)}'
             for key in sorted(shared) if state_dict[key].shape != model_state[key].shape]
    if not shared or wrong:
        detail = '\n'.join(wrong[:20]) if wrong else 'no parameter name is shared'
        raise PreflightError(f'{option}: checkpoint {filename!r} does not match the model '
                             f'{type(model).__name__}:\n{detail}')


# ----------------------------------------------------------------------------- distributed


def init_cpu_distributed(cfg, launcher):
    """Start a gloo process group for CPU-only multi-process runs.

    mmengine's launchers call ``torch.cuda.set_device`` and wrap the model
    with ``device_ids=[LOCAL_RANK]``, both of which fail without a GPU. Here
    the group is started with gloo (mmengine then uses it as it is) and the
    DDP wrapper is told to use no device ids.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise PreflightError(f'--launcher {launcher} needs GPUs; on CPU-only machines use '
                             '--launcher pytorch with torchrun (tools/dist_train.sh)')
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if name not in os.environ:
            raise PreflightError(f'--launcher pytorch: environment variable {name} is not set; '
                                 'start the script with torchrun')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not is_distributed():
        torch.distributed.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def close_distributed():
    """Destroy the default process group, if any, before the interpreter exits.

    Otherwise gloo's worker threads can still hold tensors while Python shuts
    down, and a rank that finished its work aborts with "terminate called
    without an active exception" (SIGABRT), failing the whole torchrun job
    (pytorch/pytorch#190489).
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def exit_after_distributed_run():
    """End a successful multi-process run now, skipping the interpreter's teardown.

    Even after :func:`close_distributed`, one rank in a few of a torchrun job
    still aborts in teardown ("terminate called without an active exception",
    SIGABRT: a C++ thread of gloo or of decord's readers is destroyed while
    joinable), and torchrun then reports the finished job as failed. The work
    is done and the logs are flushed here, so the process leaves with
    ``os._exit(0)``. Single-process runs exit normally.
    """
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
