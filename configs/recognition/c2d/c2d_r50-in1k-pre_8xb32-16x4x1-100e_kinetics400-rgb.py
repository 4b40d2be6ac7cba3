# C2D ResNet-50 with temporal pooling, 16x4x1 clips (MMAction2's C2D table: 39G, 24.3M).
_base_ = [
    '../../_base_/models/video_c2d_r50.py', '../../_base_/datasets/kinetics400_c2d-16x4x1.py',
    '../../_base_/schedules/video_sgd_100e.py', '../../_base_/default_runtime.py'
]

default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=3))
