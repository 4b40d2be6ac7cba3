"""Pickles as Python 2 with numpy 1.x wrote them: the official Caffe2 checkpoints' format.

Python 3 pickles numpy arrays of protocols < 3 through ``_codecs.encode`` (bytes did not
exist in Python 2); Python 2 wrote the raw data as a ``str``, read back with
``encoding='latin1'``. The official training code wrote protocol 2, the
``process_data/convert_models`` scripts Python 2's default protocol 0.
"""
import io
import pickle

import numpy as np

# Python 2's protocols: its default 0 (the conversion scripts' files), binary 1 and 2.
PROTOCOLS = (0, 1, 2)


class _Python2Pickler(pickle.Pickler):
    """Pickles numpy arrays as numpy 1.x under Python 2 did: ``numpy.core.multiarray.
    _reconstruct`` and ``numpy.dtype`` globals, raw data as a (latin1) str."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            constructor, (subtype, shape, _), state = obj.__reduce__()
            version, shape_, dtype, fortran, raw = state
            return constructor, (subtype, shape, 'b'), (version, shape_, dtype, fortran,
                                                         raw.decode('latin1'))
        if isinstance(obj, np.dtype):
            _, args, state = obj.__reduce__()
            return np.dtype, args, state
        return NotImplemented


def python2_pickle_bytes(obj, protocol=2):
    """``obj`` pickled as Python 2's ``pickle.dumps(obj, protocol)`` with numpy 1.x did."""
    if protocol not in PROTOCOLS:
        raise ValueError(f'Python 2 pickles have protocol {PROTOCOLS}, got {protocol}')
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=protocol).dump(obj)
    return buffer.getvalue().replace(b'cnumpy._core.multiarray\n', b'cnumpy.core.multiarray\n')


def write_python2_pickle(path, obj, protocol=2):
    """Write ``obj`` as the official code's ``pickle.dump(obj, f, protocol)`` did."""
    with open(path, 'wb') as file:
        file.write(python2_pickle_bytes(obj, protocol))
    return str(path)
