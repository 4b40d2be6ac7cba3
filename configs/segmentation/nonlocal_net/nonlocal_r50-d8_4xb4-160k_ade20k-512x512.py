_base_ = [
    '../../_base_/models/nonlocal_r50-d8.py', '../../_base_/datasets/seg_ade20k.py',
    '../../_base_/seg_default_runtime.py', '../../_base_/schedules/seg_schedule_160k.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
