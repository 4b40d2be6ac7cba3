"""CheckpointCheckHook on a real Runner: the loaded weights must fit the model."""
import pytest
import torch
from helpers.tiny_runner import tiny_runner

from nlnet.hooks import CheckpointCheckHook
from nlnet.utils import PreflightError


def fitting(runner):
    return dict(state_dict={f'module.{key}': value.clone()
                            for key, value in runner.model.state_dict().items()})


def test_weights_that_fit_pass_and_a_mismatch_stops_the_run_naming_file_and_keys(tmp_path):
    runner = tiny_runner(tmp_path)
    hook = CheckpointCheckHook('model.pth', 'load_from')
    hook.after_load_checkpoint(runner, fitting(runner))  # 'module.' prefixes as DDP saves them

    checkpoint = fitting(runner)
    checkpoint['state_dict']['module.cls_head.fc_cls.weight'] = torch.zeros(5, 2)
    del checkpoint['state_dict']['module.backbone.bias']
    with pytest.raises(PreflightError) as error:
        hook.after_load_checkpoint(runner, checkpoint)
    assert str(error.value).splitlines() == [
        "load_from: checkpoint 'model.pth' does not match the model TinyModel:",
        'size mismatch for cls_head.fc_cls.weight: checkpoint (5, 2), model (3, 2)',
        'missing keys in the checkpoint: backbone.bias']


def test_partial_loading_accepts_a_part_of_the_weights_but_no_wrong_shape(tmp_path):
    runner = tiny_runner(tmp_path)
    hook = CheckpointCheckHook('backbone.pth', 'load_from', strict=False)
    backbone = dict(state_dict={'backbone.weight': torch.zeros(2, 2)})
    hook.after_load_checkpoint(runner, backbone)
    backbone['state_dict']['backbone.bias'] = torch.zeros(3)
    with pytest.raises(PreflightError, match=r'size mismatch for backbone.bias: checkpoint '
                                             r'\(3,\), model \(2,\)'):
        hook.after_load_checkpoint(runner, backbone)
    with pytest.raises(PreflightError, match='no parameter name is shared'):
        hook.after_load_checkpoint(runner, dict(state_dict={'head.w': torch.zeros(1)}))
