# NL C2D ResNet-50, 1 block in res4 with the dot product pairwise function (paper Table 2a).
_base_ = ['./nl-c2d_r50-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local_cfg=dict(mode='dot_product')))
