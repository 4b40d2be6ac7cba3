# I3D ResNet-50 with 3x3x3 inflation of the middle conv (paper Table 3, I3D 3x3x3).
_base_ = ['./i3d_r50-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(inflate_style='3x3x3'))
