# The demo NL-C2D: its C2D twin plus one non-local block (embedded Gaussian,
# space-time) after the res3 block. res3 maps are 4x4 here, about one token per
# square, so phi/g are not sub-sampled: every position of every frame is a key.
# (After res4, on 2x2 maps, the block learnt the task more slowly in our runs.)
_base_ = ['c2d_r18-tiny_1xb16-8x2x1-20e_demo-rgb.py']

model = dict(
    backbone=dict(
        non_local='res3',
        non_local_cfg=dict(mode='embedded_gaussian', sub_sample=False)))
