# NL I3D ResNet-50: I3D with 5 non-local blocks (embedded Gaussian, spacetime, 1/sqrt(d)
# scaling, phi/g max-pooled before their convs) after blocks 1, 3 of res3 and 1, 3, 5 of
# res4 (paper Table 3, Table 4).
_base_ = ['../i3d/i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='5blocks', non_local_cfg=dict(mode='embedded_gaussian')))
