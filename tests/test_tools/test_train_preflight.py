"""tools/train.py and tools/test.py stop before any work on bad paths, keys and checkpoints.

Each case runs the tool's command-line entry point (its ``__main__`` block)
and expects exit code 2 with the offending path or config key on stderr and
no training step and no checkpoint written. The training cases run in this
process (the entry point is executed as ``python tools/train.py`` would);
the test.py case is a real subprocess.
"""
import os.path as osp
import runpy
import sys

import pytest
import torch
from helpers.video_tools import (ROOT, make_video_data, python_tool, run_tool,
                                 write_config)
from mmengine.config import Config
from mmengine.registry import DefaultScope

import nlnet  # noqa: F401
from mmaction.registry import MODELS

DEFAULT_SCOPE = 'mmaction'
TOOLS = osp.join(ROOT, 'tools')


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """(config path, {name: checkpoint path}) on a tiny generated dataset."""
    root = tmp_path_factory.mktemp('preflight')
    data = make_video_data(root / 'demo', num_train=2, num_val=1)
    config = write_config(root / 'nl_c2d_preflight.py', data)
    cfg = Config.fromfile(config)
    checkpoints = {}
    with DefaultScope.overwrite_default_scope('mmaction'):
        c2d_model = MODELS.build(dict(cfg.model, backbone=dict(cfg.model.backbone, non_local=None)))
        nl_c2d_model = MODELS.build(cfg.model)
    # A C2D checkpoint for the NL-C2D model: same backbone minus the non-local block.
    checkpoints['c2d'] = str(root / 'c2d.pth')
    torch.save(dict(state_dict=c2d_model.state_dict()), checkpoints['c2d'])
    full = root / 'nl_c2d.pth'
    torch.save(dict(state_dict=nl_c2d_model.state_dict()), full)
    content = full.read_bytes()
    checkpoints['truncated'] = str(root / 'truncated.pth')
    with open(checkpoints['truncated'], 'wb') as handle:
        handle.write(content[:len(content) // 2])
    return config, checkpoints


def run_entry_point(script, argv, monkeypatch, capsys):
    """Run ``python tools/<script> argv`` in this process; returns (exit code, stdout, stderr)."""
    monkeypatch.syspath_prepend(TOOLS)
    monkeypatch.setattr(sys, 'argv', [osp.join(TOOLS, script), *map(str, argv)])
    monkeypatch.setenv('LOCAL_RANK', '0')
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(osp.join(TOOLS, script), run_name='__main__')
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def missing(tmp_path):
    return str(tmp_path / 'not_there')


# case: (--cfg-options given the tmp dir and checkpoints, substrings the error must hold)
CASES = {
    'data root': (lambda tmp, ckpt: [f'train_dataloader.dataset.data_root={missing(tmp)}'],
                  lambda tmp, ckpt: ['train_dataloader.dataset.data_root', missing(tmp)]),
    'video folder': (
        lambda tmp, ckpt: [f'val_dataloader.dataset.data_prefix.video={missing(tmp)}'],
        lambda tmp, ckpt: ['val_dataloader.dataset.data_prefix.video', missing(tmp)]),
    'annotation file': (
        lambda tmp, ckpt: [f'train_dataloader.dataset.ann_file={missing(tmp)}.txt'],
        lambda tmp, ckpt: ['train_dataloader.dataset.ann_file', missing(tmp) + '.txt']),
    'key typo': (lambda tmp, ckpt: ['model.backbone.dephth=18'],
                 lambda tmp, ckpt: ['model.backbone.dephth', "did you mean 'depth'"]),
    'checkpoint of another model': (
        lambda tmp, ckpt: [f'load_from={ckpt["c2d"]}'],
        lambda tmp, ckpt: ['load_from', ckpt['c2d'], 'missing keys', 'non_local_block']),
}


@pytest.mark.parametrize('case', list(CASES))
def test_train_fails_before_training_naming_the_culprit(case, setup, tmp_path, monkeypatch,
                                                        capsys):
    config, checkpoints = setup
    options, expected = CASES[case]
    work_dir = tmp_path / 'work'
    code, out, err = run_entry_point(
        'train.py', [config, '--work-dir', work_dir, '--cfg-options',
                     *options(tmp_path, checkpoints)], monkeypatch, capsys)
    assert code == 2
    # mmengine's global loggers outlive a run in this process, so stderr may also hold
    # "Logging error" reports from handlers bound to earlier tests' captured streams.
    assert 'train.py: error: ' in err
    message = err[err.index('train.py: error: '):]
    for text in expected(tmp_path, checkpoints):
        assert text in message
    assert 'Epoch(train)' not in out
    assert list(work_dir.glob('*.pth')) == []


def test_resume_from_truncated_checkpoint_fails_before_training(setup, tmp_path, monkeypatch,
                                                                capsys):
    config, checkpoints = setup
    work_dir = tmp_path / 'work'
    code, out, err = run_entry_point(
        'train.py', [config, '--work-dir', work_dir, '--resume', checkpoints['truncated']],
        monkeypatch, capsys)
    assert code == 2
    assert f"--resume: cannot load checkpoint '{checkpoints['truncated']}'" in err
    assert 'Epoch(train)' not in out
    assert list(work_dir.glob('*.pth')) == []


def test_test_tool_rejects_truncated_checkpoint_before_testing(setup, tmp_path):
    config, checkpoints = setup
    run = run_tool(python_tool('test.py', config, checkpoints['truncated'],
                               '--work-dir', tmp_path / 'work'), tmp_path, 'test')
    assert run.returncode == 2
    assert f"test.py: error: checkpoint: cannot load checkpoint '{checkpoints['truncated']}'" \
        in run.stderr
    assert 'Epoch(test)' not in run.stdout
