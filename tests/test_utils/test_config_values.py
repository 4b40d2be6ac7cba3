"""tools/train.py refuses a bad config file, value or work dir before building anything:
one ``train.py: error:`` line naming the file and line, or the key, the value and what
is allowed, and exit status 2 (the tool's main, in process)."""
import sys

import pytest
from helpers.tool_modules import load_tool
from helpers.video_tools import DEMO_CONFIG

from nlnet.engine import run_tool_main
from nlnet.utils.config_values import config_value_problems, load_config

BAD_VALUES = {
    'optim_wrapper.optimizer.lr=abc':
        "optim_wrapper.optimizer.lr='abc': must be a finite number > 0",
    'optim_wrapper.optimizer.lr=-0.1':
        'optim_wrapper.optimizer.lr=-0.1: must be a finite number > 0',
    'optim_wrapper.optimizer.momentum=1.5':
        'optim_wrapper.optimizer.momentum=1.5: must be a number in [0, 1)',
    'optim_wrapper.optimizer.weight_decay=-1e-4':
        'optim_wrapper.optimizer.weight_decay=-0.0001: must be a finite number >= 0',
    'train_dataloader.batch_size=0': 'train_dataloader.batch_size=0: must be an integer >= 1',
    'val_dataloader.batch_size=2.5': 'val_dataloader.batch_size=2.5: must be an integer >= 1',
    'train_dataloader.num_workers=-2':
        'train_dataloader.num_workers=-2: must be an integer >= 0',
    'train_cfg.max_epochs=0': 'train_cfg.max_epochs=0: must be an integer >= 1',
    'default_hooks.checkpoint.interval=0':
        'default_hooks.checkpoint.interval=0: must be an integer >= 1, or -1 (no checkpoints)',
    'train_dataloader.dataset.pipeline.1.clip_len=0':
        'train_dataloader.dataset.pipeline[1].clip_len=0: must be an integer >= 1 '
        '(SampleFrames.clip_len)',
}


def run_train(monkeypatch, capsys, *args):
    """(exit status, the stderr lines) of tools/train.py's main with ``args``."""
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', *map(str, args)])
    with pytest.raises(SystemExit) as end:
        run_tool_main(load_tool('train.py').main)
    return end.value.code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize('option', BAD_VALUES)
def test_bad_value_is_one_error_line_naming_key_value_and_allowed(
        option, monkeypatch, capsys, tmp_path):
    work_dir = tmp_path / 'work'
    status, lines = run_train(monkeypatch, capsys, DEMO_CONFIG, '--work-dir', work_dir,
                              '--cfg-options', option)
    assert (status, lines) == (2, [f'train.py: error: {BAD_VALUES[option]}'])
    assert not work_dir.exists()  # refused before anything was made


def test_work_dir_that_cannot_be_created(monkeypatch, capsys, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a folder')
    status, lines = run_train(monkeypatch, capsys, DEMO_CONFIG, '--work-dir', blocker / 'work')
    assert (status, lines) == (2, [f"train.py: error: --work-dir '{blocker / 'work'}' cannot be "
                                   'created: Not a directory'])


def test_missing_config_file(monkeypatch, capsys, tmp_path):
    missing = tmp_path / 'nowhere.py'
    status, lines = run_train(monkeypatch, capsys, missing)
    assert (status, lines) == (2, [f"train.py: error: config file '{missing}' does not exist"])


def test_syntax_error_names_the_file_and_line_also_in_a_base_file(monkeypatch, capsys, tmp_path):
    broken = tmp_path / 'broken_base.py'
    broken.write_text("model = dict(\n    type='Recognizer3D',\n    backbone=dict(depth=50\n"
                      "train_cfg = dict(max_epochs=3)\n")
    config = tmp_path / 'child.py'
    config.write_text("_base_ = ['./broken_base.py']\nlr = 0.1\n")
    for path in (broken, config):
        status, lines = run_train(monkeypatch, capsys, path)
        assert status == 2 and len(lines) == 1
        assert lines[0].startswith(f'train.py: error: config file {broken}, line 3: ')
        assert "'(' was never closed" in lines[0]


def test_every_shipped_demo_config_value_is_allowed():
    assert config_value_problems(load_config(DEMO_CONFIG)) == []
