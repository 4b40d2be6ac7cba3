_base_ = [
    '../../_base_/models/nonlocal_r50-d8.py', '../../_base_/datasets/seg_cityscapes_769x769.py',
    '../../_base_/seg_default_runtime.py', '../../_base_/schedules/seg_schedule_40k.py'
]
crop_size = (769, 769)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(align_corners=True),
    auxiliary_head=dict(align_corners=True),
    test_cfg=dict(mode='slide', crop_size=(769, 769), stride=(513, 513)))
