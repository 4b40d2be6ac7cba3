"""The Charades configs: the paper's recipe (Sec. 5.2) on top of the Kinetics rows they load."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import MODELS

DEFAULT_SCOPE = 'mmaction'
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'recognition', 'charades')
CONFIGS = sorted(glob.glob(osp.join(CONFIG_DIR, '*.py')))
NAME = re.compile(r'(?P<model>[a-z0-9-]+)_r101-k400-128f-pre_8xb1-128x1x1-200k_charades-rgb\.py')


def test_both_table_4_rows_have_a_config_and_a_readme_line():
    names = [osp.basename(p) for p in CONFIGS]
    assert [NAME.fullmatch(n)['model'] for n in names] == ['i3d', 'nl-i3d']
    with open(osp.join(CONFIG_DIR, 'README.md')) as handle:
        readme = handle.read()
    assert set(re.findall(r'\]\(([\w.-]+\.py)\)', readme)) == set(names)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_follows_the_paper_recipe(path):
    model = NAME.fullmatch(osp.basename(path))['model']
    cfg = Config.fromfile(path)
    head = cfg.model.cls_head
    assert (head.type, head.num_classes, head.clip_combination) == ('MultiLabelI3DHead', 157, 'max')
    assert cfg.model.backbone.depth == 101 and cfg.model.backbone.norm_eval
    assert cfg.model.backbone.get('non_local') == ('5blocks' if model == 'nl-i3d' else None)
    # Fine-tuned from the 128-frame Kinetics row of the same model, head dropped.
    kinetics = f'{model}_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb'
    assert osp.isfile(osp.join(REPO, 'configs', 'recognition', model, f'{kinetics}.py'))
    assert cfg.load_from == f'work_dirs/{kinetics}/epoch_25.pth'
    assert dict(type='DropCheckpointKeysHook', prefixes=['cls_head.fc_cls.']) in cfg.custom_hooks
    # 8 GPUs x 1 clip, 200k iterations, lr 0.00125 divided by 10 every 75k.
    assert cfg.train_dataloader.batch_size == 1 and cfg.auto_scale_lr.base_batch_size == 8
    assert cfg.train_cfg.max_iters == 200000 and cfg.optim_wrapper.optimizer.lr == 0.00125
    assert cfg.param_scheduler[0].milestones == [75000, 150000]
    train = cfg.train_dataloader.dataset
    assert (train.type, train.clip_labels) == ('CharadesDataset', 'span')
    assert [t.type for t in train.pipeline][1:5] == ['SampleFrames', 'DecordDecode',
                                                      'RandomRescale', 'RandomCrop']
    assert train.pipeline[4].size == 288
    test = cfg.test_dataloader.dataset.pipeline
    assert test[1].num_clips == 10 and test[4] == dict(type='ThreeCrop', crop_size=320)
    assert cfg.test_evaluator.type == 'CharadesMAP'


def test_models_build_with_the_kinetics_rows_backbone_keys():
    """Same backbone as the Kinetics rows (checked at 4 base channels, which keeps every key)."""
    for path in CONFIGS:
        model = NAME.fullmatch(osp.basename(path))['model']
        kinetics = Config.fromfile(osp.join(
            REPO, 'configs', 'recognition', model,
            f'{model}_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py')).model
        charades = Config.fromfile(path).model
        keys = []
        for cfg in (kinetics, charades):
            cfg.backbone.base_channels = 4
            cfg.cls_head.in_channels = 128
            keys.append({k for k in MODELS.build(cfg).state_dict() if k.startswith('backbone.')})
        assert keys[0] == keys[1]
