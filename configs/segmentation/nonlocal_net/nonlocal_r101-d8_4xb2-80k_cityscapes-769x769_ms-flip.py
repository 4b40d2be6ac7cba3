# ms+flip test of nonlocal_r101-d8_4xb2-80k_cityscapes-769x769.py: scales 0.5-1.75 x horizontal flip, predictions averaged
# (the mIoU(ms+flip) column). Test-only: python tools/test.py THIS_CONFIG CHECKPOINT
_base_ = './nonlocal_r101-d8_4xb2-80k_cityscapes-769x769.py'
model = dict(_delete_=True, type='SegTTAModel', module={{_base_.model}})
test_dataloader = dict(dataset=dict(pipeline={{_base_.tta_pipeline}}))
