# NL C2D ResNet-101, 5 blocks: after blocks 1, 3 of res3 and 6, 13, 20 of res4, as the
# official code (paper Table 2c).
_base_ = ['./nl-c2d_r101-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='5blocks'))
