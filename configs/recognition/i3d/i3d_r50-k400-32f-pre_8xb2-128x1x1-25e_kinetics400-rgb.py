# I3D ResNet-50 on 128 consecutive frames (paper Table 2g), fine-tuned from the 32-frame
# model of i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py (paper Sec. 4, "longer
# sequences"): batch 2 per GPU to fit in memory, all BN layers frozen, lr 0.0025 for as
# many iterations as the 32-frame schedule (100 / 4 epochs), as the paper. Gradient
# checkpointing of the residual blocks keeps the 128-frame activations in memory.
_base_ = ['./i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        pretrained=None,
        norm_cfg=dict(type='BN3d', requires_grad=False),
        norm_eval=True,
        with_cp=True))
load_from = 'work_dirs/i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb/epoch_100.pth'

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=128, frame_interval=1, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(
        type='MultiScaleCrop',
        input_size=224,
        scales=(1, 0.8),
        random_crop=False,
        max_wh_scale_gap=0),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=128, frame_interval=1, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=128, frame_interval=1, num_clips=10, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

train_cfg = dict(max_epochs=25)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=25, by_epoch=True, milestones=[10, 20], gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=0.0025))

# base_batch_size = 8 GPUs x 2 clips.
auto_scale_lr = dict(base_batch_size=16)
