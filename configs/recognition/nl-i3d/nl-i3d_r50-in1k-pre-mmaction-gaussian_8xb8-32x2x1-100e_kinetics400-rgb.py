# MMAction2's NL I3D ResNet-50 row (gaussian: 56.5G, 31.7M): its embedded Gaussian row
# with the Gaussian pairwise function; loads its checkpoint.
_base_ = ['./nl-i3d_r50-in1k-pre-mmaction-embedded-gaussian_8xb8-32x2x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local_cfg=dict(mode='gaussian')))
