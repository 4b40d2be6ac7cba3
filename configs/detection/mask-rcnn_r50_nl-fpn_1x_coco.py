# The non-local neck: P3-P5 each pass through a non-local block, P3's with 2x2 sub-sampling.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'
model = dict(neck=dict(type='NonLocalFPN', non_local=(1, 2, 3), sub_sample_levels=(1, )))
