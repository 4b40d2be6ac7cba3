"""DropCheckpointKeysHook on a real Runner: what it drops, when, and what it refuses."""
import pytest
import torch
from helpers.tiny_runner import tiny_runner
from helpers.video_tools import run_log

from nlnet.hooks import DropCheckpointKeysHook

HEAD = ('cls_head.fc_cls.weight', 'cls_head.fc_cls.bias')


def kinetics_like_checkpoint():
    """A checkpoint of the model with another head: 5 classes where the model has 3."""
    return dict(state_dict={'module.backbone.weight': torch.ones(2, 2),
                            'module.backbone.bias': torch.ones(2),
                            'module.cls_head.fc_cls.weight': torch.ones(5, 2),
                            'module.cls_head.fc_cls.bias': torch.ones(5)})


def test_fine_tuning_replaces_the_keys_under_the_prefixes_by_the_models_own(tmp_path):
    runner = tiny_runner(tmp_path, training=True, load_from='kinetics.pth')
    checkpoint = kinetics_like_checkpoint()
    DropCheckpointKeysHook(['cls_head.fc_cls.']).after_load_checkpoint(runner, checkpoint)

    state_dict = checkpoint['state_dict']
    own = runner.model.state_dict()
    assert set(state_dict) == {'module.backbone.weight', 'module.backbone.bias', *HEAD}
    for key in HEAD:
        assert torch.equal(state_dict[key], own[key])  # the model's initialisation, kept
    assert torch.equal(state_dict['module.backbone.weight'], torch.ones(2, 2))
    (line, ) = [line for line in run_log(tmp_path).splitlines() if 'dropped' in line]
    assert line.endswith("load_from kinetics.pth: dropped 2 checkpoint key(s) under "
                    "['cls_head.fc_cls.'] (module.cls_head.fc_cls.weight (5, 2), "
                    "module.cls_head.fc_cls.bias (5,)); the model's 2 weight(s) there keep "
                    'their initialisation')


@pytest.mark.parametrize('runner_kwargs', [
    dict(training=True, resume=True, load_from='iter_4.pth'),  # a resumed run: its own file
    dict(load_from='model.pth'),  # a test run: no training loop built
], ids=['resume', 'test run'])
def test_only_a_training_run_starting_from_load_from_drops(tmp_path, runner_kwargs):
    runner = tiny_runner(tmp_path, **runner_kwargs)
    checkpoint = kinetics_like_checkpoint()
    DropCheckpointKeysHook(['cls_head.fc_cls.']).after_load_checkpoint(runner, checkpoint)
    loaded = kinetics_like_checkpoint()['state_dict']
    assert checkpoint['state_dict'].keys() == loaded.keys()
    assert all(torch.equal(value, loaded[key]) for key, value in checkpoint['state_dict'].items())


def test_a_prefix_naming_no_weight_of_the_model_is_refused(tmp_path):
    runner = tiny_runner(tmp_path, training=True, load_from='kinetics.pth')
    with pytest.raises(ValueError, match=r"prefix\(es\) \['cls_head.fc_typo.'\] name no weight "
                                         'of TinyModel'):
        DropCheckpointKeysHook(['cls_head.fc_cls.', 'cls_head.fc_typo.']).after_load_checkpoint(
            runner, kinetics_like_checkpoint())


@pytest.mark.parametrize('prefixes', [[], 'cls_head.', ['cls_head.', '']])
def test_drop_hook_needs_a_list_of_prefixes(prefixes):
    with pytest.raises(ValueError, match='prefixes must be a non-empty list of non-empty strings'):
        DropCheckpointKeysHook(prefixes)
