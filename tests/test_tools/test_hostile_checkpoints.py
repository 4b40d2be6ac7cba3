"""tools/test.py and tools/train.py --resume refuse a checkpoint whose pickle runs code.

Each tool on a checkpoint with a live payload (tests/helpers/hostile_pickles.py):
the tool exits with the refusal naming the file and the global, and the payload's
target folder is left as it was; tools/test.py as a real subprocess, tools/train.py
through its __main__ helper in this process. The
refusal of every payload kind in torch checkpoints is tested in-process in
tests/test_checkpoint_loading.py; here, in-process too, every payload kind in a
pickle of the official Caffe2 layout, in each pickle protocol official files use
(the one-step loader reads those pickles itself), tools/test.py on one of them, and
torch checkpoints saved with the older pickle protocols 0 and 1.
"""
import pickle
import re
import sys
from types import SimpleNamespace

import pytest
import torch
from helpers.hostile_pickles import (ATTACKS, eventually, make_target, save_hostile_checkpoint,
                                     save_hostile_official_pickle, untouched)
from helpers.python2_pickles import PROTOCOLS
from helpers.tool_modules import load_tool
from helpers.video_tools import make_video_data, python_tool, run_tool, write_config
from mmengine.runner.checkpoint import _load_checkpoint

from nlnet.checkpoint_errors import CorruptCheckpointError, UnsafeCheckpointError
from nlnet.checkpoint_loading import load_local_checkpoint
from nlnet.engine import run_tool_main


@pytest.fixture(scope='module')
def config(tmp_path_factory):
    root = tmp_path_factory.mktemp('hostile')
    data = make_video_data(root / 'demo', num_train=2, num_val=1)
    return write_config(root / 'nl_c2d_hostile.py', data)


def assert_refused(run, tool, path, attack):
    assert run.returncode == 2, run.stderr
    assert f'{tool}: error: ' in run.stderr
    message = run.stderr[run.stderr.index(f'{tool}: error: '):]
    assert f'refusing to load checkpoint {path}: ' in message
    assert ATTACKS[attack].refusal in message


def test_test_tool_refuses_a_code_running_checkpoint(config, tmp_path):
    target = make_target(tmp_path / 'target')
    path = save_hostile_checkpoint(tmp_path / 'hostile.pth', 'builtins.eval', target)
    run = run_tool(python_tool('test.py', config, path, '--work-dir', tmp_path / 'work'),
                   tmp_path, 'test')
    assert_refused(run, 'test.py', path, 'builtins.eval')
    assert 'Epoch(test)' not in run.stdout
    assert untouched(target)


def test_train_tool_refuses_to_resume_from_a_code_running_checkpoint(config, tmp_path,
                                                                    monkeypatch, capsys):
    """tools/train.py's __main__ (run_tool_main over its main) in this process."""
    target = make_target(tmp_path / 'target')
    path = save_hostile_checkpoint(tmp_path / 'iter_2.pth', 'builtins.exec', target)
    work_dir = tmp_path / 'work'
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', config, '--work-dir', str(work_dir),
                                      '--resume', path])
    with pytest.raises(SystemExit) as end:
        run_tool_main(load_tool('train.py').main)
    out, err = capsys.readouterr()
    assert_refused(SimpleNamespace(returncode=end.value.code, stdout=out, stderr=err),
                   'train.py', path, 'builtins.exec')
    assert 'Epoch(train)' not in out
    assert list(work_dir.glob('*.pth')) == []
    assert untouched(target)


@pytest.mark.parametrize('protocol', PROTOCOLS)
@pytest.mark.parametrize('attack', list(ATTACKS))
def test_official_layout_pickle_with_a_payload_is_refused(attack, protocol, tmp_path):
    target = make_target(tmp_path / 'target')
    path = save_hostile_official_pickle(tmp_path / 'model.pkl', attack, target, protocol)
    expected = (f'refusing to load checkpoint {path}: it names the Python global '
                f'{ATTACKS[attack].first_global};')
    for load in (load_local_checkpoint, _load_checkpoint):  # the latter: what mmengine calls
        with pytest.raises(UnsafeCheckpointError) as refusal:
            load(path)
        assert expected in str(refusal.value)
    assert untouched(target)
    # The payload is live: a plain unpickler runs it.
    with open(path, 'rb') as handle:
        pickle.load(handle)
    assert eventually(lambda: not untouched(target)), f'the {attack} payload did nothing'


@pytest.mark.parametrize('protocol', [0, 1])
@pytest.mark.parametrize('attack', list(ATTACKS))
def test_torch_checkpoint_of_an_older_protocol_with_a_payload_is_refused(
        attack, protocol, tmp_path):
    """torch.save(pickle_protocol=0 or 1): torch's weights-only unpickler, which reads the
    zip's data.pkl, stops at the first opcode those protocols add (before any global), so
    the file is refused as unreadable, as an intact checkpoint of those protocols is."""
    target = make_target(tmp_path / 'target')
    path = save_hostile_checkpoint(tmp_path / 'hostile.pth', attack, target, protocol)
    with pytest.raises(CorruptCheckpointError, match=re.escape(path)) as refusal:
        _load_checkpoint(path)
    assert 'Unsupported operand' in str(refusal.value)
    assert untouched(target)
    if attack == 'builtins.eval':
        intact = tmp_path / 'intact.pth'
        torch.save(dict(state_dict={'weight': torch.zeros(2)}), intact, pickle_protocol=protocol)
        with pytest.raises(CorruptCheckpointError, match='Unsupported operand'):
            _load_checkpoint(str(intact))


def test_test_tool_refuses_an_official_layout_pickle_with_a_payload(
        config, tmp_path, monkeypatch, capsys):
    """Protocol 0, as the official conversion scripts write; the loader mmengine calls is
    the same for every protocol (above)."""
    target = make_target(tmp_path / 'target')
    path = save_hostile_official_pickle(tmp_path / 'model.pkl', 'builtins.eval', target, 0)
    monkeypatch.setattr(sys, 'argv', ['tools/test.py', config, path,
                                      '--work-dir', str(tmp_path / 'work')])
    with pytest.raises(SystemExit) as end:
        run_tool_main(load_tool('test.py').main)
    assert end.value.code == 2
    captured = capsys.readouterr()
    assert (f'test.py: error: checkpoint: cannot load checkpoint {path!r}: refusing to load '
            f'checkpoint {path}: it names the Python global builtins.eval') in captured.err
    assert 'Epoch(test)' not in captured.out
    assert untouched(target)
