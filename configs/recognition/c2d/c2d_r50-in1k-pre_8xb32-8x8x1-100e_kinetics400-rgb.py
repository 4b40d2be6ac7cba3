# C2D ResNet-50 with temporal pooling, 8x8x1 clips ("ResNet50 (TemporalPool)" row of
# MMAction2's C2D table: 19G, 24.3M); loads MMAction2's C2D checkpoint of that row.
_base_ = [
    '../../_base_/models/video_c2d_r50.py', '../../_base_/datasets/kinetics400_c2d-8x8x1.py',
    '../../_base_/schedules/video_sgd_100e.py', '../../_base_/default_runtime.py'
]

default_hooks = dict(checkpoint=dict(interval=3, max_keep_ckpts=3))
