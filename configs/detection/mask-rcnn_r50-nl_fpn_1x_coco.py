# Paper Table 5: one non-local block in res4, right before its last residual block.
_base_ = './mask-rcnn_r50_fpn_1x_coco.py'
model = dict(backbone=dict(type='NonLocalResNet', non_local=[(2, -2)]))
