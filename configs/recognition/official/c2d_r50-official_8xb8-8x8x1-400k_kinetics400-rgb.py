# The official Caffe2 C2D ResNet-50, 8x8 clips (facebookresearch/video-nonlocal-net,
# lib/models/resnet_video.py, VIDEO_ARC_CHOICE 1): 1x7x7 conv1 and 1x3x3 pool1 without
# temporal stride or padding, 2x1x1 max-pool after res2, BN eps 1.0000001e-5, inputs
# normalised by (x - 114.75) / 57.375 in RGB. Tested as the official code: 10 clips x
# 3 crops of 256 at a short side of 256. Load a released model with
# tools/model_converters/caffe2_to_nlnet.py (or pass its .pkl to tools/test.py).
_base_ = [
    '../../_base_/models/video_c2d_r50.py', '../../_base_/datasets/kinetics400_c2d-8x8x1.py',
    '../../_base_/default_runtime.py'
]

caffe2_bn = dict(type='BN3d', eps=1.0000001e-5)
model = dict(
    backbone=dict(
        pretrained=None,
        conv1_kernel=(1, 7, 7),
        conv1_stride_t=1,
        pool1_kernel=(1, 3, 3),
        pool1_stride_t=1,
        pool1_padding=(0, 0, 0),
        temporal_pool=True,
        norm_cfg=caffe2_bn,
        # Official non-local settings (nonlocal_helper.py): embedded Gaussian scaled by
        # 1/sqrt(d), phi and g max-pooled 1x2x2 before their convs, BN after W_z.
        non_local_cfg=dict(
            mode='embedded_gaussian', use_scale=True, sub_sample=True, pool_position='before',
            norm_cfg=caffe2_bn)),
    # pool5 over (T, 7, 7) windows at stride 1, softmax at each, averaged (fully-convolutional
    # testing on 256 crops, TEST.TEST_FULLY_CONV).
    cls_head=dict(type='FullyConvHead', window=7, dropout_ratio=0.5),
    data_preprocessor=dict(mean=[114.75] * 3, std=[57.375] * 3))

file_client_args = dict(io_backend='disk')
train_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1),
    dict(type='DecordDecode'),
    # Official training augmentation: short side jittered in [256, 320], a random 224 crop
    # and a horizontal flip (TRAIN.JITTER_SCALES, TRAIN.CROP_SIZE).
    dict(type='RandomRescale', scale_range=(256, 320)),
    dict(type='RandomCrop', size=224),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(type='DecordInit', **file_client_args),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=10, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='ThreeCrop', crop_size=256),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(batch_size=8, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=8, dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# Official schedule (configs/DBG_kinetics_resnet_8gpu_c2d_nonlocal_400k.yaml): 400k
# iterations of 8 GPUs x 8 clips, Nesterov SGD at lr 0.01 divided by 10 after 150k and
# 300k iterations, no weight decay on BN.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400000, val_interval=20000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=400000, by_epoch=False, milestones=[150000, 300000],
         gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.0001),
    paramwise_cfg=dict(norm_decay_mult=0.0))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=64)
