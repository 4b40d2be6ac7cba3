# Fine-tuning of a 32-frame model on 128-frame clips (paper Sec. 4, "longer sequences"):
# as many iterations as the 32-frame schedule with a 4x smaller batch (100 / 4 epochs),
# starting at lr 0.0025.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=25, val_begin=1, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=25, by_epoch=True, milestones=[10, 20], gamma=0.1)
]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.0025, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=40, norm_type=2))
