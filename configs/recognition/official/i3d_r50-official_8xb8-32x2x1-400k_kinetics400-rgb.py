# The official I3D ResNet-50 of the paper, 32x2 clips: the 32x2 stem (temporal stride 2
# in conv1 and pool1) with the official I3D's 5x7x7 conv1 and 3x1x1 inflation.
_base_ = ['./c2d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py']

model = dict(backbone=dict(conv1_kernel=(5, 7, 7), inflate='i3d', inflate_style='3x1x1'))
