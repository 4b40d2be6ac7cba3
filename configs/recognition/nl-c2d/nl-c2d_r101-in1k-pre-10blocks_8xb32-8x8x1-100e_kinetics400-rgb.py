# NL C2D ResNet-101, 10 blocks: every block of res3, 6 evenly spaced blocks of res4
# (paper Table 2c).
_base_ = ['./nl-c2d_r101-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='10blocks'))
