_base_ = [
    '../../_base_/models/nonlocal_r50-d8.py', '../../_base_/datasets/seg_cityscapes.py',
    '../../_base_/seg_default_runtime.py', '../../_base_/schedules/seg_schedule_80k.py'
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor)
