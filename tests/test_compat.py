"""The stack fixes of nlnet.compat, on the real mm stack."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint
from torch.utils.data import Dataset

import nlnet
from nlnet.checkpoint_loading import load_local_checkpoint


def test_toolbox_models_import_after_nlnet_in_a_fresh_interpreter():
    code = ('import nlnet.openmmlab, mmaction.models, mmseg.models, mmdet.models\n'
            'from mmaction.registry import MODELS\n'
            "print(MODELS.get('Recognizer3D').__name__)")
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('Recognizer3D')


def test_missing_drn_localizer_fails_clearly_on_use():
    import mmaction.models.localizers as localizers
    if osp.isfile(osp.join(osp.dirname(localizers.__file__), 'drn', 'drn.py')):
        pytest.skip('this mmaction2 ships the DRN localizer')
    with pytest.raises(ImportError, match='localizers/drn'):
        localizers.DRN()


def _stock_config(package, relative_path):
    module = __import__(package)
    return Config.fromfile(osp.join(osp.dirname(module.__file__), '.mim', 'configs',
                                    relative_path))


@pytest.mark.parametrize('package, config, inputs', [
    ('mmaction', 'recognition/tsn/tsn_imagenet-pretrained-r50_8xb32-1x1x3-100e_kinetics400-rgb.py',
     torch.rand(1, 3, 3, 32, 32)),
    ('mmseg', 'nonlocal_net/nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py',
     torch.rand(1, 3, 32, 32)),
    ('mmdet', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', torch.rand(1, 3, 64, 64)),
])
def test_stock_config_builds_and_runs_forward(package, config, inputs):
    from mmengine.registry import init_default_scope
    cfg = _stock_config(package, config)
    init_default_scope(package)
    registry = __import__(f'{package}.registry', fromlist=['MODELS']).MODELS
    model_cfg = cfg.model
    model_cfg.pop('data_preprocessor', None)
    model_cfg.backbone.pop('pretrained', None)
    model_cfg.backbone.pop('init_cfg', None)
    model_cfg.pop('pretrained', None)
    model = registry.build(model_cfg).eval()
    with torch.no_grad():
        if package == 'mmdet':
            features = model.extract_feat(inputs)
            assert len(features) == 5 and features[0].shape[1] == 256
        elif package == 'mmseg':
            logits = model._forward(inputs)
            assert logits.shape[:2] == (1, 19)
        else:
            features = model.extract_feat(inputs)[0]
            assert features.shape[:2] == (3, 2048)
    assert all(torch.isfinite(p).all() for p in model.parameters())


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, targets, mode='loss'):
        return dict(loss=((self.linear(inputs) - targets)**2).mean())


class _Line(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(inputs=torch.tensor([index, 1.0]), targets=torch.tensor([2.0 * index]))


def _runner(work_dir, max_iters, resume=False):
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(dataset=_Line(), sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(type='MultiStepLR', milestones=[3], by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0),
        resume=resume)


def test_runner_resumes_from_its_checkpoint_with_weights_only_loading(tmp_path):
    assert torch.__version__ >= '2.6', 'the fix matters where weights_only is the default'
    _runner(tmp_path, max_iters=2).train()
    checkpoint = tmp_path / 'iter_2.pth'
    with pytest.raises(Exception, match='HistoryBuffer'):
        torch.load(checkpoint)  # what plain mmengine 0.10.7 does on torch >= 2.6

    resumed = _runner(tmp_path, max_iters=4, resume=True)
    resumed.train()
    assert resumed.iter == 4
    assert 'iter_4.pth' in os.listdir(tmp_path)
    state = _load_checkpoint(str(checkpoint))
    assert isinstance(state['message_hub']['log_scalars']['train/loss'], HistoryBuffer)


def test_apply_is_idempotent():
    nlnet.compat.apply()
    nlnet.compat.apply()
    from mmengine.runner.checkpoint import CheckpointLoader
    assert CheckpointLoader._get_checkpoint_loader('/some/file.pth') is load_local_checkpoint
