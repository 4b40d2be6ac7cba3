# NL I3D ResNet-101 on 128 consecutive frames (paper Table 2g), fine-tuned as the R-50 one
# from the 32-frame model of nl-i3d_r101-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb.py.
_base_ = ['./nl-i3d_r50-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py']

model = dict(backbone=dict(depth=101))
load_from = 'work_dirs/nl-i3d_r101-in1k-pre_8xb8-32x2x1-100e_kinetics400-rgb/epoch_100.pth'
