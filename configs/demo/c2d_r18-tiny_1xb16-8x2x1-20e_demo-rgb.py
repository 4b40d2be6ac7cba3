# C2D twin of the demo NL-C2D: a narrow, shallow ResNet (1 basic block per stage,
# 16 base channels) applying 2D kernels frame by frame, on the demo dataset
# (tools/data/make_demo_dataset.py; 8 frames at 32x32 px).
_base_ = ['../_base_/default_runtime.py']

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VideoResNet',
        depth=18,
        base_channels=16,
        stage_blocks=(1, 1, 1, 1),
        conv1_kernel=(1, 7, 7),
        pool1_kernel=(1, 3, 3),
        non_local=None),
    cls_head=dict(
        type='I3DHead',
        num_classes=4,
        in_channels=128,
        spatial_type='avg',
        dropout_ratio=0.0,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        format_shape='NCTHW'))

dataset_type = 'RobustVideoDataset'
data_root = 'data/demo/videos_train'
data_root_val = 'data/demo/videos_val'
ann_file_train = 'data/demo/demo_train_list_videos.txt'
ann_file_val = 'data/demo/demo_val_list_videos.txt'
ann_file_test = 'data/demo/demo_val_list_videos.txt'

# No flips or crops: the label is a board cell, which they would move. A random
# hue rotation (the same for all frames of a clip) keeps which squares share a
# colour, and so the label, but stops the network from memorising colour sets.
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='ClipHueRotation', max_degrees=180),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
# Multi-view testing as for Kinetics: 10 clips x 3 crops (the crops coincide on
# the square 32x32 demo frames).
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=10, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='ThreeCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('img_shape', 'filename'))
]

train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=20, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=18, eta_min=0, by_epoch=True, begin=2, end=20,
         convert_to_iter_based=True)
]

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=5, max_keep_ckpts=2, save_best='auto'))
log_processor = dict(window_size=10)

# The lr above is for 1 process x 16 videos; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)
