# The demo NL-C2D on the Charades-layout demo data (tools/data/make_charades_demo.py:
# 40 frames at 8 fps, 32 x 32 px, overlapping actions): the Charades recipe in miniature,
# multi-label head, clip labels from time spans, 10 x 3 test views combined by max, mAP.
# With load_from naming a demo (Kinetics-layout) checkpoint it fine-tunes as the Charades
# rows do: the 4-class classifier is dropped in one log line.
_base_ = ['nl-c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py']

model = dict(
    cls_head=dict(
        _delete_=True,
        type='MultiLabelI3DHead',
        num_classes=157,
        in_channels=128,
        spatial_type='avg',
        dropout_ratio=0.0,
        init_std=0.01,
        clip_combination='max'))
custom_hooks = [
    dict(type='RankLogHook'),
    dict(type='BrokenVideoHook'),
    dict(type='DropCheckpointKeysHook', prefixes=['cls_head.fc_cls.'])
]

dataset_type = 'CharadesDataset'
data_root = 'data/charades_demo'
video_dir = f'{data_root}/Charades_v1_480'
class_file = f'{data_root}/Charades_v1_classes.txt'

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
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
    dict(type='PackActionInputs', meta_keys=('img_shape', 'video_id'))
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=10, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='ThreeCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('img_shape', 'video_id'))
]

train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=f'{data_root}/Charades_v1_train.csv',
        class_file=class_file,
        clip_labels='span',
        data_prefix=dict(video=video_dir),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=f'{data_root}/Charades_v1_test.csv',
        class_file=class_file,
        data_prefix=dict(video=video_dir),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        ann_file=f'{data_root}/Charades_v1_test.csv',
        class_file=class_file,
        data_prefix=dict(video=video_dir),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(_delete_=True, type='CharadesMAP')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=10, val_interval=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=9, eta_min=0, by_epoch=True, begin=1, end=10,
         convert_to_iter_based=True)
]

# The lr is the demo's for 1 process x 4 videos; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=4)
