# AdamW with linear warm-up then cosine decay over 6 epochs, validation every epoch. The cosine has no
# written end: it runs to train_cfg.max_epochs (det.engine.schedules), so a config or schedule that trains
# for another number of epochs sets max_epochs alone.
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05), clip_grad=dict(max_norm=10.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
                   dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-5)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=6, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
