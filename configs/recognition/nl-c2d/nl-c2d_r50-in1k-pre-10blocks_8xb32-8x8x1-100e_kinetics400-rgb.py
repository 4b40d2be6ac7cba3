# NL C2D ResNet-50, 10 blocks: after every block of res3 and res4 (paper Table 2c).
_base_ = ['./nl-c2d_r50-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='10blocks'))
