# NL C2D ResNet-50, 1 block (embedded Gaussian, spacetime) right before the last residual
# block of res4 (paper Table 2a, 2b), on the C2D 8x8x1 baseline.
_base_ = ['../c2d/c2d_r50-in1k-pre_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='res4_1', non_local_cfg=dict(mode='embedded_gaussian')))
