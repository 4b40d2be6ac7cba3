"""The few fixes the pinned OpenMMLab stack needs, in one place.

Each fix names the upstream symptom it removes; :func:`apply` is idempotent and
is called once by ``import nlnet``.

1. ``mmaction2==1.2.0``'s wheel and sdist lack ``mmaction/models/localizers/drn/``
   while ``mmaction/models/localizers/__init__.py`` imports it, so
   ``import mmaction.models`` fails with ``ModuleNotFoundError: No module named
   'mmaction.models.localizers.drn'``. When the package is really missing we
   register a placeholder module whose ``DRN`` raises on use, naming the cause.

2. ``mmengine==0.10.7`` loads checkpoints with a bare ``torch.load``; torch >= 2.6
   defaults to ``weights_only=True`` and refuses mmengine's own checkpoints
   (``UnpicklingError: Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``),
   so ``--resume`` fails. We replace mmengine's local-file loader with one that keeps
   ``weights_only=True`` and allows exactly the globals mmengine checkpoints hold
   (:data:`MMENGINE_CHECKPOINT_GLOBALS`). Anything else is refused with
   :class:`UnsafeCheckpointError`, naming the file and the global.
"""
import _compat_pickle
import collections
import importlib.util
import os.path as osp
import pickle
import re
import sys
import types
import zipfile

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['apply', 'load_local_checkpoint', 'UnsafeCheckpointError', 'CorruptCheckpointError']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a Python global outside the allow-list."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated or not a torch checkpoint."""


# ----------------------------------------------------------------------------- mmaction2 drn


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


# ----------------------------------------------------------------------------- checkpoints


_BUILTIN_STATISTICS = {'min', 'max', 'current', 'mean'}


def _history_buffer_statistic(owner, name):
    """Replaces ``builtins.getattr`` while unpickling.

    Pickle stores ``HistoryBuffer._statistics_methods`` (``{'mean':
    HistoryBuffer.mean, ...}``) as ``getattr(HistoryBuffer, 'mean')``. A general
    ``getattr`` would let a crafted file reach arbitrary attributes, so only the
    registered statistics of ``HistoryBuffer`` are served.
    """
    allowed = _BUILTIN_STATISTICS | set(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise UnsafeCheckpointError(
        f'it calls getattr({owner!r}, {name!r}); only the statistics methods of mmengine '
        f'HistoryBuffer {sorted(allowed)} may be looked up')


def _numpy_core():
    return np._core if hasattr(np, '_core') else np.core


# Exactly what mmengine's CheckpointHook writes besides tensors: the message hub's
# HistoryBuffers (numpy arrays inside), numpy scalars in runtime info, and
# ``collections.Counter`` milestones of MultiStep schedulers. numpy < 2 names its
# core module ``numpy.core``: both spellings map to the same functions.
MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    (_history_buffer_statistic, 'builtins.getattr'),
    (_numpy_core().multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (_numpy_core().multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (_numpy_core().multiarray.scalar, 'numpy._core.multiarray.scalar'),
    (_numpy_core().multiarray.scalar, 'numpy.core.multiarray.scalar'),
    np.ndarray,
    np.dtype,
    # numpy >= 2 pickles dtypes of numeric arrays and scalars by their class.
    *{type(np.dtype(code)) for code in np.typecodes['All'] if code not in 'OUVSMma'},
    collections.Counter,
]

_GLOBAL_IN_MESSAGE = re.compile(r'GLOBAL (\S+)|unrecognized function (\S+)|got (<[^>]+>)')
_REFUSED_GETATTR = re.compile(r'it calls getattr\(.*?may be looked up')


def _python3_global(path):
    """The Python 3 name of a global as torch's refusal prints it.

    torch saves with pickle protocol 2, which writes Python 2 module names
    (``subprocess.Popen`` is stored as ``commands.Popen``, ``eval`` as
    ``__builtin__.eval``), and torch's message drops the ``builtins.`` prefix.
    """
    module, _, name = path.rpartition('.')
    if not module:
        return f'builtins.{name}'
    module, name = _compat_pickle.NAME_MAPPING.get(
        (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
    return f'{module}.{name}'


def load_local_checkpoint(filename, map_location=None):
    """``torch.load`` a local checkpoint with ``weights_only=True`` and nlnet's allow-list.

    An official Caffe2 pickle (facebookresearch/video-nonlocal-net), recognised by its
    content, is converted on the fly by :func:`nlnet.converters.official_checkpoint`.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file holds a global outside
            :data:`MMENGINE_CHECKPOINT_GLOBALS`; nothing of it is executed.
        CorruptCheckpointError: the file is truncated or not a checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    from .converters import official_checkpoint  # here: nlnet.converters imports this module
    official = official_checkpoint(filename)
    if official is not None:
        return official
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused_getattr = _REFUSED_GETATTR.search(str(error))
        if refused_getattr:
            raise UnsafeCheckpointError(
                f'refusing to load checkpoint {filename}: {refused_getattr.group(0)}') from None
        match = _GLOBAL_IN_MESSAGE.search(str(error))
        if match is None:
            raise CorruptCheckpointError(
                f'checkpoint {filename} is corrupt or not a torch checkpoint: {error}') from error
        global_path, function, instance = match.groups()
        culprit = _python3_global(global_path) if global_path else function or instance
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename}: it holds the Python global {culprit}, which '
            'is not among the globals mmengine checkpoints contain (nlnet.compat.'
            'MMENGINE_CHECKPOINT_GLOBALS). Unpickling an arbitrary global can run code, so it is '
            'loaded with torch.load(weights_only=True). If you trust the file, load it yourself '
            'with weights_only=False and save its state_dict.') from None
    except (EOFError, RuntimeError, zipfile.BadZipFile) as error:
        raise CorruptCheckpointError(
            f'checkpoint {filename} is truncated or corrupt ({type(error).__name__}: {error}); '
            'save or download it again.') from error


_applied = False


def apply():
    """Apply every fix once (idempotent)."""
    global _applied
    if _applied:
        return
    _register_missing_drn()
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)
    _applied = True
