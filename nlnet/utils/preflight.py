"""Checks of a config that tools/train.py and tools/test.py run before any work starts.

A mistake in a config or a missing file should stop a run at once with the
file or the config key in the message, not after minutes of data loading.
Every check raises :class:`PreflightError`, whose message is meant for the user
as it is; so do the checks of the checkpoint a run loads
(:mod:`nlnet.utils.checkpoint_checks`).
"""
import difflib
import inspect
import os.path as osp

import mmengine.registry as mm_registry
from torch import nn

__all__ = ['PreflightError', 'is_remote', 'check_data_paths', 'check_config_keys']


class PreflightError(Exception):
    """A run cannot start; the message names the file or config key at fault."""


def is_remote(path):
    """Whether mmengine reads ``path`` through a file backend (``scheme://...``), not from disk."""
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
    if data_root and not osp.isabs(path) and not is_remote(path):
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
            if data_root and not is_remote(data_root) and not osp.isdir(data_root):
                raise PreflightError(f'{path}.data_root: directory {data_root!r} does not exist')
            ann_file = dataset.get('ann_file')
            if isinstance(ann_file, str) and ann_file and not is_remote(ann_file):
                full = _joined(data_root, ann_file)
                if not osp.isfile(full):
                    raise PreflightError(
                        f'{path}.ann_file: annotation file {full!r} does not exist')
            prefixes = dataset.get('data_prefix')
            if isinstance(prefixes, dict):
                for name, prefix in prefixes.items():
                    if not isinstance(prefix, str) or not prefix or is_remote(prefix):
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
