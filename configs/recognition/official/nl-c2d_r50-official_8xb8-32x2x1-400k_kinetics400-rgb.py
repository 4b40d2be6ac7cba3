# The official NL-C2D ResNet-50 of the paper, 32x2 clips: 5 non-local blocks (blocks 1, 3
# of res3 and 1, 3, 5 of res4).
_base_ = ['./c2d_r50-official_8xb8-32x2x1-400k_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='5blocks'))
