# The official NL-I3D ResNet-50 with frozen BN, 32x4 clips: 5 non-local blocks without BN
# (blocks 1, 3 of res3 on groups of 4 frames, blocks 1, 3, 5 of res4 on the whole clip).
_base_ = ['./i3d_r50-official-affine_8xb2-32x4x1-400k_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='5blocks'))
