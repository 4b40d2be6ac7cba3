# The official NL-I3D ResNet-50 of the paper with frozen BN, 128x1 clips: 5 non-local
# blocks without BN (res3's on groups of 4 frames).
_base_ = ['./i3d_r50-official-affine_8xb2-128x1x1-400k_kinetics400-rgb.py']

model = dict(backbone=dict(non_local='5blocks'))
