# The demo NL-C2D: its C2D twin plus one non-local block (embedded Gaussian,
# space-time) after the res4 block. res4 maps are 2x2 here, so phi/g are not
# sub-sampled: every position of every frame is a key.
_base_ = ['c2d_r18-tiny_1xb16-8x2x1-30e_demo-rgb.py']

model = dict(
    backbone=dict(
        non_local='res4',
        non_local_cfg=dict(mode='embedded_gaussian', sub_sample=False)))
