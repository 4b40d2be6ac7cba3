# NL I3D ResNet-50 on 128 consecutive frames (paper Table 2g), fine-tuned from the
# 32-frame model of nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py:
# batch 2 per GPU, all BN layers frozen (the non-local ones too), lr 0.0025, as the paper.
# Gradient checkpointing of the residual blocks keeps the 128-frame activations in memory.
_base_ = [
    '../../_base_/models/video_i3d_r50.py', '../../_base_/datasets/kinetics400_i3d-128x1x1.py',
    '../../_base_/schedules/video_sgd_25e_128f.py', '../../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        pretrained=None,
        norm_cfg=dict(type='BN3d', requires_grad=False),
        norm_eval=True,
        with_cp=True,
        non_local='5blocks',
        non_local_cfg=dict(
            mode='embedded_gaussian', norm_cfg=dict(type='BN', requires_grad=False))))
load_from = 'work_dirs/nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb/epoch_100.pth'

default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=5))

# base_batch_size = 8 GPUs x 2 clips.
auto_scale_lr = dict(enable=False, base_batch_size=16)
