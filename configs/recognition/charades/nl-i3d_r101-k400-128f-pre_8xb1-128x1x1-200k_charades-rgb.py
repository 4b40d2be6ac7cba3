# NL I3D ResNet-101 (5 non-local blocks) on Charades (paper Table 4: 37.5 mAP train/val),
# the I3D recipe fine-tuned from the 128-frame Kinetics model of
# ../nl-i3d/nl-i3d_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py.
_base_ = ['./i3d_r101-k400-128f-pre_8xb1-128x1x1-200k_charades-rgb.py']

model = dict(
    backbone=dict(
        non_local='5blocks',
        non_local_cfg=dict(
            mode='embedded_gaussian', norm_cfg=dict(type='BN', requires_grad=False))))
load_from = 'work_dirs/nl-i3d_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb/epoch_25.pth'
