"""The detection configs (paper Table 5) and loading a pretrained Mask R-CNN into them."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint, save_checkpoint

import nlnet.openmmlab  # noqa: F401
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'detection')
ROWS = {
    'mask-rcnn_r50_fpn_1x_coco': ('ResNet', 50, 'FPN'),
    'mask-rcnn_r50-nl_fpn_1x_coco': ('NonLocalResNet', 50, 'FPN'),
    'mask-rcnn_r50_nl-fpn_1x_coco': ('ResNet', 50, 'NonLocalFPN'),
    'mask-rcnn_r101_fpn_1x_coco': ('ResNet', 101, 'FPN'),
    'mask-rcnn_r101-nl_fpn_1x_coco': ('NonLocalResNet', 101, 'FPN'),
    'mask-rcnn_r101_nl-fpn_1x_coco': ('ResNet', 101, 'NonLocalFPN'),
}


def load_config(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    init_default_scope(cfg.default_scope)
    return cfg


@pytest.mark.parametrize('name', sorted(ROWS))
def test_config_is_the_table_row(name):
    cfg = load_config(name)
    backbone, depth, neck = ROWS[name]
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['nlnet.openmmlab'], allow_failed_imports=False)
    assert cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    assert (cfg.model.type, cfg.model.backbone.type, cfg.model.backbone.depth,
            cfg.model.neck.type) == ('MaskRCNN', backbone, depth, neck)
    assert cfg.model.backbone.init_cfg.checkpoint == f'torchvision://resnet{depth}'
    if backbone == 'NonLocalResNet':
        assert cfg.model.backbone.non_local == [(2, -2)]
    if neck == 'NonLocalFPN':
        assert (cfg.model.neck.non_local, cfg.model.neck.sub_sample_levels) == ((1, 2, 3), (1, ))


def build(name, init_weights=True):
    """The config's model with random weights, keeping the 10 best detections of any score."""
    cfg = load_config(name)
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.rpn.max_per_img = 50
    cfg.model.test_cfg.rcnn.update(score_thr=0.0, max_per_img=10)
    model = MODELS.build(cfg.model)
    if init_weights:
        model.init_weights()
    return model.eval()


def samples(height, width):
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                batch_input_shape=(height, width), scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta)]


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A randomly initialised baseline Mask R-CNN R-50 and its checkpoint file."""
    torch.manual_seed(0)
    baseline = build('mask-rcnn_r50_fpn_1x_coco', init_weights=False)
    checkpoint = str(tmp_path_factory.mktemp('mask_rcnn') / 'mask_rcnn_r50_fpn.pth')
    save_checkpoint(dict(meta=dict(epoch=12), state_dict=baseline.state_dict()), checkpoint)
    return baseline, checkpoint


@pytest.mark.parametrize('name', ['mask-rcnn_r50-nl_fpn_1x_coco', 'mask-rcnn_r50_nl-fpn_1x_coco'])
def test_pretrained_mask_rcnn_loads_and_predictions_are_unchanged(name, pretrained):
    baseline, checkpoint = pretrained
    model = build(name)
    new_keys = set(model.state_dict()) - set(baseline.state_dict())
    assert new_keys and all(k.startswith(('backbone.non_local_blocks.', 'neck.nl_blocks.'))
                            for k in new_keys)
    load_checkpoint(model, checkpoint, map_location='cpu', strict=False)

    inputs = torch.rand(1, 3, 64, 96) * 4 - 2
    with torch.no_grad():
        for feat, ref in zip(model.extract_feat(inputs), baseline.extract_feat(inputs)):
            torch.testing.assert_close(feat, ref, rtol=0, atol=0)
        pred = model.predict(inputs, samples(64, 96))[0].pred_instances
        ref = baseline.predict(inputs, samples(64, 96))[0].pred_instances
    assert len(ref) > 0
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        torch.testing.assert_close(pred[key], ref[key], rtol=0, atol=0)
