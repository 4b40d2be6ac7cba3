# I3D ResNet-50 (paper Sec. 4): 5x7x7 conv1, 3x1x1 inflation of every other residual
# block, temporal strides as MMAction2's I3D (conv1 and pool1 stride 2 in time, 2x1x1
# pool after res2), so that its checkpoints load.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VideoResNet',
        depth=50,
        pretrained='https://download.pytorch.org/models/resnet50-0676ba61.pth',
        conv1_kernel=(5, 7, 7),
        conv1_stride_t=2,
        pool1_stride_t=2,
        temporal_pool=True,
        inflate='i3d',
        inflate_style='3x1x1'),
    cls_head=dict(
        type='I3DHead',
        num_classes=400,
        in_channels=2048,
        spatial_type='avg',
        dropout_ratio=0.5,
        init_std=0.01,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
