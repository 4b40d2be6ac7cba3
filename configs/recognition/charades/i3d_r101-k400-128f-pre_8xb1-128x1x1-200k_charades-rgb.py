# I3D ResNet-101 on Charades (paper Table 4: 35.5 mAP train/val), fine-tuned from the
# 128-frame Kinetics model of ../i3d/i3d_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb.py
# with its frozen BN and checkpointed blocks. Paper Sec. 5.2: 1 clip per GPU on 8 GPUs,
# 200k iterations, lr 0.00125 divided by 10 every 75k; per-class sigmoids; the test
# views (10 clips x 3 crops) combined by max as the Charades recipes.
_base_ = [
    '../../_base_/models/video_i3d_r50.py', '../../_base_/datasets/charades_i3d-128x1x1.py',
    '../../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(
        depth=101,
        pretrained=None,
        norm_cfg=dict(type='BN3d', requires_grad=False),
        norm_eval=True,
        with_cp=True),
    cls_head=dict(
        _delete_=True,
        type='MultiLabelI3DHead',
        num_classes=157,
        in_channels=2048,
        spatial_type='avg',
        dropout_ratio=0.5,
        init_std=0.01,
        clip_combination='max'))
load_from = 'work_dirs/i3d_r101-k400-32f-pre_8xb2-128x1x1-25e_kinetics400-rgb/epoch_25.pth'
# Every weight of load_from but the 400-class classifier, which is named in one log line.
custom_hooks = [
    dict(type='RankLogHook'),
    dict(type='BrokenVideoHook'),
    dict(type='DropCheckpointKeysHook', prefixes=['cls_head.fc_cls.'])
]

train_cfg = dict(type='IterBasedTrainLoop', max_iters=200000, val_interval=25000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=200000, by_epoch=False, milestones=[75000, 150000],
         gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.00125, momentum=0.9, weight_decay=0.0001),
    clip_grad=dict(max_norm=40, norm_type=2))
default_hooks = dict(checkpoint=dict(interval=25000, by_epoch=False, max_keep_ckpts=3))
log_processor = dict(by_epoch=False)

# The lr above is for 8 GPUs x 1 clip; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=8)
