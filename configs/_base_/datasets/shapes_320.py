# The built-in generated shapes dataset (5 classes, 320x320), created under data/shapes on first use.
# Training batch 8: on 2 CPU cores a sample costs less at batch 8 than at 16, and a time budget buys
# twice the steps. Images load in the main process (num_workers=0): a loader process competes with the
# two compute threads of a 2-core CPU (YOLO v1 step 394 -> 356 ms, benchmarks/profile_train_step.py);
# on a machine with spare cores or a GPU raise it, e.g. --cfg-options train_dataloader.num_workers=4.
data_root = 'data/shapes'
img_scale = (320, 320)
train_pipeline = [
    dict(type='LoadImageFromFile', on_error='skip'),
    dict(type='LoadAnnotations'),
    dict(type='Albu', transforms=[dict(type='HorizontalFlip', p=0.5)]),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', on_error='raise'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', size=img_scale),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=8, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='ShapesDataset', data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ShapesDataset', data_root=data_root, split='val', pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = val_dataloader
# No ann_file: the metric scores against the val dataset's own json, wherever data_root points.
val_evaluator = dict(type='CocoMetric')
test_evaluator = val_evaluator
