"""Official pickles are read as Python 2 wrote them, and nothing else in them runs."""
import os
import pickle

import numpy as np
import pytest
import torch
from official_caffe2 import write_python2_pickle

from nlnet.converters import (UnsafeCaffe2PickleError, load_caffe2_blobs,
                              read_caffe2_blobs_if_official)


class _RemovesFile:
    """Unpickling this calls os.remove(path): what a malicious checkpoint could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.remove, (self.path, )


def test_python2_pickle_of_numpy_blobs_round_trips(tmp_path):
    blobs = {'conv1_w': np.arange(24, dtype=np.float32).reshape(2, 3, 1, 2, 2),
             'pred_b': np.array([0.5, -1.5], np.float32), 'model_iter': 10,
             'lr': np.array([0.01], np.float32)}
    path = str(tmp_path / 'model.pkl')
    write_python2_pickle(path, dict(blobs=blobs))
    assert b'cnumpy.core.multiarray\n_reconstruct' in open(path, 'rb').read()
    loaded = load_caffe2_blobs(path)
    assert loaded.keys() == blobs.keys() and loaded['model_iter'] == 10
    for name in ('conv1_w', 'pred_b', 'lr'):
        assert loaded[name].dtype == np.float32 and np.array_equal(loaded[name], blobs[name])


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
