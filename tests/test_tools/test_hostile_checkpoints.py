"""tools/test.py and tools/train.py --resume refuse a checkpoint whose pickle runs code.

One real subprocess per tool, each on a checkpoint with a live payload
(tests/helpers/hostile_pickles.py): the tool exits with the refusal naming the
file and the global, and the payload's target folder is left as it was. The
refusal of every payload kind is tested in-process in tests/test_checkpoint_loading.py.
"""
import pytest
from helpers.hostile_pickles import ATTACKS, make_target, save_hostile_checkpoint, untouched
from helpers.video_tools import make_video_data, python_tool, run_tool, write_config


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


def test_train_tool_refuses_to_resume_from_a_code_running_checkpoint(config, tmp_path):
    target = make_target(tmp_path / 'target')
    path = save_hostile_checkpoint(tmp_path / 'iter_2.pth', 'builtins.exec', target)
    work_dir = tmp_path / 'work'
    run = run_tool(python_tool('train.py', config, '--work-dir', work_dir, '--resume', path),
                   tmp_path, 'train')
    assert_refused(run, 'train.py', path, 'builtins.exec')
    assert 'Epoch(train)' not in run.stdout
    assert list(work_dir.glob('*.pth')) == []
    assert untouched(target)
