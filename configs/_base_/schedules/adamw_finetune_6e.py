# Fine-tuning a pretrained backbone: adamw_cosine_6e.py at peak LR 4e-3 for the neck and head and a
# quarter of it for the backbone (paramwise_cfg custom_keys), no weight decay on norms and biases, and a
# warm-up of 40 steps, about one BCCD epoch (so the random head's first gradients do not wreck the
# pretrained features); validation after the last epoch only. Configs using it keep BatchNorm statistics
# frozen (norm_eval=True) and freeze the first stages (frozen_stages).
_base_ = ['adamw_cosine_6e.py']
optim_wrapper = dict(optimizer=dict(lr=4e-3),
                     paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.25)}, norm_decay_mult=0.0,
                                        bias_decay_mult=0.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=40),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-5)]
train_cfg = dict(val_interval=_base_.train_cfg.max_epochs)
