# Runtime shared by every experiment: hooks, logging (scalars.json through LocalVisBackend), seed.
default_scope = 'det'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3, save_best='coco/AP50',
                    rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# Several processes (tools/dist_train.sh): nccl between GPUs; without CUDA tools/train.py uses gloo instead
# (det.engine.setup_distributed).
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
