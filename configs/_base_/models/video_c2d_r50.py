# C2D ResNet-50 (paper Table 1): 1x7x7 conv1, 1x3x3 max-pool without padding and a
# 2x1x1 temporal max-pool after res2, as the official code and MMAction2's `C2D`.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VideoResNet',
        depth=50,
        pretrained='https://download.pytorch.org/models/resnet50-11ad3fa6.pth',
        conv1_kernel=(1, 7, 7),
        pool1_padding=(0, 0, 0),
        temporal_pool=True),
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
