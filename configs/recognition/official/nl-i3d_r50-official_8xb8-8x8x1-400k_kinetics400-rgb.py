# The official NL-I3D ResNet-50, 8x8 clips: the official I3D with 5 non-local blocks
# (blocks 1, 3 of res3 and 1, 3, 5 of res4).
_base_ = ['./i3d_r50-official_8xb8-8x8x1-400k_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='5blocks'))
