# Charades_v1 (data/charades.md): 128 consecutive frames per clip, as the 128-frame
# Kinetics models the Charades rows are fine-tuned from. Paper Sec. 5.2: the 224 x 224
# crop of the Kinetics jitter (short side 256-320) is rescaled to 288 x 288, i.e. short
# side 329-411 and a 288 crop; testing at one scale of 320 px, 10 clips x 3 crops.
# Training clips are labelled with the actions active in their frames (clip_labels='span');
# Charades_v1_test.csv serves as validation and test set (the paper's train/val split).
dataset_type = 'CharadesDataset'
data_root = 'data/charades'
video_dir = f'{data_root}/Charades_v1_480'
class_file = f'{data_root}/Charades_v1_classes.txt'
ann_file_train = f'{data_root}/Charades_v1_train.csv'
ann_file_test = f'{data_root}/Charades_v1_test.csv'

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=128, frame_interval=1, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='RandomRescale', scale_range=(329, 411)),
    dict(type='RandomCrop', size=288),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=128, frame_interval=1, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 320)),
    dict(type='CenterCrop', crop_size=320),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('img_shape', 'video_id'))
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=128, frame_interval=1, num_clips=10, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 320)),
    dict(type='ThreeCrop', crop_size=320),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs', meta_keys=('img_shape', 'video_id'))
]

train_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_train,
        class_file=class_file,
        clip_labels='span',
        data_prefix=dict(video=video_dir),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        class_file=class_file,
        data_prefix=dict(video=video_dir),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        ann_file=ann_file_test,
        class_file=class_file,
        data_prefix=dict(video=video_dir),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='CharadesMAP')
test_evaluator = val_evaluator
