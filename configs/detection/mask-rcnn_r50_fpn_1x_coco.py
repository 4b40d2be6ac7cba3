_base_ = [
    '../_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/det_coco_instance.py',
    '../_base_/schedules/det_schedule_1x.py',
    '../_base_/det_default_runtime.py',
]
