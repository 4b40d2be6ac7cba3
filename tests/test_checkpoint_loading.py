"""nlnet's reader of local checkpoints: mmengine's globals only, refusals naming file and global."""
import collections
import re

import numpy as np
import pytest
import torch
from helpers.hostile_pickles import (ATTACKS, eventually, make_target, save_hostile_checkpoint,
                                     untouched)
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

from nlnet.checkpoint_errors import CorruptCheckpointError, UnsafeCheckpointError
from nlnet.checkpoint_loading import (MMENGINE_CHECKPOINT_GLOBALS, _history_buffer_statistic,
                                      load_local_checkpoint)


@pytest.fixture
def target(tmp_path):
    return make_target(tmp_path / 'target')


@pytest.mark.parametrize('attack', list(ATTACKS))
def test_hostile_payload_runs_under_an_unrestricted_unpickler(attack, tmp_path, target):
    """Each payload is live, so the refusals below guard against real code execution."""
    path = save_hostile_checkpoint(tmp_path / 'hostile.pth', attack, target)
    torch.load(path, weights_only=False)
    assert eventually(lambda: not untouched(target)), f'the {attack} payload did nothing'


@pytest.mark.parametrize('attack', list(ATTACKS))
def test_hostile_checkpoint_is_refused_naming_the_global_and_the_file(attack, tmp_path, target):
    path = save_hostile_checkpoint(tmp_path / 'hostile.pth', attack, target)
    expected = f'refusing to load checkpoint {path}: .*{re.escape(ATTACKS[attack].refusal)}'
    with pytest.raises(UnsafeCheckpointError, match=expected):
        load_local_checkpoint(path)
    # What mmengine's Runner and the tools call for a local file.
    with pytest.raises(UnsafeCheckpointError, match=expected):
        _load_checkpoint(path)
    assert untouched(target)


def _allow_list():
    """(name torch looks the global up by, object) of each allow-list entry."""
    for entry in MMENGINE_CHECKPOINT_GLOBALS:
        if isinstance(entry, tuple):
            yield entry[1], entry[0]
        else:
            yield f'{entry.__module__}.{entry.__qualname__}', entry


# numpy >= 2 pickles the dtype of numeric arrays and scalars by its class. Object,
# string, void and datetime dtypes stay out: they are not in mmengine's checkpoints.
NUMERIC_DTYPE_CLASSES = (
    'BoolDType', 'Int8DType', 'UInt8DType', 'Int16DType', 'UInt16DType', 'Int32DType',
    'UInt32DType', 'Int64DType', 'UInt64DType', 'LongLongDType', 'ULongLongDType',
    'Float16DType', 'Float32DType', 'Float64DType', 'LongDoubleDType', 'Complex64DType',
    'Complex128DType', 'CLongDoubleDType')


def test_allow_list_holds_only_the_reviewed_globals():
    """A new entry fails here until it is reviewed (can unpickling it run code?) and added."""
    multiarray = (np._core if hasattr(np, '_core') else np.core).multiarray
    reviewed = {
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        # pickle stores HistoryBuffer's statistics as getattr(HistoryBuffer, 'mean'):
        # served by nlnet's restricted getattr, never builtins.getattr.
        'builtins.getattr': _history_buffer_statistic,
        'numpy._core.multiarray._reconstruct': multiarray._reconstruct,
        'numpy.core.multiarray._reconstruct': multiarray._reconstruct,
        'numpy._core.multiarray.scalar': multiarray.scalar,
        'numpy.core.multiarray.scalar': multiarray.scalar,
        'numpy.ndarray': np.ndarray,
        'numpy.dtype': np.dtype,
        'collections.Counter': collections.Counter,
        **{f'numpy.dtypes.{name}': getattr(np.dtypes, name) for name in NUMERIC_DTYPE_CLASSES},
    }
    for name, value in _allow_list():
        assert name in reviewed, f'unreviewed global {name} in MMENGINE_CHECKPOINT_GLOBALS'
        assert value is reviewed[name], f'{name} is allowed as {value!r}, not {reviewed[name]!r}'


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'model.pth'
    torch.save(dict(state_dict={'w': torch.arange(1000.0)}), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptCheckpointError, match=r'model\.pth.*truncated'):
        _load_checkpoint(str(path))
