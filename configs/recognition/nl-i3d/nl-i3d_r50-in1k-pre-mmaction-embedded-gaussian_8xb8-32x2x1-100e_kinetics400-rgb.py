# MMAction2's NL I3D ResNet-50 row (embedded gaussian: 59.3G, 35.4M): 5 blocks without the
# 1/sqrt(d) scaling and with mmcv's max-pool after the phi/g convs; loads its checkpoint.
# The dot product and Gaussian rows inherit these settings.
_base_ = ['./nl-i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        non_local_cfg=dict(
            use_scale=False,
            pool_position='after',
            sub_sample=True,
            norm_cfg=dict(type='BN3d', requires_grad=True))))
