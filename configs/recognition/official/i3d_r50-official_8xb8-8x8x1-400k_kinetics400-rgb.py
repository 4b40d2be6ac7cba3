# The official I3D ResNet-50, 8x8 clips (VIDEO_ARC_CHOICE 2): the official C2D with a
# 5x7x7 conv1 and 3x1x1 first convs in every block of res2, blocks 0, 2 of res3, 0, 2, 4
# of res4 and 1 of res5 (inflate='i3d'). Also the architecture of the 300k and 4-GPU
# 600k / 300k I3D baselines.
_base_ = ['./c2d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py']

model = dict(backbone=dict(conv1_kernel=(5, 7, 7), inflate='i3d', inflate_style='3x1x1'))
