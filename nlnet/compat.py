"""The few fixes the pinned OpenMMLab stack needs, in one place.

Each fix names the upstream symptom it removes; :func:`apply` is idempotent and runs
when this module is first imported: every nlnet subpackage that uses the mm stack
imports it before any ``mm*`` module.

1. ``mmaction2==1.2.0``'s wheel and sdist lack ``mmaction/models/localizers/drn/``
   while ``mmaction/models/localizers/__init__.py`` imports it, so
   ``import mmaction.models`` fails with ``ModuleNotFoundError: No module named
   'mmaction.models.localizers.drn'``. When the package is really missing we
   register a placeholder module whose ``DRN`` raises on use, naming the cause.

2. ``mmengine==0.10.7`` loads checkpoints with a bare ``torch.load``; torch >= 2.6
   defaults to ``weights_only=True`` and refuses mmengine's own checkpoints
   (``UnpicklingError: Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``),
   so ``--resume`` fails. We replace mmengine's local-file loader with
   :func:`nlnet.checkpoint_loading.load_local_checkpoint`, which keeps
   ``weights_only=True`` and allows exactly the globals mmengine checkpoints hold.
"""
import importlib.util
import os.path as osp
import sys
import types

from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_loading import load_local_checkpoint

__all__ = ['apply']

_DRN_MODULE = 'mmaction.models.localizers.drn'


class _MissingDRN:
    """Stands in for mmaction's DRN localizer, which the 1.2.0 distribution does not ship."""

    def __init__(self, *args, **kwargs):
        raise ImportError('mmaction2 1.2.0 is distributed without mmaction/models/localizers/drn/, '
                          'so the DRN localizer is unavailable; install mmaction2 from its git '
                          'sources to use it.')


def _register_missing_drn():
    spec = importlib.util.find_spec('mmaction')
    package_dir = spec.submodule_search_locations[0]
    if osp.isfile(osp.join(package_dir, 'models', 'localizers', 'drn', 'drn.py')):
        return
    if _DRN_MODULE in sys.modules:
        return
    package = types.ModuleType(_DRN_MODULE)
    package.__path__ = []
    module = types.ModuleType(f'{_DRN_MODULE}.drn')
    module.DRN = _MissingDRN
    package.drn = module
    sys.modules[_DRN_MODULE] = package
    sys.modules[f'{_DRN_MODULE}.drn'] = module


_applied = False


def apply():
    """Apply every fix once (idempotent)."""
    global _applied
    if _applied:
        return
    _register_missing_drn()
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    _applied = True


apply()
