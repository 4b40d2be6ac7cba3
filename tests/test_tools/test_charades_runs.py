"""Charades training and testing on the generated Charades layout.

The demo-size NL-C2D runs through tools/train.py and tools/test.py --dump (their
``main`` in this process): fine-tuned from a demo (Kinetics-layout, 4-class)
checkpoint, tested with 10 clips x 3 crops. The NL-I3D R-101 Charades row, narrowed
to 4 base channels, runs in this process through what tools/train.py runs
(nlnet.engine.run_training): one iteration at lr 0 from a checkpoint of the NL-I3D
R-101 Kinetics row of the same width, so that every loaded weight can be compared
with the file. DropCheckpointKeysHook's own cases are in tests/test_hooks.
"""
import csv
import pickle
import re

import numpy as np
import pytest
import torch
from helpers.charades_data import make_charades_demo
from helpers.tool_modules import load_tool, own_instances
from helpers.video_tools import ROOT, run_log
from mmengine.config import Config
from mmengine.runner.checkpoint import CheckpointLoader

import nlnet.openmmlab  # noqa: F401
from mmaction.registry import MODELS
from nlnet.engine import run_training
from nlnet.evaluation import mean_average_precision

DEFAULT_SCOPE = 'mmaction'
DEMO_CONFIG = f'{ROOT}/configs/demo/nl-c2d_r18-tiny_1xb4-8x2x1-10e_charades-demo-rgb.py'
KINETICS_DEMO_CONFIG = f'{ROOT}/configs/demo/nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py'
NL_I3D_KINETICS = (f'{ROOT}/configs/recognition/nl-i3d/'
                   'nl-i3d_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py')
NL_I3D_CHARADES = (f'{ROOT}/configs/recognition/charades/'
                   'nl-i3d_r101-k400-128f-pre_8xb1-128x1x1-200k_charades-rgb.py')
NARROW = dict(backbone=dict(base_channels=4), cls_head=dict(in_channels=128))
NUM_TRAIN, NUM_TEST = 4, 4


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    return make_charades_demo.make_charades_demo(str(tmp_path_factory.mktemp('charades')),
                                                 NUM_TRAIN, NUM_TEST)


def save_model(config, path, model_overrides=None):
    """Save an initialised model of ``config`` as a checkpoint; returns its state dict."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(model=model_overrides or {}))
    model = MODELS.build(cfg.model)
    model.init_weights()
    state_dict = model.state_dict()
    torch.save(dict(state_dict=state_dict, meta=dict()), path)
    return state_dict


def dataset_lines(layout, split):
    return (f"ann_file={layout[split]!r}, class_file={layout['classes']!r}, "
            f"data_prefix=dict(video={layout['videos']!r})")


def dropped_lines(log):
    return [line for line in log.splitlines() if 'dropped' in line and 'checkpoint key' in line]


def label_sets(csv_path):
    with open(csv_path, newline='') as handle:
        return {row['id']: sorted({int(item.split()[0][1:]) for item in row['actions'].split(';')})
                for row in csv.DictReader(handle)}


def test_demo_fine_tunes_tests_and_dumps_the_logged_map(layout, tmp_path):
    kinetics = tmp_path / 'kinetics_demo.pth'
    save_model(KINETICS_DEMO_CONFIG, kinetics)
    config = tmp_path / 'charades_demo.py'
    config.write_text(f"""_base_ = [{DEMO_CONFIG!r}]
load_from = {str(kinetics)!r}
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict({dataset_lines(layout, 'train')}))
val_cfg = None
val_dataloader = None
val_evaluator = None
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict({dataset_lines(layout, 'test')}))
train_cfg = dict(max_epochs=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, save_best=None))
""")
    load_tool('train.py').main([str(config), '--work-dir', str(tmp_path / 'train'),
                                '--cfg-options', *own_instances('train')])
    log = run_log(tmp_path / 'train')
    assert dropped_lines(log) == [line for line in log.splitlines() if 'dropped 2 checkpoint '
                                  'key(s)' in line and 'cls_head.fc_cls.weight (4, 128), '
                                  'cls_head.fc_cls.bias (4,)' in line]
    assert len(dropped_lines(log)) == 1
    assert 'do not match exactly' not in log and 'missing keys' not in log

    dump_path = tmp_path / 'results.pkl'
    load_tool('test.py').main([str(config), str(tmp_path / 'train' / 'epoch_1.pth'),
                               '--work-dir', str(tmp_path / 'test'), '--dump', str(dump_path),
                               '--cfg-options', *own_instances('test')])
    test_log = run_log(tmp_path / 'test')
    assert not dropped_lines(test_log)  # a test run loads its checkpoint whole
    with open(dump_path, 'rb') as handle:
        dump = pickle.load(handle)
    samples = dump['samples']
    expected_labels = label_sets(layout['test'])
    assert sorted(s['video_id'] for s in samples) == sorted(expected_labels)
    for sample in samples:
        assert sample['pred_score'].shape == (157,) and sample['gt_label'].shape == (157,)
        assert ((0 <= sample['pred_score']) & (sample['pred_score'] <= 1)).all()
        assert np.flatnonzero(sample['gt_label']).tolist() == expected_labels[sample['video_id']]

    recomputed, per_class = mean_average_precision(
        np.stack([s['pred_score'] for s in samples]), np.stack([s['gt_label'] for s in samples]))
    metrics = dump['metrics']
    assert metrics['charades/mAP'] == pytest.approx(recomputed, abs=1e-9)
    assert metrics['num_classes_scored'] == int((~np.isnan(per_class)).sum())
    logged = re.search(r'Epoch\(test\).*charades/mAP: ([0-9.]+)', test_log)
    assert float(logged[1]) == pytest.approx(recomputed, abs=5e-5)
    left_out = [f'c{label:03d}' for label in np.flatnonzero(np.isnan(per_class))]
    assert (f'mAP over {metrics["num_classes_scored"]} of 157 classes: {len(left_out)} have no '
            f'positive among the {NUM_TEST} videos and are left out (classes {left_out})'
            in test_log)


def test_nl_i3d_r101_fine_tunes_from_the_kinetics_row_with_every_backbone_weight(layout, tmp_path):
    kinetics_path = tmp_path / 'nl-i3d_r101_kinetics.pth'
    kinetics = save_model(NL_I3D_KINETICS, kinetics_path, NARROW)
    config = tmp_path / 'charades_nl_i3d.py'
    # The row's model and fine-tuning hook as they are; a tiny input, lr 0 and one iteration so
    # that the saved weights are the loaded ones (its BN layers are frozen, as the paper's).
    config.write_text(f"""_base_ = [{NL_I3D_CHARADES!r}]
model = {NARROW!r}
load_from = {str(kinetics_path)!r}
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=1, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline, {dataset_lines(layout, 'train')}))
val_cfg = None
val_dataloader = None
val_evaluator = None
train_cfg = dict(max_iters=1)
param_scheduler = []
optim_wrapper = dict(optimizer=dict(lr=0.0))
default_hooks = dict(checkpoint=dict(interval=1))
""")
    cfg = Config.fromfile(config)
    cfg.work_dir = str(tmp_path / 'train')
    # Own experiment names: the fine-tuning and the resumed run may start in the same
    # second, and would then share mmengine's logger and log file.
    cfg.merge_from_dict(dict(launcher='none', experiment_name='fine_tune'))
    run_training(cfg)
    log = run_log(tmp_path / 'train')
    lines = dropped_lines(log)
    assert len(lines) == 1 and 'dropped 2 checkpoint key(s)' in lines[0]
    assert 'cls_head.fc_cls.weight (400, 128), cls_head.fc_cls.bias (400,)' in lines[0]
    assert 'do not match exactly' not in log and 'missing keys' not in log

    tuned = CheckpointLoader.load_checkpoint(str(tmp_path / 'train' / 'iter_1.pth'),
                                             map_location='cpu')['state_dict']
    head = {'cls_head.fc_cls.weight', 'cls_head.fc_cls.bias'}
    assert set(tuned) == set(kinetics)
    backbone = sorted(set(kinetics) - head)
    assert sum('non_local_block' in key for key in backbone) > 0
    for key in backbone:
        assert torch.equal(tuned[key], kinetics[key]), key
    assert tuned['cls_head.fc_cls.weight'].shape == (157, 128)

    # Resuming the fine-tuning run loads its own checkpoint whole: the trained 157-class head
    # stays (lr 0 keeps it equal), nothing is dropped.
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(dict(work_dir=str(tmp_path / 'train'), launcher='none', resume=True,
                             experiment_name='resume',
                             load_from=None, train_cfg=dict(max_iters=2)))
    # A longer schedule than the checkpoint's run was saved with: resumed on purpose.
    run_training(cfg, resume_anyway=True)
    assert not dropped_lines(run_log(tmp_path / 'train'))
    resumed = CheckpointLoader.load_checkpoint(str(tmp_path / 'train' / 'iter_2.pth'),
                                               map_location='cpu')['state_dict']
    for key in head:
        assert torch.equal(resumed[key], tuned[key]), key
