# NL C2D ResNet-50, 5 blocks, each position attending to the same position in all frames
# (paper Table 2d); spatial sub-sampling would drop those keys, so it is off.
_base_ = ['./nl-c2d_r50-in1k-pre-5blocks_8xb32-8x8x1-100e_kinetics400-rgb.py']

model = dict(backbone=dict(non_local_cfg=dict(scope='time', sub_sample=False)))
