# I3D ResNet-50 (3x1x1 inflation), 32x2x1 clips (MMAction2's I3D table: 43.5G, 28.0M at
# 256x256 test crops); loads MMAction2's I3D checkpoint of that row.
_base_ = [
    '../../_base_/models/video_i3d_r50.py', '../../_base_/datasets/kinetics400_i3d-32x2x1.py',
    '../../_base_/schedules/video_sgd_100e.py', '../../_base_/default_runtime.py'
]

default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=5))
