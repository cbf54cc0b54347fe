# AdamW at a 3x peak learning rate (6e-3) with linear warm-up, then cosine decay over 5 epochs;
# validation after epochs 2, 4 and 5. The main job's schedule: YOLO v1 on the shapes data reaches a
# higher AP than with adamw_cosine_6e.py's six epochs at 2e-3, in 80% of the time (README).
max_epochs = 5
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=6e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=10.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min=1e-5),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
