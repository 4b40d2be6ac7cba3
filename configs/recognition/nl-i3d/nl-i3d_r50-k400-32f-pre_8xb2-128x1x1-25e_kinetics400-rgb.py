# NL I3D ResNet-50 on 128 consecutive frames (paper Table 2g): the 128-frame I3D recipe
# with the 5 non-local blocks of nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py,
# fine-tuned from that 32-frame model; their BN layers are frozen too, as the paper.
_base_ = ['../i3d/i3d_r50-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        non_local='5blocks',
        non_local_cfg=dict(
            mode='embedded_gaussian', norm_cfg=dict(type='BN', requires_grad=False))))
load_from = 'work_dirs/nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb/epoch_100.pth'
