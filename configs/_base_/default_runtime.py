# Runtime shared by the video recognition configs (MMAction2 1.x defaults).
default_scope = 'mmaction'
custom_imports = dict(imports=['nlnet.openmmlab'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, save_best='auto'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))
# Every rank's and dataloader worker's warnings in the log, tagged; each broken video
# logged, counted per epoch and listed in work_dir/broken_videos.txt (nlnet/hooks/).
custom_hooks = [dict(type='RankLogHook'), dict(type='BrokenVideoHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

# TensorBoard: add dict(type='TensorboardVisBackend') to this list (needs `pip install tensorboard`).
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
