# NL C2D ResNet-50, 1 block right before the last residual block of res3 (paper Table 2b).
_base_ = ['./nl-c2d_r50-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='res3'))
