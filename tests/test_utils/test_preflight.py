"""Training and testing stop before any work on bad paths, keys and checkpoints.

Each case runs :func:`nlnet.engine.run_training` (what ``tools/train.py`` calls
once the command line is merged) on a tiny generated dataset and expects a
:class:`PreflightError` naming the offending path or config key, with no
training step and no checkpoint written. The command-line form of the error
(``test.py: error: ...``, exit code 2) is checked on tools/test.py's ``main``.
"""
import sys

import pytest
import torch
from helpers.tool_modules import load_tool
from helpers.video_tools import make_video_data, write_config
from mmengine.config import Config
from mmengine.registry import DefaultScope

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import MODELS
from nlnet.engine import run_tool_main, run_training
from nlnet.utils import PreflightError, check_config_keys
from nlnet.utils.preflight import accepted_keys

DEFAULT_SCOPE = 'mmaction'


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


def missing(tmp_path):
    return str(tmp_path / 'not_there')


# case: (--cfg-options given the tmp dir and checkpoints, substrings the error must hold)
CASES = {
    'data root': (lambda tmp, ckpt: {'train_dataloader.dataset.data_root': missing(tmp)},
                  lambda tmp, ckpt: ['train_dataloader.dataset.data_root', missing(tmp)]),
    'video folder': (
        lambda tmp, ckpt: {'val_dataloader.dataset.data_prefix.video': missing(tmp)},
        lambda tmp, ckpt: ['val_dataloader.dataset.data_prefix.video', missing(tmp)]),
    'annotation file': (
        lambda tmp, ckpt: {'train_dataloader.dataset.ann_file': missing(tmp) + '.txt'},
        lambda tmp, ckpt: ['train_dataloader.dataset.ann_file', missing(tmp) + '.txt']),
    'key typo': (lambda tmp, ckpt: {'model.backbone.dephth': 18},
                 lambda tmp, ckpt: ['model.backbone.dephth', "did you mean 'depth'"]),
    'unregistered type': (
        lambda tmp, ckpt: {'train_dataloader.dataset.pipeline.1.type': 'SampleFrame'},
        lambda tmp, ckpt: ['train_dataloader.dataset.pipeline[1].type', "'SampleFrame'",
                           "did you mean 'SampleFrames'"]),
    'checkpoint of another model': (
        lambda tmp, ckpt: {'load_from': ckpt['c2d']},
        lambda tmp, ckpt: ['load_from', ckpt['c2d'], 'missing keys', 'non_local_block']),
    'truncated checkpoint to resume from': (
        lambda tmp, ckpt: {'resume': True, 'load_from': ckpt['truncated']},
        lambda tmp, ckpt: [f"--resume: cannot load checkpoint '{ckpt['truncated']}'"]),
}


@pytest.mark.parametrize('case', list(CASES))
def test_training_fails_before_training_naming_the_culprit(case, setup, tmp_path, capsys):
    config, checkpoints = setup
    options, expected = CASES[case]
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.merge_from_dict(options(tmp_path, checkpoints))
    with pytest.raises(PreflightError) as error:
        run_training(cfg)
    for text in expected(tmp_path, checkpoints):
        assert text in str(error.value)
    assert 'Epoch(train)' not in capsys.readouterr().out
    assert list((tmp_path / 'work').glob('**/*.pth')) == []


def test_accepted_keys_follow_the_signature():
    class Explicit(torch.nn.Module):
        def __init__(self, depth, width=1):
            super().__init__()

    class Forwarding(Explicit):
        def __init__(self, extra=0, **kwargs):
            super().__init__(**kwargs)

    assert accepted_keys(Explicit) == {'depth', 'width'}
    # **kwargs may take any key: the signature cannot tell, so nothing is reported.
    assert accepted_keys(Forwarding) is None


def test_every_demo_config_passes_the_key_check(setup):
    config, _ = setup
    check_config_keys(Config.fromfile(config))


def test_test_tool_rejects_truncated_checkpoint_before_testing(setup, tmp_path, monkeypatch,
                                                                 capsys):
    config, checkpoints = setup
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', ['tools/test.py', config, checkpoints['truncated'],
                                      '--work-dir', str(tmp_path / 'work')])
    with pytest.raises(SystemExit) as end:
        run_tool_main(load_tool('test.py').main)
    assert end.value.code == 2
    captured = capsys.readouterr()
    assert f"test.py: error: checkpoint: cannot load checkpoint '{checkpoints['truncated']}'" \
        in captured.err
    assert 'Epoch(test)' not in captured.out
