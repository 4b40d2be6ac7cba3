"""Reading the official Caffe2 checkpoints (facebookresearch/video-nonlocal-net) safely.

The official code saves ``dict(blobs={name: ndarray, 'model_iter': int, 'lr': ndarray})``
with Python 2's ``cPickle``, in protocol 2 (the training code) or in Python 2's default
protocol 0 (the ``process_data/convert_models`` scripts, e.g. ``affine_model_400k.pkl``);
Python 3 reads such a file with ``encoding='latin1'``. Unpickling may call any global
the file names, so :class:`Caffe2Unpickler` resolves only the few that latin1 numpy
arrays need and refuses every other one by name.
"""
import _compat_pickle
import os.path as osp
import pickle
import zipfile

import numpy as np

from ..checkpoint_errors import UnsafeCheckpointError

__all__ = ['Caffe2Unpickler', 'UnsafeCaffe2PickleError', 'load_caffe2_blobs',
           'read_caffe2_blobs_if_official']

# numpy < 2 (which wrote the files) names its core module ``numpy.core``; numpy >= 2 keeps
# the same functions under ``numpy._core``.
_CORE = np._core if hasattr(np, '_core') else np.core
_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _CORE.multiarray._reconstruct,
    ('numpy._core.multiarray', '_reconstruct'): _CORE.multiarray._reconstruct,
    ('numpy.core.multiarray', 'scalar'): _CORE.multiarray.scalar,
    ('numpy._core.multiarray', 'scalar'): _CORE.multiarray.scalar,
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
}
# Blobs the official checkpoints hold besides weights: training state.
TRAINING_STATE_BLOBS = ('model_iter', 'lr')
# The first byte of a pickled dict in protocols 0-2: PROTO (2), MARK ('(dp0' of protocol 0),
# EMPTY_DICT (1). torch's zip checkpoints and any other file go to torch.load.
_DICT_PICKLE_STARTS = (pickle.PROTO, pickle.MARK, pickle.EMPTY_DICT)


class UnsafeCaffe2PickleError(UnsafeCheckpointError):
    """An official-looking pickle names a global other than numpy's array constructors
    (a :class:`~nlnet.checkpoint_errors.UnsafeCheckpointError`, as torch checkpoints that do)."""


class Caffe2Unpickler(pickle.Unpickler):
    """``pickle.Unpickler`` with ``encoding='latin1'`` that resolves only numpy arrays,
    dtypes and scalars (:data:`_ALLOWED_GLOBALS`)."""

    def __init__(self, file, source='pickle'):
        super().__init__(file, encoding='latin1')
        self.source = source

    def find_class(self, module, name):
        # Python 2 names (__builtin__.eval, commands.Popen) in their Python 3 spelling, as
        # pickle.Unpickler.find_class maps them; numpy's names are not among the mapped ones.
        module, name = _compat_pickle.NAME_MAPPING.get(
            (module, name), (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafeCaffe2PickleError(
                f'refusing to load {self.source}: it names the Python global {module}.{name}; '
                'an official Caffe2 checkpoint holds only numpy arrays (allowed: '
                f'{sorted(".".join(k) for k in _ALLOWED_GLOBALS)})') from None


def _blobs_of(obj, source):
    """The blob dict of an unpickled official checkpoint: ``obj['blobs']`` or ``obj``
    itself (the affine/fine-tuning pickles of the official scripts are not wrapped)."""
    if not isinstance(obj, dict):
        raise ValueError(f'{source} is not an official Caffe2 checkpoint: it holds a '
                         f'{type(obj).__name__}, not a dict of blobs')
    blobs = obj.get('blobs', obj)
    if not isinstance(blobs, dict) or not any(isinstance(v, np.ndarray) for v in blobs.values()):
        raise ValueError(f'{source} is not an official Caffe2 checkpoint: no numpy blobs '
                         f'(top-level keys: {sorted(map(str, obj))[:10]})')
    for name, value in blobs.items():
        if not isinstance(name, str):
            raise ValueError(f'{source}: blob name {name!r} is not a string')
        if name not in TRAINING_STATE_BLOBS and not isinstance(value, np.ndarray):
            raise ValueError(f'{source}: blob {name} is a {type(value).__name__}, not an array')
    return blobs


def load_caffe2_blobs(path):
    """The ``{name: ndarray}`` blobs of an official Caffe2 ``.pkl`` checkpoint.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCaffe2PickleError: the file names a global other than numpy's
            array constructors (nothing of it is executed).
        ValueError: the file is not a pickled dict of numpy blobs.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Caffe2 checkpoint {path} does not exist')
    with open(path, 'rb') as file:
        try:
            obj = Caffe2Unpickler(file, source=path).load()
        except UnsafeCaffe2PickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise ValueError(f'{path} is not a readable Caffe2 pickle '
                             f'({type(error).__name__}: {error})') from error
    return _blobs_of(obj, path)


def read_caffe2_blobs_if_official(path):
    """The blobs of ``path`` when it is an official Caffe2 checkpoint, else None.

    Decided by content, not by the file name: a pickle of protocol 0, 1 or 2 that
    holds a dict of numpy blobs. torch's zip checkpoints, files that do not start
    as a pickled dict of those protocols and pickles that are not a dict of numpy
    blobs (torch's legacy format starts with an integer) give None. A pickle
    naming a forbidden global still raises :class:`UnsafeCaffe2PickleError`.
    """
    if zipfile.is_zipfile(path):
        return None
    with open(path, 'rb') as file:
        if file.read(1) not in _DICT_PICKLE_STARTS:
            return None
        file.seek(0)
        try:
            obj = Caffe2Unpickler(file, source=f'checkpoint {path}').load()
        except UnsafeCaffe2PickleError:
            raise
        except Exception:  # not a pickle this reader understands: let torch.load decide
            return None
    try:
        return _blobs_of(obj, path)
    except ValueError:
        return None
