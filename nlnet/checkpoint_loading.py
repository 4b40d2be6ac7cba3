"""Reading a local checkpoint without running code from it.

torch >= 2.6 loads with ``weights_only=True`` by default and refuses mmengine's
own checkpoints (``UnpicklingError: Unsupported global:
mmengine.logging.history_buffer.HistoryBuffer``). :func:`load_local_checkpoint`
keeps ``weights_only=True`` and allows exactly the globals mmengine checkpoints
hold (:data:`MMENGINE_CHECKPOINT_GLOBALS`); anything else is refused with
:class:`~nlnet.checkpoint_errors.UnsafeCheckpointError`, naming the file and
the global. :func:`nlnet.compat.apply` installs it as mmengine's loader of
local files.
"""
import _compat_pickle
import collections
import os.path as osp
import pickle
import re
import zipfile

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from .checkpoint_errors import CorruptCheckpointError, UnsafeCheckpointError
from .converters.official import official_checkpoint

__all__ = ['load_local_checkpoint', 'MMENGINE_CHECKPOINT_GLOBALS']

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
            'is not among the globals mmengine checkpoints contain (nlnet.checkpoint_loading.'
            'MMENGINE_CHECKPOINT_GLOBALS). Unpickling an arbitrary global can run code, so it is '
            'loaded with torch.load(weights_only=True). If you trust the file, load it yourself '
            'with weights_only=False and save its state_dict.') from None
    except (EOFError, RuntimeError, zipfile.BadZipFile) as error:
        raise CorruptCheckpointError(
            f'checkpoint {filename} is truncated or corrupt ({type(error).__name__}: {error}); '
            'save or download it again.') from error
