"""Checks that tools/train.py and tools/test.py run before any work starts.

A mistake in a config, a missing file or a wrong checkpoint should stop a run
at once with the file or the config key in the message, not after minutes of
data loading or with a half-trained model. Every check raises
:class:`PreflightError`, whose message is meant for the user as it is.
"""
import contextlib
import difflib
import inspect
import os.path as osp
import re

import mmengine.registry as mm_registry
import torch
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint
from torch import nn

from ..checkpoint_errors import CorruptCheckpointError, UnsafeCheckpointError

__all__ = [
    'PreflightError', 'check_data_paths', 'check_config_keys', 'build_runner', 'build_datasets',
    'resolve_checkpoint', 'check_checkpoint_exists', 'checkpoint_load_errors', 'check_state_dict'
]


class PreflightError(Exception):
    """A run cannot start; the message names the file or config key at fault."""


def _is_remote(path):
    return '://' in path


# ----------------------------------------------------------------------------- data paths


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
                    raise PreflightError(
                        f'{path}.ann_file: annotation file {full!r} does not exist')
            prefixes = dataset.get('data_prefix')
            if isinstance(prefixes, dict):
                for name, prefix in prefixes.items():
                    if not isinstance(prefix, str) or not prefix or _is_remote(prefix):
                        continue
                    full = _joined(data_root, prefix)
                    if not osp.exists(full):
                        raise PreflightError(
                            f'{path}.data_prefix.{name}: data directory {full!r} does not exist')


# ----------------------------------------------------------------------------- config keys

# Config sections built from their dicts as they are.
CHECKED_SECTIONS = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader',
                    'val_evaluator', 'test_evaluator')


def _registry_name(path):
    """The mmengine registry that names the ``type`` at config ``path``, for suggestions."""
    if '.pipeline[' in path:
        return 'transform'
    if path.startswith('model'):
        return 'model'
    if path.endswith('_evaluator') or '_evaluator[' in path:
        return 'metric'
    if '.dataset' in path:
        return 'dataset'
    if 'sampler' in path:
        return 'data sampler'
    return 'function'


# The root registries that the checked sections name types in.
SEARCHED_REGISTRIES = (mm_registry.MODELS, mm_registry.TASK_UTILS, mm_registry.DATASETS,
                       mm_registry.TRANSFORMS, mm_registry.DATA_SAMPLERS, mm_registry.METRICS,
                       mm_registry.EVALUATOR)
# Keys whose ``type`` names no class of those registries: mmdet's RoI extractors
# take ``roi_layer`` from ``mmcv.ops`` by name, and ``collate_fn`` is a function.
UNCHECKED_KEYS = ('roi_layer', 'collate_fn')


def _registered(type_name, scope):
    """Everything registered as ``type_name`` in any registry of ``scope``."""
    found = []
    for root in SEARCHED_REGISTRIES:
        with root.switch_scope_and_registry(scope) as registry:
            try:
                obj = registry.get(type_name)
            except Exception:  # a lazily imported registry location may fail to import
                obj = None
        if obj is not None:
            found.append(obj)
    return found


def _registry_names(root_name, scope):
    """Every name registered in ``scope``'s registry ``root_name`` and its parents."""
    names = set()
    for root in SEARCHED_REGISTRIES:
        if root.name != root_name:
            continue
        with root.switch_scope_and_registry(scope) as registry:
            while registry is not None:
                names.update(registry.module_dict)
                registry = registry.parent
    return names


def accepted_keys(cls):
    """The keyword arguments ``cls(...)`` accepts, or None where its signature cannot tell.

    The first ``__init__`` along the MRO decides: with named parameters only,
    those are the accepted keys; with ``**kwargs`` (or no readable signature)
    any key may be taken, so None.
    """
    for klass in inspect.getmro(cls):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass in (object, nn.Module):
            return set()
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        if any(p.kind == p.VAR_KEYWORD for p in parameters):
            return None
        return {p.name for p in parameters if p.kind != p.VAR_POSITIONAL}
    return set()


def _typed_nodes(node, path):
    """Yield ``(path, dict)`` for every dict with a ``type`` under ``node``.

    Dicts under ``*_cfg`` keys (``norm_cfg``, ``init_cfg``, ...) are left out:
    their builders (mmcv's ``build_norm_layer``, initialisers) take keys of
    their own besides those of the class; so are those of
    :data:`UNCHECKED_KEYS`.
    """
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path, node
        for key, value in node.items():
            if not str(key).endswith('_cfg') and key not in UNCHECKED_KEYS:
                yield from _typed_nodes(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _typed_nodes(value, f'{path}[{index}]')


def _node_errors(path, node, registry_name, scope):
    type_name = node['type']
    found = _registered(type_name, scope)
    if not found:
        close = difflib.get_close_matches(type_name.split('.')[-1],
                                          sorted(_registry_names(registry_name, scope)), n=3)
        hint = f'; did you mean {" or ".join(map(repr, close))}?' if close else ''
        return [f'{path}.type: {type_name!r} is not registered in the '
                f'{scope}::{registry_name} registry{hint}']
    classes = [obj for obj in found if inspect.isclass(obj)]
    accepted = [accepted_keys(cls) for cls in classes]
    if not classes or any(keys is None for keys in accepted):
        return []
    accepted = set().union(*accepted)
    errors = []
    for key in node:
        if key in ('type', '_scope_') or key in accepted:
            continue
        close = difflib.get_close_matches(key, sorted(accepted), n=3)
        hint = f'; did you mean {" or ".join(map(repr, close))}?' if close else ''
        errors.append(f'config key {path}.{key}: {type_name} does not accept {key!r}{hint}')
    return errors


def check_config_keys(cfg):
    """Fail on an unregistered ``type`` or a key its class does not accept.

    Every dict with a ``type`` in the model, the dataloaders and the
    evaluators is looked up in the registries of the config's scope, and its
    keys are checked against the signature of the class (where it names its
    arguments; see :func:`accepted_keys`).
    """
    scope = cfg.get('default_scope')
    tree = cfg.to_dict()
    errors = []
    for section in CHECKED_SECTIONS:
        for path, node in _typed_nodes(tree.get(section), section):
            errors += _node_errors(path, node, _registry_name(path), scope)
    if errors:
        raise PreflightError('\n'.join(errors))


# ----------------------------------------------------------------------------- building


def build_runner(cfg):
    """The config's runner (``runner_type`` or mmengine's Runner)."""
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def build_datasets(runner, loader_attrs):
    """Build the datasets of the runner's dataloaders now, so bad data fails early.

    The built datasets replace their configs, so nothing is loaded twice.

    Args:
        runner (Runner): a runner whose dataloaders are still configs.
        loader_attrs (list[str]): e.g. ``['_train_dataloader']``.
    """
    for attr in loader_attrs:
        loader = getattr(runner, attr, None)
        if not isinstance(loader, dict) or not isinstance(loader.get('dataset'), dict):
            continue
        dataset = mm_registry.DATASETS.build(loader['dataset'])
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        loader['dataset'] = dataset


# ----------------------------------------------------------------------------- checkpoints


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
    if not _is_remote(filename) and not osp.isfile(filename):
        raise PreflightError(f'{option}: checkpoint {filename!r} does not exist')


@contextlib.contextmanager
def checkpoint_load_errors(filename, option):
    """Turn a checkpoint that cannot be read (truncated, corrupt, unsafe) into a PreflightError.

    Only :mod:`nlnet.compat`'s checkpoint reader raises the errors caught here.
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
