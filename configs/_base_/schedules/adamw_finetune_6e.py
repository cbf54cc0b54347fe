# Fine-tuning a pretrained backbone: AdamW at peak LR 4e-3 for the neck and head and a quarter of it for
# the backbone (paramwise_cfg custom_keys), no weight decay on norms and biases, one epoch of linear
# warm-up (so the random head's first gradients do not wreck the pretrained features), then cosine decay
# over 6 epochs; validation after the last epoch only (about 10 s saved per skipped validation on BCCD;
# mmengine always validates the last epoch, so `--epochs N` also validates at 6 unless
# train_cfg.val_interval=N). Configs using it keep BatchNorm statistics frozen (norm_eval=True) and freeze
# the first stages (frozen_stages).
max_epochs = 6
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.05),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.25)},
                                        norm_decay_mult=0.0, bias_decay_mult=0.0),
                     clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-5),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
