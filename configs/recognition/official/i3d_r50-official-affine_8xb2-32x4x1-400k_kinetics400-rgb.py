# The official I3D ResNet-50 with frozen BN, 32x4 clips (the "freeze bn" rows of
# facebookresearch/video-nonlocal-net; MODEL.USE_AFFINE): every BN replaced by a
# per-channel affine map (Caffe2's AffineNd, blobs *_bn_s / *_bn_b), fine-tuned from the
# 8x8 I3D baseline at 2 clips per GPU. Non-local blocks of these models have no BN after
# W_z (NONLOCAL.USE_BN False), and in res3 each runs on groups of 4 consecutive frames
# (resnet_helper.res_stage_nonlocal_group, group_size 4).
_base_ = ['./i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        norm_cfg=dict(type='ChannelAffine'),
        non_local_group_frames=(None, 4, None, None),
        non_local_cfg=dict(norm_cfg=None)))

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=32, frame_interval=4, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='RandomRescale', scale_range=(256, 320)),
    dict(type='RandomCrop', size=224),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=32, frame_interval=4, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=32, frame_interval=4, num_clips=10, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_affine_400k.yaml: 8 GPUs x 2 clips, lr 0.0025.
optim_wrapper = dict(optimizer=dict(lr=0.0025))
auto_scale_lr = dict(enable=False, base_batch_size=16)
