"""Non-local Mask R-CNN through the shared tools on a generated COCO-layout dataset.

The generator, tools/train.py and tools/test.py run their ``main`` in this process.
"""
import json
import os
import os.path as osp
import re

import mmengine
import pytest
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import run_log
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import save_checkpoint

import nlnet.openmmlab  # noqa: F401
from mmdet.registry import MODELS

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CLASSES = ('square', 'disc', 'triangle')
NUM_TRAIN, NUM_VAL = 4, 2

# The real config, shrunk for a CPU: ResNet-18, 128x96 images, few proposals and
# RoIs, narrow RoI heads. Everything else (detector, non-local parts, data
# pipeline types, evaluator) is the config's own.
TINY_CONFIG = """
_base_ = {base!r}
data_root = {data_root!r}
metainfo = dict(classes={classes!r})
model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128, num_classes=3),
        mask_roi_extractor=dict(out_channels=64),
        mask_head=dict(num_convs=1, in_channels=64, conv_out_channels=64, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=200, max_per_img=64),
                   rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=32)))
scale = (128, 96)
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
"""

METRICS = ('coco/bbox_mAP', 'coco/segm_mAP')


train_tool = load_tool('train.py')
test_tool = load_tool('test.py')


def fine_tune(config, work_dir, pretrained, capsys):
    """``tools/train.py CONFIG --seed 0 --partial-load --cfg-options load_from=PRETRAINED`` in
    this process; its output (mmengine prints the load report) and log."""
    capsys.readouterr()
    train_tool.main([config, '--work-dir', str(work_dir), '--seed', '0', '--partial-load',
                     '--cfg-options', f'load_from={pretrained}',
                     *own_instances(osp.basename(str(work_dir)))])
    return capsys.readouterr().out + run_log(work_dir)


def metric_values(output):
    """{metric: value} from the last evaluation line of a tool's log."""
    values = {}
    for name in METRICS:
        found = re.findall(rf'{re.escape(name)}: (-?\d+\.\d+)', output)
        assert found, f'{name} missing from the output'
        values[name] = float(found[-1])
    return values


@pytest.fixture(scope='module')
def coco_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_demo')
    load_tool('data/make_coco_demo.py').main(['--out-dir', str(root), '--num-train',
                                             str(NUM_TRAIN), '--num-val', str(NUM_VAL)])
    return str(root) + '/'


def tiny_config(tmp_path, coco_demo, name):
    path = tmp_path / f'tiny_{name}.py'
    base = osp.join(ROOT, 'configs', 'detection', f'{name}.py')
    path.write_text(TINY_CONFIG.format(base=base, data_root=coco_demo, classes=CLASSES))
    return str(path)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory, coco_demo):
    """A (randomly initialised) tiny baseline Mask R-CNN checkpoint, as a model zoo file."""
    tmp_path = tmp_path_factory.mktemp('pretrained')
    cfg = Config.fromfile(tiny_config(tmp_path, coco_demo, 'mask-rcnn_r50_fpn_1x_coco'))
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(tmp_path / 'mask_rcnn_r18_fpn_tiny.pth')
    save_checkpoint(dict(meta=dict(epoch=12), state_dict=model.state_dict()), path)
    return path


def assert_loaded_all_but(output, prefix):
    """mmengine's load report lists only the new blocks as missing, nothing as unexpected."""
    missing = re.search(r'missing keys in source state_dict: (.*)', output)
    assert missing, 'no load report in the output'
    assert all(key.startswith(prefix) for key in missing.group(1).split(', '))
    assert 'unexpected key in source state_dict' not in output


def test_generated_dataset_is_coco_instances_with_polygons(coco_demo):
    for split, count in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        with open(osp.join(coco_demo, 'annotations', f'instances_{split}2017.json')) as f:
            data = json.load(f)
        assert [c['name'] for c in data['categories']] == list(CLASSES)
        assert len(data['images']) == count
        image_ids = {image['id'] for image in data['images']}
        for image in data['images']:
            assert osp.isfile(osp.join(coco_demo, f'{split}2017', image['file_name']))
        for ann in data['annotations']:
            assert ann['image_id'] in image_ids and ann['iscrowd'] == 0
            polygon = ann['segmentation'][0]
            xs, ys = polygon[0::2], polygon[1::2]
            assert len(polygon) >= 6 and ann['area'] > 0
            assert ann['bbox'] == pytest.approx(
                [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)])


def test_fine_tune_nl_mask_rcnn_from_pretrained_then_test_with_dump_and_show_dir(
        tmp_path, coco_demo, pretrained, capsys):
    config = tiny_config(tmp_path, coco_demo, 'mask-rcnn_r50-nl_fpn_1x_coco')
    work_dir = tmp_path / 'nl_backbone'
    output = fine_tune(config, work_dir, pretrained, capsys)
    assert_loaded_all_but(output, 'backbone.non_local_blocks.layer3.0.')
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\]', output)
    metric_values(output)
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()

    dump = tmp_path / 'results.pkl'
    show_dir = tmp_path / 'show'
    test_tool.main([config, str(checkpoint), '--work-dir', str(tmp_path / 'test'), '--dump',
                    str(dump), '--show-dir', str(show_dir), '--cfg-options',
                    *own_instances('test')])
    metrics = metric_values(run_log(tmp_path / 'test'))
    assert all(-1 <= value <= 1 for value in metrics.values())

    results = mmengine.load(str(dump))
    assert {name: results['metrics'][name] for name in METRICS} == metrics
    assert len(results['samples']) == NUM_VAL
    for sample in results['samples']:
        pred = sample['pred_instances']
        num = len(pred['scores'])
        assert pred['bboxes'].shape == (num, 4) and pred['labels'].shape == (num, )
        assert pred['masks'].shape == (num, *sample['ori_shape'])
    drawn = [f for _, _, files in os.walk(show_dir) for f in files if f.endswith('.jpg')]
    assert len(drawn) == NUM_VAL


def test_fine_tune_nl_neck_mask_rcnn_from_pretrained(tmp_path, coco_demo, pretrained, capsys):
    config = tiny_config(tmp_path, coco_demo, 'mask-rcnn_r50_nl-fpn_1x_coco')
    output = fine_tune(config, tmp_path / 'nl_neck', pretrained, capsys)
    assert_loaded_all_but(output, 'neck.nl_blocks.')
    assert re.search(r'Epoch\(train\)\s+\[1\]\[2/2\].*loss_mask', output)
    metric_values(output)
