# I3D ResNet-101 (3x1x1 inflation), 32x2x1 clips (paper Table 3, Table 4).
_base_ = ['./i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        depth=101, pretrained='https://download.pytorch.org/models/resnet101-63fe2227.pth'))
