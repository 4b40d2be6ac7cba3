"""Official pickles are read as Python 2 wrote them, and nothing else in them runs."""
import os
import pickle

import numpy as np
import pytest
import torch
from helpers.python2_pickles import PROTOCOLS, write_python2_pickle

from nlnet.converters import (UnsafeCaffe2PickleError, load_caffe2_blobs,
                              read_caffe2_blobs_if_official)


class _RemovesFile:
    """Unpickling this calls os.remove(path): what a malicious checkpoint could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.remove, (self.path, )


@pytest.mark.parametrize('protocol', PROTOCOLS)
def test_python2_pickle_of_numpy_blobs_round_trips(tmp_path, protocol):
    blobs = {'conv1_w': np.arange(24, dtype=np.float32).reshape(2, 3, 1, 2, 2),
             'pred_b': np.array([0.5, -1.5], np.float32), 'model_iter': 10,
             'lr': np.array([0.01], np.float32)}
    path = str(tmp_path / 'model.pkl')
    write_python2_pickle(path, dict(blobs=blobs), protocol)
    assert b'cnumpy.core.multiarray\n_reconstruct' in open(path, 'rb').read()
    for read in (load_caffe2_blobs, read_caffe2_blobs_if_official):
        loaded = read(path)
        assert loaded.keys() == blobs.keys() and loaded['model_iter'] == 10
        for name in ('conv1_w', 'pred_b', 'lr'):
            assert loaded[name].dtype == np.float32 and np.array_equal(loaded[name], blobs[name])


# What Python 2.7's cPickle.dump(obj, f) writes (its default protocol 0, numpy 1.x) for
# dict(blobs=dict(conv1_w=np.array([1, 2], 'f4')), model_iter=400000): text opcodes, the
# array's bytes as an escaped str. The official convert_models scripts write this format.
PYTHON2_PROTOCOL_0 = (
    b"(dp1\nS'blobs'\np2\n(dp3\nS'conv1_w'\np4\ncnumpy.core.multiarray\n_reconstruct\np5\n"
    b"(cnumpy\nndarray\np6\n(I0\ntp7\nS'b'\np8\ntp9\nRp10\n(I1\n(I2\ntp11\ncnumpy\ndtype\n"
    b"p12\n(S'f4'\np13\nI0\nI1\ntp14\nRp15\n(I3\nS'<'\np16\nNNNI-1\nI-1\nI0\ntp17\nbI00\n"
    b"S'\\x00\\x00\\x80?\\x00\\x00\\x00@'\np18\ntp19\nbssS'model_iter'\np20\nI400000\ns.")


def test_python2_protocol_0_file_is_recognised(tmp_path):
    path = tmp_path / 'affine_model_400k.pkl'
    path.write_bytes(PYTHON2_PROTOCOL_0)
    blobs = read_caffe2_blobs_if_official(str(path))
    assert list(blobs) == ['conv1_w']
    assert blobs['conv1_w'].dtype == np.float32 and blobs['conv1_w'].tolist() == [1, 2]


def test_unwrapped_blob_dict_is_read(tmp_path):
    """modify_caffe2_ftvideo.py / modify_blob_rm.py pickle the blob dict itself."""
    path = str(tmp_path / 'affine_model_400k.pkl')
    write_python2_pickle(path, {'conv1_w': np.ones((2, 3, 1, 1, 1), np.float32), 'lr': 0.00125})
    assert list(load_caffe2_blobs(path)) == ['conv1_w', 'lr']


def test_other_globals_are_refused_by_name_and_not_run(tmp_path):
    victim = tmp_path / 'victim.txt'
    victim.write_text('still here')
    path = str(tmp_path / 'evil.pkl')
    with open(path, 'wb') as file:
        pickle.dump(dict(blobs={'conv1_w': _RemovesFile(str(victim))}), file, protocol=2)
    for read in (load_caffe2_blobs, read_caffe2_blobs_if_official):
        with pytest.raises(UnsafeCaffe2PickleError,
                           match=rf'{path}.*global (posix|os|nt)\.remove'):
            read(path)
    assert victim.read_text() == 'still here'


def test_only_official_checkpoints_are_recognised(tmp_path):
    official = str(tmp_path / 'official.pkl')
    write_python2_pickle(official, dict(blobs={'conv1_w': np.zeros((1, 3, 1, 1, 1), np.float32)}))
    assert list(read_caffe2_blobs_if_official(official)) == ['conv1_w']
    converted = str(tmp_path / 'converted.pth')
    torch.save(dict(state_dict={'w': torch.zeros(1)}), converted)
    assert read_caffe2_blobs_if_official(converted) is None
    other = str(tmp_path / 'other.pkl')
    with open(other, 'wb') as file:
        pickle.dump({'results': [1, 2]}, file, protocol=2)
    assert read_caffe2_blobs_if_official(other) is None


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.pkl'):
        load_caffe2_blobs(str(tmp_path / 'missing.pkl'))
    path = str(tmp_path / 'truncated.pkl')
    write_python2_pickle(path, dict(blobs={'conv1_w': np.ones(1000, np.float32)}))
    data = open(path, 'rb').read()
    open(path, 'wb').write(data[:len(data) // 2])
    with pytest.raises(ValueError, match=f'{path} is not a readable Caffe2 pickle'):
        load_caffe2_blobs(path)
    with open(path, 'wb') as file:
        pickle.dump([1, 2], file, protocol=2)
    with pytest.raises(ValueError, match='holds a list, not a dict of blobs'):
        load_caffe2_blobs(path)
