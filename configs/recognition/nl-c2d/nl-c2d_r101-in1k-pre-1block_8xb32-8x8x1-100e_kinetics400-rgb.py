# NL C2D ResNet-101, 1 block right before the last residual block of res4 (paper Table 2c).
_base_ = ['./nl-c2d_r50-in1k-pre-1block_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        depth=101, pretrained='https://download.pytorch.org/models/resnet101-cd907fc2.pth'))
