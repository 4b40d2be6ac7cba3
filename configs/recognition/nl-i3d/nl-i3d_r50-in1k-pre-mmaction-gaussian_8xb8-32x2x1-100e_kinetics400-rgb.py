# MMAction2's NL I3D ResNet-50 row (gaussian: 56.5G, 31.7M): 5 blocks without the
# 1/sqrt(d) scaling and with mmcv's max-pool after the phi/g convs; loads its checkpoint.
_base_ = ['./nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        non_local_cfg=dict(
            mode='gaussian',
            use_scale=False,
            pool_position='after',
            sub_sample=True,
            norm_cfg=dict(type='BN3d', requires_grad=True))))
