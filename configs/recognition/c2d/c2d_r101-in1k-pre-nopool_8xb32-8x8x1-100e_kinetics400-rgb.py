# C2D ResNet-101 without temporal pooling, 8x8x1 clips ("ResNet101" row of MMAction2's C2D
# table: 63G, 43.3M).
_base_ = ['./c2d_r50-in1k-pre-nopool_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        depth=101, pretrained='https://download.pytorch.org/models/resnet101-cd907fc2.pth'))
